//! Who gets a hook for a stored message: the conversation's current members other than
//! the sender who have not muted it (the database answers that) and have no device
//! connected anywhere (the presence registry answers that from memory).
use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::store::{messages::StoredMessage, push_outbox::NewHook};

/// What a hook needs of a stored message (its text is read when the hook goes, as it
/// then stands: edited, or deleted).
#[derive(Debug, Clone, Copy)]
pub struct Sent {
    pub message_id: i64,
    pub conversation_id: i64,
    pub seq: i64,
    pub sender_id: i64,
    pub sent_at: DateTime<Utc>,
}

impl From<&StoredMessage> for Sent {
    fn from(m: &StoredMessage) -> Self {
        Sent {
            message_id: m.id,
            conversation_id: m.conversation_id,
            seq: m.seq,
            sender_id: m.sender_id,
            sent_at: m.sent_at,
        }
    }
}

/// One hook per (message, member) that qualifies. `members` are the unmuted current
/// members per conversation; `reachable` says whether a user has a device connected.
pub fn select(
    messages: &[Sent],
    members: &HashMap<i64, Vec<i64>>,
    reachable: impl Fn(i64) -> bool,
    delivery_id: impl Fn() -> String,
) -> Vec<NewHook> {
    let mut hooks = Vec::new();
    for m in messages {
        for &user in members.get(&m.conversation_id).into_iter().flatten() {
            if user == m.sender_id || reachable(user) {
                continue;
            }
            hooks.push(NewHook {
                delivery_id: delivery_id(),
                user_id: user,
                conversation_id: m.conversation_id,
                message_id: m.message_id,
                seq: m.seq,
                created_at: m.sent_at,
            });
        }
    }
    hooks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(message_id: i64, conversation_id: i64, sender_id: i64) -> Sent {
        Sent {
            message_id,
            conversation_id,
            seq: message_id,
            sender_id,
            sent_at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        }
    }

    #[test]
    fn every_offline_member_but_the_sender() {
        let members = HashMap::from([(10, vec![1, 2, 3, 4]), (20, vec![1, 5])]);
        let online = [3];
        let hooks = select(
            &[sent(100, 10, 1), sent(101, 20, 5), sent(102, 30, 1)],
            &members,
            |u| online.contains(&u),
            || "d".into(),
        );
        let got: Vec<(i64, i64)> = hooks.iter().map(|h| (h.message_id, h.user_id)).collect();
        assert_eq!(got, vec![(100, 2), (100, 4), (101, 1)]);
    }
}
