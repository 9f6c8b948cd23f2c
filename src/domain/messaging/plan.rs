//! What a batch of new messages changes, worked out once for both databases.
//!
//! The PostgreSQL and SQLite writers only turn a [`BatchPlan`] into SQL: which
//! conversation counters move and by how much, each message's place among its
//! conversation's new messages, the list preview (each conversation's newest message),
//! and how many of their own messages each sender added after their read position.
use std::collections::HashMap;

/// One conversation touched by the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touched {
    pub conversation_id: i64,
    /// How many of the batch's messages go to it: its counter moves by this much.
    pub count: i64,
    /// Batch index of its newest message, the list's preview.
    pub newest: usize,
}

/// One sender's messages in one conversation: their `sent_since_read` grows by `count`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderCount {
    pub conversation_id: i64,
    pub sender_id: i64,
    pub count: i64,
}

/// The shared plan of a batch write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchPlan {
    /// In order of first appearance.
    pub touched: Vec<Touched>,
    /// Per message, its 1-based place among its conversation's messages in this batch:
    /// its seq is the counter's value before the batch plus this.
    pub positions: Vec<i64>,
    /// In order of first appearance.
    pub senders: Vec<SenderCount>,
}

impl BatchPlan {
    /// Plans messages given as `(conversation, sender)`, in send order.
    pub fn new(messages: &[(i64, i64)]) -> Self {
        let mut touched: Vec<Touched> = Vec::new();
        let mut index: HashMap<i64, usize> = HashMap::new();
        let mut senders: Vec<SenderCount> = Vec::new();
        let mut sender_index: HashMap<(i64, i64), usize> = HashMap::new();
        let mut positions = Vec::with_capacity(messages.len());
        for (at, &(conversation_id, sender_id)) in messages.iter().enumerate() {
            let i = *index.entry(conversation_id).or_insert_with(|| {
                touched.push(Touched {
                    conversation_id,
                    count: 0,
                    newest: at,
                });
                touched.len() - 1
            });
            touched[i].count += 1;
            touched[i].newest = at;
            positions.push(touched[i].count);
            let j = *sender_index
                .entry((conversation_id, sender_id))
                .or_insert_with(|| {
                    senders.push(SenderCount {
                        conversation_id,
                        sender_id,
                        count: 0,
                    });
                    senders.len() - 1
                });
            senders[j].count += 1;
        }
        BatchPlan {
            touched,
            positions,
            senders,
        }
    }

    /// Each message's seq, given each touched conversation's counter after the bump
    /// (`(conversation, last_seq)`). None if a touched conversation is missing.
    pub fn seqs(&self, messages: &[(i64, i64)], bumped: &[(i64, i64)]) -> Option<Vec<i64>> {
        let after: HashMap<i64, i64> = bumped.iter().copied().collect();
        let mut base = HashMap::with_capacity(self.touched.len());
        for t in &self.touched {
            base.insert(t.conversation_id, after.get(&t.conversation_id)? - t.count);
        }
        Some(
            messages
                .iter()
                .zip(&self.positions)
                .map(|((conversation, _), pos)| base[conversation] + pos)
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_positions_previews_and_senders() {
        // (conversation, sender)
        let batch = [(10, 1), (20, 2), (10, 3), (10, 1), (20, 2)];
        let plan = BatchPlan::new(&batch);
        assert_eq!(
            plan.touched,
            vec![
                Touched {
                    conversation_id: 10,
                    count: 3,
                    newest: 3
                },
                Touched {
                    conversation_id: 20,
                    count: 2,
                    newest: 4
                },
            ]
        );
        assert_eq!(plan.positions, vec![1, 1, 2, 3, 2]);
        assert_eq!(
            plan.senders,
            vec![
                SenderCount {
                    conversation_id: 10,
                    sender_id: 1,
                    count: 2
                },
                SenderCount {
                    conversation_id: 20,
                    sender_id: 2,
                    count: 2
                },
                SenderCount {
                    conversation_id: 10,
                    sender_id: 3,
                    count: 1
                },
            ]
        );
    }

    #[test]
    fn seqs_follow_batch_order_within_each_conversation() {
        let batch = [(10, 1), (20, 2), (10, 3), (10, 1), (20, 2)];
        let plan = BatchPlan::new(&batch);
        // Counters after the bump: 10 went 4 → 7, 20 went 0 → 2.
        let seqs = plan.seqs(&batch, &[(20, 2), (10, 7)]).unwrap();
        assert_eq!(seqs, vec![5, 1, 6, 7, 2]);
        assert_eq!(
            plan.seqs(&batch, &[(10, 7)]),
            None,
            "a vanished conversation is noticed"
        );
    }

    #[test]
    fn empty_batch_plans_nothing() {
        let plan = BatchPlan::new(&[]);
        assert!(plan.touched.is_empty() && plan.positions.is_empty() && plan.senders.is_empty());
    }
}
