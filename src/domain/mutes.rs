//! Per-conversation mute: a member stops push hooks for one conversation, until a time
//! or until they unmute. Messages, unread counts and live delivery are unchanged.
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;

use super::{DomainError, DomainResult};
use crate::store;

/// What the member asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MuteRequest {
    /// `true`: until unmuted; `false`: unmute.
    Muted(bool),
    /// Until this time; a time already past unmutes.
    Until(DateTime<Utc>),
}

/// A member's mute of one conversation as clients see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MuteState {
    pub conversation_id: i64,
    pub muted: bool,
    /// When the mute ends; None when not muted or muted until unmuted.
    pub muted_until: Option<DateTime<Utc>>,
}

/// "Until unmuted" is stored as this time: every database keeps it, and a `muted_until`
/// column needs no second meaning for NULL.
pub fn forever() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("9999-12-31T23:59:59Z")
        .expect("a valid constant")
        .into()
}

/// The `muted_until` to store for a request at `now` (None: no mute row).
pub fn stored_until(request: MuteRequest, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match request {
        MuteRequest::Muted(true) => Some(forever()),
        MuteRequest::Muted(false) => None,
        MuteRequest::Until(t) if t <= now => None,
        MuteRequest::Until(t) => Some(t.min(forever())),
    }
}

/// How a stored `muted_until` reads at `now`.
pub fn state(conversation_id: i64, stored: Option<DateTime<Utc>>, now: DateTime<Utc>) -> MuteState {
    match stored {
        Some(t) if t > now => MuteState {
            conversation_id,
            muted: true,
            muted_until: (t < forever()).then_some(t),
        },
        _ => MuteState {
            conversation_id,
            muted: false,
            muted_until: None,
        },
    }
}

async fn require_member(db: &DatabaseConnection, user: i64, conversation: i64) -> DomainResult<()> {
    if conversation <= 0
        || store::conversations::memberships_among(db, user, &[conversation])
            .await?
            .is_empty()
    {
        return Err(DomainError::ConversationNotFound);
    }
    Ok(())
}

/// The caller's mute of a conversation they belong to.
pub async fn get(db: &DatabaseConnection, user: i64, conversation: i64) -> DomainResult<MuteState> {
    require_member(db, user, conversation).await?;
    let stored = store::mutes::get(db, user, conversation).await?;
    Ok(state(conversation, stored, store::now()))
}

/// Mutes or unmutes a conversation the caller belongs to.
pub async fn set(
    db: &DatabaseConnection,
    user: i64,
    conversation: i64,
    request: MuteRequest,
) -> DomainResult<MuteState> {
    require_member(db, user, conversation).await?;
    let now = store::now();
    let until = stored_until(request, now);
    store::mutes::set(db, user, conversation, until).await?;
    Ok(state(conversation, until, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn muted_true_is_until_unmuted() {
        let until = stored_until(MuteRequest::Muted(true), at(0));
        assert_eq!(until, Some(forever()));
        assert_eq!(
            state(7, until, at(0)),
            MuteState {
                conversation_id: 7,
                muted: true,
                muted_until: None
            }
        );
        assert_eq!(stored_until(MuteRequest::Muted(false), at(0)), None);
    }

    #[test]
    fn a_mute_until_a_time_ends_then() {
        let until = stored_until(MuteRequest::Until(at(60)), at(0));
        assert_eq!(until, Some(at(60)));
        assert_eq!(state(7, until, at(59)).muted_until, Some(at(60)));
        assert!(!state(7, until, at(60)).muted, "over at its end");
    }

    #[test]
    fn a_time_in_the_past_unmutes_and_far_future_is_forever() {
        assert_eq!(stored_until(MuteRequest::Until(at(-1)), at(0)), None);
        let far = DateTime::from_timestamp(400_000_000_000, 0).unwrap();
        assert_eq!(stored_until(MuteRequest::Until(far), at(0)), Some(forever()));
    }
}
