//! Who may edit, delete and react to a message: pure rules, no database.
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::{DomainError, DomainResult, groups::Role};

/// The caller's standing in a message's conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Member(Role),
    /// Was a member, left or was removed: they saw the message, so they are told why.
    Left,
    /// Never a member: as if the message did not exist (ids cannot be probed).
    Stranger,
}

/// Reading or changing a message takes current membership.
pub fn member_role(standing: Standing) -> DomainResult<Role> {
    match standing {
        Standing::Member(role) => Ok(role),
        Standing::Left => Err(DomainError::NotMember),
        Standing::Stranger => Err(DomainError::MessageNotFound),
    }
}

/// The sender edits their own message, while it stands, within `window` of sending it
/// (a zero window turns editing off).
pub fn may_edit(
    actor: i64,
    sender: i64,
    sent_at: DateTime<Utc>,
    deleted: bool,
    now: DateTime<Utc>,
    window: Duration,
) -> DomainResult<()> {
    if actor != sender {
        return Err(DomainError::NotYourMessage("only its sender can edit a message"));
    }
    if deleted {
        return Err(DomainError::MessageDeleted);
    }
    let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    if window.is_zero() || now - sent_at > window {
        return Err(DomainError::EditWindowExpired);
    }
    Ok(())
}

/// The sender deletes their message at any time; in a group, the owner and admins
/// delete anyone's.
pub fn may_delete(actor: i64, sender: i64, in_group: bool, role: Role) -> DomainResult<()> {
    match (actor == sender, in_group, role) {
        (true, _, _) => Ok(()),
        (false, true, Role::Owner | Role::Admin) => Ok(()),
        _ => Err(DomainError::NotYourMessage(
            "only its sender or a group admin can delete a message",
        )),
    }
}

/// Reactions go on standing messages only.
pub fn may_react(deleted: bool) -> DomainResult<()> {
    if deleted {
        Err(DomainError::MessageDeleted)
    } else {
        Ok(())
    }
}

/// Longest reaction, in characters (one emoji may join several code points).
pub const EMOJI_MAX_CHARS: usize = 8;

/// A reaction: one emoji, as a short string of 1 to [`EMOJI_MAX_CHARS`] characters
/// with no whitespace or control characters. Which emoji is the client's business.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emoji(String);

impl Emoji {
    pub fn parse(raw: &str) -> DomainResult<Emoji> {
        let n = raw.chars().count();
        if n == 0 || n > EMOJI_MAX_CHARS || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(DomainError::InvalidInput(format!(
                "emoji must be one emoji: 1 to {EMOJI_MAX_CHARS} characters, no spaces, or null to clear"
            )));
        }
        Ok(Emoji(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    const WINDOW: Duration = Duration::from_secs(900);

    #[test]
    fn the_sender_edits_within_the_window_only() {
        assert!(may_edit(1, 1, at(0), false, at(0), WINDOW).is_ok());
        assert!(
            may_edit(1, 1, at(0), false, at(900), WINDOW).is_ok(),
            "the window's last second counts"
        );
        assert!(matches!(
            may_edit(1, 1, at(0), false, at(901), WINDOW),
            Err(DomainError::EditWindowExpired)
        ));
        assert!(matches!(
            may_edit(2, 1, at(0), false, at(1), WINDOW),
            Err(DomainError::NotYourMessage(_))
        ));
    }

    #[test]
    fn a_zero_window_turns_editing_off() {
        assert!(matches!(
            may_edit(1, 1, at(0), false, at(0), Duration::ZERO),
            Err(DomainError::EditWindowExpired)
        ));
    }

    #[test]
    fn a_deleted_message_is_neither_edited_nor_reacted_to() {
        assert!(matches!(
            may_edit(1, 1, at(0), true, at(1), WINDOW),
            Err(DomainError::MessageDeleted)
        ));
        assert!(matches!(may_react(true), Err(DomainError::MessageDeleted)));
        assert!(may_react(false).is_ok());
    }

    #[test]
    fn a_huge_window_does_not_overflow() {
        assert!(may_edit(1, 1, at(0), false, at(10_000_000), Duration::MAX).is_ok());
    }

    #[test]
    fn senders_delete_their_own_and_group_admins_anyones() {
        assert!(may_delete(1, 1, false, Role::Member).is_ok());
        assert!(may_delete(1, 1, true, Role::Member).is_ok());
        assert!(may_delete(2, 1, true, Role::Admin).is_ok());
        assert!(may_delete(2, 1, true, Role::Owner).is_ok());
        assert!(matches!(
            may_delete(2, 1, true, Role::Member),
            Err(DomainError::NotYourMessage(_))
        ));
        // Roles mean nothing in a direct chat.
        assert!(may_delete(2, 1, false, Role::Owner).is_err());
    }

    #[test]
    fn former_members_are_told_strangers_are_not() {
        assert_eq!(member_role(Standing::Member(Role::Admin)).unwrap(), Role::Admin);
        assert!(matches!(member_role(Standing::Left), Err(DomainError::NotMember)));
        assert!(matches!(
            member_role(Standing::Stranger),
            Err(DomainError::MessageNotFound)
        ));
    }

    #[test]
    fn an_emoji_is_short_and_has_no_spaces() {
        assert_eq!(Emoji::parse("👍").unwrap().as_str(), "👍");
        assert!(Emoji::parse("👩‍👩‍👧‍👦").is_ok(), "a family emoji is 7 code points");
        assert!(Emoji::parse("").is_err());
        assert!(Emoji::parse("a b").is_err());
        assert!(Emoji::parse("\u{0}").is_err());
        assert!(Emoji::parse("123456789").is_err());
    }
}
