//! An encrypted message's body: one opaque ciphertext per recipient device.
//!
//! The server checks the shape (who, which device, a message type, base64 text within
//! the size limit) and stores the list as one JSON text that every delivery path relays
//! as it is. It never decodes a body: it could not read one anyway, and a body it does
//! not parse cannot trip it.
use std::collections::HashSet;

use serde::Serialize;

use super::keys::MAX_DEVICE_ID;
use crate::domain::{DomainError, DomainResult};

/// Most envelopes one message may carry (one per recipient device, the sender's other
/// devices included).
pub const MAX_ENVELOPES: usize = 1_000;
/// Largest message type; the value is the client's (libsignal's `CiphertextMessageType`:
/// 2 a SignalMessage, 3 a PreKeySignalMessage), relayed, not interpreted.
pub const MAX_TYPE: i64 = 255;
/// What each envelope counts towards the size limit besides its body: its JSON framing
/// (ids, type, keys) at its longest, so the limit bounds the whole packet.
pub const ENVELOPE_OVERHEAD: usize = 80;

/// One ciphertext for one device, as the sender wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Envelope {
    pub user_id: i64,
    pub device_id: i64,
    #[serde(rename = "type")]
    pub kind: i64,
    pub body: String,
}

/// A message's envelopes (non-empty, one per `(user, device)`, within the size limit)
/// and the sending device, which recipients' sessions are with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelopes {
    sender_device_id: i64,
    list: Vec<Envelope>,
}

/// Whether `s` has the shape of standard padded base64 (not decoded: see the module doc).
fn looks_like_base64(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || b.len() % 4 != 0 {
        return false;
    }
    let data = s.trim_end_matches('=');
    b.len() - data.len() <= 2
        && data
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
}

impl Envelopes {
    /// Checks `raw`; `max_bytes` bounds the total of each body's length (base64
    /// characters) plus [`ENVELOPE_OVERHEAD`].
    pub fn parse(sender_device_id: i64, raw: Vec<Envelope>, max_bytes: usize) -> DomainResult<Envelopes> {
        let bad = |m: String| Err(DomainError::InvalidInput(m));
        if !(1..=MAX_DEVICE_ID).contains(&sender_device_id) {
            return bad(format!(
                "encrypted.sender_device_id must be an integer from 1 to {MAX_DEVICE_ID}"
            ));
        }
        if raw.is_empty() {
            return bad("encrypted.envelopes must hold at least one envelope".into());
        }
        if raw.len() > MAX_ENVELOPES {
            return bad(format!(
                "encrypted.envelopes holds at most {MAX_ENVELOPES} envelopes"
            ));
        }
        let mut seen = HashSet::with_capacity(raw.len());
        let mut total = 0usize;
        for e in &raw {
            if e.user_id <= 0 {
                return bad("each envelope's user_id must be a user id".into());
            }
            if !(1..=MAX_DEVICE_ID).contains(&e.device_id) {
                return bad(format!(
                    "each envelope's device_id must be an integer from 1 to {MAX_DEVICE_ID}"
                ));
            }
            if !(1..=MAX_TYPE).contains(&e.kind) {
                return bad(format!(
                    "each envelope's type must be an integer from 1 to {MAX_TYPE}"
                ));
            }
            if !looks_like_base64(&e.body) {
                return bad("each envelope's body must be non-empty standard base64".into());
            }
            if !seen.insert((e.user_id, e.device_id)) {
                return bad(format!(
                    "two envelopes for device {} of user {}",
                    e.device_id, e.user_id
                ));
            }
            total += e.body.len() + ENVELOPE_OVERHEAD;
        }
        if total > max_bytes {
            return Err(DomainError::ContentTooLong(max_bytes));
        }
        Ok(Envelopes {
            sender_device_id,
            list: raw,
        })
    }

    /// The device the message was sent from.
    pub fn sender_device_id(&self) -> i64 {
        self.sender_device_id
    }

    /// The users the envelopes are for, each once.
    pub fn users(&self) -> HashSet<i64> {
        self.list.iter().map(|e| e.user_id).collect()
    }

    /// Refuses envelopes for anyone `is_member` says is not a member of the conversation.
    pub fn all_for_members(&self, is_member: impl Fn(i64) -> bool) -> DomainResult<()> {
        match self.list.iter().find(|e| !is_member(e.user_id)) {
            Some(e) => Err(DomainError::InvalidInput(format!(
                "an envelope is for user {}, who is not a member of this conversation",
                e.user_id
            ))),
            None => Ok(()),
        }
    }

    /// The stored (and relayed) form: a JSON array of the envelopes.
    pub fn to_json(&self) -> String {
        // Plain integers and strings: serialising cannot fail.
        serde_json::to_string(&self.list).unwrap_or_else(|_| "[]".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(user_id: i64, device_id: i64) -> Envelope {
        Envelope {
            user_id,
            device_id,
            kind: 3,
            body: "Mwo=".into(),
        }
    }

    #[test]
    fn one_envelope_per_device() {
        assert!(Envelopes::parse(1, vec![env(1, 1), env(1, 2), env(2, 1)], 1000).is_ok());
        assert!(Envelopes::parse(1, vec![env(1, 1), env(1, 1)], 1000).is_err());
        assert!(Envelopes::parse(1, vec![], 1000).is_err());
    }

    #[test]
    fn ids_and_type_are_in_range() {
        assert!(Envelopes::parse(0, vec![env(1, 1)], 1000).is_err());
        assert!(Envelopes::parse(128, vec![env(1, 1)], 1000).is_err());
        assert!(Envelopes::parse(1, vec![env(0, 1)], 1000).is_err());
        assert!(Envelopes::parse(1, vec![env(1, 0)], 1000).is_err());
        assert!(Envelopes::parse(1, vec![env(1, 128)], 1000).is_err());
        let mut e = env(1, 1);
        e.kind = 0;
        assert!(Envelopes::parse(1, vec![e], 1000).is_err());
    }

    #[test]
    fn a_body_is_base64_shaped_and_the_total_is_bounded() {
        for body in ["", "abc", "ab=c", "a===", "ab c", "YWJj\n"] {
            let mut e = env(1, 1);
            e.body = body.into();
            assert!(Envelopes::parse(1, vec![e], 1000).is_err(), "{body:?}");
        }
        for body in ["YWJj", "YWI=", "YQ==", "+/+/"] {
            let mut e = env(1, 1);
            e.body = body.into();
            assert!(Envelopes::parse(1, vec![e], 1000).is_ok(), "{body:?}");
        }
        assert!(matches!(
            Envelopes::parse(1, vec![env(1, 1), env(1, 2)], 167),
            Err(DomainError::ContentTooLong(167))
        ));
        assert!(Envelopes::parse(1, vec![env(1, 1), env(1, 2)], 168).is_ok());
    }

    #[test]
    fn stored_as_a_json_array_with_type() {
        let e = Envelopes::parse(1, vec![env(4, 2)], 1000).unwrap();
        assert_eq!(
            e.to_json(),
            r#"[{"user_id":4,"device_id":2,"type":3,"body":"Mwo="}]"#
        );
        assert_eq!(e.users(), HashSet::from([4]));
    }

    #[test]
    fn every_envelope_is_for_a_member() {
        let e = Envelopes::parse(1, vec![env(4, 1), env(5, 1)], 1000).unwrap();
        assert!(e.all_for_members(|u| u == 4 || u == 5).is_ok());
        assert!(e.all_for_members(|u| u == 4).is_err());
    }
}
