//! Which messages of each conversation one device holds, by `seq`.
//!
//! A member's delivered position says "everything up to here reached a device", so a
//! device may only vouch for the unbroken run of seqs it holds. On one node messages
//! reach a device in seq order, but with several nodes a conversation's messages come
//! from several writers: node B may hand seq 12 (its own) before seq 11 (relayed from
//! node A) arrives. Seq 12 is then held *ahead* of a gap, and proving it moves the
//! position only to 10; once 11 arrives the run closes and reaches 12.
use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Span {
    /// Every seq up to this one is held.
    through: i64,
    /// Seqs held beyond a gap.
    ahead: BTreeSet<i64>,
}

impl Span {
    fn absorb(&mut self) {
        while self.ahead.remove(&(self.through + 1)) {
            self.through += 1;
        }
        let through = self.through;
        self.ahead.retain(|s| *s > through);
    }
}

#[derive(Debug, Default)]
pub struct Spans(HashMap<i64, Span>);

impl Spans {
    /// Everything of `conversation` up to `through` is held (it was in the device's
    /// offline queue or before it, or the client said so in a `sync`).
    pub fn hold_through(&mut self, conversation: i64, through: i64) {
        let span = self.0.entry(conversation).or_insert_with(|| Span {
            through,
            ahead: BTreeSet::new(),
        });
        span.through = span.through.max(through);
        span.absorb();
    }

    /// Records that message `seq` was handed over; returns the end of the unbroken run
    /// the device now holds (what proving this hand-over may vouch for). With nothing
    /// known of the conversation yet, the first seq handed starts the run.
    pub fn hand(&mut self, conversation: i64, seq: i64) -> i64 {
        let span = self.0.entry(conversation).or_insert_with(|| Span {
            through: seq - 1,
            ahead: BTreeSet::new(),
        });
        if seq > span.through {
            span.ahead.insert(seq);
            span.absorb();
        }
        span.through
    }

    /// Whether message `seq` was already handed over (or is covered by what is held).
    pub fn holds(&self, conversation: i64, seq: i64) -> bool {
        self.0
            .get(&conversation)
            .is_some_and(|s| seq <= s.through || s.ahead.contains(&seq))
    }

    /// Whether some message of `conversation` was handed over beyond a gap.
    pub fn has_gap(&self, conversation: i64) -> bool {
        self.0.get(&conversation).is_some_and(|s| !s.ahead.is_empty())
    }

    /// Whether any conversation has a gap.
    pub fn any_gap(&self) -> bool {
        self.0.values().any(|s| !s.ahead.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_hand_overs_extend_the_run() {
        let mut spans = Spans::default();
        assert_eq!(spans.hand(1, 5), 5, "the first seq starts the run");
        assert_eq!(spans.hand(1, 6), 6);
        assert!(spans.holds(1, 6));
        assert!(!spans.holds(1, 7));
        assert!(!spans.holds(2, 1), "another conversation is unknown");
    }

    #[test]
    fn a_seq_beyond_a_gap_vouches_only_up_to_the_gap_until_it_closes() {
        let mut spans = Spans::default();
        spans.hold_through(1, 10);
        assert_eq!(spans.hand(1, 12), 10, "11 is missing");
        assert!(spans.has_gap(1));
        assert!(spans.holds(1, 12));
        assert!(!spans.holds(1, 11));
        assert_eq!(spans.hand(1, 13), 10);
        assert_eq!(spans.hand(1, 11), 13, "11 closes the gap: the run reaches 13");
        assert!(!spans.has_gap(1));
        assert!(!spans.any_gap());
    }

    #[test]
    fn what_is_held_is_never_handed_again_and_changes_nothing() {
        let mut spans = Spans::default();
        spans.hold_through(1, 10);
        assert!(spans.holds(1, 3));
        assert_eq!(spans.hand(1, 3), 10, "an old seq leaves the run as it is");
        assert!(!spans.has_gap(1));
    }

    #[test]
    fn holding_through_closes_gaps_it_covers() {
        let mut spans = Spans::default();
        spans.hand(1, 1);
        spans.hand(1, 4);
        spans.hand(1, 6);
        spans.hold_through(1, 3);
        assert!(spans.has_gap(1), "5 is still missing");
        assert!(spans.holds(1, 4));
        spans.hold_through(1, 5);
        assert!(!spans.has_gap(1));
        assert_eq!(spans.hand(1, 7), 7);
    }
}
