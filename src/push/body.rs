//! The JSON a hook carries: ids and times always, the sender and a preview only as far
//! as `PUSH_INCLUDE` allows.
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::PushInclude as Include;
use crate::wire::iso;

/// The event every hook reports (the only one so far).
pub const NEW_MESSAGE: &str = "message.new";
/// Longest preview, in characters.
pub const PREVIEW_CHARS: usize = 100;

/// What is known about the message a hook is for.
#[derive(Debug, Clone)]
pub struct HookFacts {
    pub delivery_id: String,
    pub user_id: i64,
    pub conversation_id: i64,
    pub message_id: i64,
    pub seq: i64,
    pub created_at: DateTime<Utc>,
    pub sender_id: i64,
    pub sender_name: String,
    pub content: String,
    /// End-to-end encrypted: never a preview (its content is not the server's to read).
    pub encrypted: bool,
    /// Messages this hook stands for (more than 1 when coalesced).
    pub count: usize,
}

#[derive(Serialize)]
struct Sender<'a> {
    id: i64,
    display_name: &'a str,
}

#[derive(Serialize)]
struct Body<'a> {
    delivery_id: &'a str,
    event: &'static str,
    user_id: i64,
    conversation_id: i64,
    message_id: i64,
    seq: i64,
    created_at: String,
    count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    sender: Option<Sender<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preview: Option<String>,
}

/// The body to sign and post.
pub fn render(facts: &HookFacts, include: Include) -> Vec<u8> {
    let body = Body {
        delivery_id: &facts.delivery_id,
        event: NEW_MESSAGE,
        user_id: facts.user_id,
        conversation_id: facts.conversation_id,
        message_id: facts.message_id,
        seq: facts.seq,
        created_at: iso(facts.created_at),
        count: facts.count,
        sender: (include >= Include::Sender).then_some(Sender {
            id: facts.sender_id,
            display_name: &facts.sender_name,
        }),
        preview: (include >= Include::Preview && !facts.encrypted).then(|| preview(&facts.content)),
    };
    serde_json::to_vec(&body).expect("a hook body always serialises")
}

/// The start of the text, cut at a character boundary, with "…" when cut.
fn preview(content: &str) -> String {
    match content.char_indices().nth(PREVIEW_CHARS) {
        None => content.to_owned(),
        Some((end, _)) => format!("{}…", &content[..end]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(content: &str) -> HookFacts {
        HookFacts {
            delivery_id: "d-1".into(),
            user_id: 2,
            conversation_id: 3,
            message_id: 4,
            seq: 5,
            created_at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            sender_id: 1,
            sender_name: "alice".into(),
            content: content.into(),
            count: 1,
            encrypted: false,
        }
    }

    fn json(include: Include, content: &str) -> serde_json::Value {
        serde_json::from_slice(&render(&facts(content), include)).unwrap()
    }

    #[test]
    fn by_default_only_ids_and_times() {
        let body = json(Include::None, "secret words");
        assert_eq!(
            body,
            serde_json::json!({
                "delivery_id": "d-1", "event": "message.new", "user_id": 2,
                "conversation_id": 3, "message_id": 4, "seq": 5,
                "created_at": "2027-01-15T08:00:00.000Z", "count": 1,
            })
        );
    }

    #[test]
    fn each_level_adds_to_the_one_before() {
        let sender = json(Include::Sender, "secret words");
        assert_eq!(
            sender["sender"],
            serde_json::json!({ "id": 1, "display_name": "alice" })
        );
        assert!(sender.get("preview").is_none());
        let preview = json(Include::Preview, "secret words");
        assert_eq!(preview["sender"]["id"], 1);
        assert_eq!(preview["preview"], "secret words");
    }

    #[test]
    fn an_encrypted_message_has_no_preview() {
        let mut f = facts("");
        f.encrypted = true;
        let body: serde_json::Value = serde_json::from_slice(&render(&f, Include::Preview)).unwrap();
        assert!(body.get("preview").is_none());
        assert_eq!(
            body["sender"]["id"], 1,
            "the sender is still the operator's to show"
        );
    }

    #[test]
    fn a_long_text_is_cut_at_a_character() {
        let long = "é".repeat(PREVIEW_CHARS + 5);
        let cut = json(Include::Preview, &long)["preview"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(cut.chars().count(), PREVIEW_CHARS + 1);
        assert!(cut.ends_with('…'));
    }
}
