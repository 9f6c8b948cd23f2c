//! Receipts from member positions: the rule that turns "how far each member got" into
//! a message's aggregate `delivered_at` / `read_at`.
//!
//! A message counts as delivered (read) once every *other* current member's position
//! has reached its seq; its sender's own position does not matter. Only the two lowest
//! positions of a conversation are needed for that: if the lowest belongs to the
//! message's sender, the second lowest decides, otherwise the lowest does.
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;

use super::{DomainError, DomainResult};
use crate::store;

/// Which position a receipt follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Position {
    Delivered,
    Read,
}

impl Position {
    /// The member column holding it.
    pub fn column(self) -> &'static str {
        match self {
            Position::Delivered => "delivered_seq",
            Position::Read => "read_seq",
        }
    }

    /// The message column holding its aggregate.
    pub fn message_column(self) -> &'static str {
        match self {
            Position::Delivered => "delivered_at",
            Position::Read => "read_at",
        }
    }

    /// Its name in the position log.
    pub fn log_kind(self) -> &'static str {
        match self {
            Position::Delivered => "delivered",
            Position::Read => "read",
        }
    }
}

/// A conversation's two lowest positions among current members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Floor {
    pub conversation_id: i64,
    pub lowest_user: i64,
    pub lowest: i64,
    /// 0 when the lowest member is alone: nobody else can have their messages.
    pub second: i64,
}

impl Floor {
    /// From up to two `(user, position)` rows, lowest first; None for no members.
    pub fn from_lowest(conversation_id: i64, rows: &[(i64, i64)]) -> Option<Floor> {
        let (lowest_user, lowest) = *rows.first()?;
        Some(Floor {
            conversation_id,
            lowest_user,
            lowest,
            second: rows.get(1).map_or(0, |r| r.1),
        })
    }

    /// The highest seq by `sender` that every other member has reached.
    pub fn covered_for(&self, sender: i64) -> i64 {
        if sender == self.lowest_user {
            self.second
        } else {
            self.lowest
        }
    }

    /// Whether every member other than `sender` has reached `seq`.
    pub fn covers(&self, sender: i64, seq: i64) -> bool {
        seq <= self.covered_for(sender)
    }
}

/// One member's receipt for a message.
#[derive(Debug, Clone)]
pub struct MemberReceipt {
    pub user_id: i64,
    pub delivered_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
}

/// Every other current member's receipt for a message.
#[derive(Debug, Clone)]
pub struct MessageReceipts {
    pub message_id: i64,
    pub conversation_id: i64,
    pub receipts: Vec<MemberReceipt>,
}

/// Per-member receipts of a message, for its sender and for the group's owner and
/// admins; anyone else gets not-found, as for a message they cannot see.
pub async fn of_message(
    db: &DatabaseConnection,
    caller: i64,
    message_id: i64,
) -> DomainResult<MessageReceipts> {
    let subject = store::positions::receipt_subject(db, message_id)
        .await?
        .ok_or(DomainError::MessageNotFound)?;
    let members = store::positions::member_positions(db, subject.conversation_id).await?;
    let allowed = members.iter().any(|m| {
        m.user_id == caller && (caller == subject.sender_id || m.role == "owner" || m.role == "admin")
    });
    if !allowed {
        return Err(DomainError::MessageNotFound);
    }
    let reached = store::positions::first_reached(db, subject.conversation_id, subject.seq).await?;
    let first = |user: i64, position: Position| {
        reached
            .iter()
            .find(|r| r.user_id == user && r.kind == position.log_kind())
            .map(|r| r.at)
    };
    let receipts = members
        .iter()
        // Members who joined after it was sent never had it to receive.
        .filter(|m| m.user_id != subject.sender_id && m.joined_at <= subject.sent_at)
        .map(|m| MemberReceipt {
            user_id: m.user_id,
            // A position without a logged move is a direct chat's (not logged: its one
            // other member's times are the message's own receipts) or predates the log.
            delivered_at: first(m.user_id, Position::Delivered).or_else(|| {
                (m.delivered_seq >= subject.seq)
                    .then_some(subject.delivered_at)
                    .flatten()
            }),
            read_at: first(m.user_id, Position::Read)
                .or_else(|| (m.read_seq >= subject.seq).then_some(subject.read_at).flatten()),
        })
        .collect();
    Ok(MessageReceipts {
        message_id,
        conversation_id: subject.conversation_id,
        receipts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_senders_own_lag_does_not_hold_back_their_message() {
        // Alice (1) sent 1..=5 and has no position of her own; Bob (2) and Carol (3) got them.
        let floor = Floor::from_lowest(7, &[(1, 0), (2, 5)]).unwrap();
        assert!(floor.covers(1, 5));
        assert!(!floor.covers(2, 1), "Bob's message waits for Alice");
    }

    #[test]
    fn the_lowest_other_member_decides() {
        // Positions: Carol 3, Bob 8 (and others higher).
        let floor = Floor::from_lowest(7, &[(3, 3), (2, 8)]).unwrap();
        assert!(floor.covers(1, 3));
        assert!(!floor.covers(1, 4), "Carol has not got seq 4");
        assert!(floor.covers(3, 8), "Carol's own message needs Bob only");
        assert!(!floor.covers(3, 9));
    }

    #[test]
    fn ties_and_lonely_members() {
        let tie = Floor::from_lowest(7, &[(1, 4), (2, 4)]).unwrap();
        assert!(tie.covers(1, 4) && tie.covers(2, 4) && tie.covers(3, 4));
        assert!(!tie.covers(1, 5));
        let alone = Floor::from_lowest(7, &[(1, 9)]).unwrap();
        assert!(!alone.covers(1, 1), "with nobody else, nothing is delivered");
        assert_eq!(Floor::from_lowest(7, &[]), None);
    }
}
