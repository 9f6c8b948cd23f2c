//! Storing a batch so that one bad message fails only itself.
//!
//! A batch is stored as one statement (PostgreSQL) or one transaction (SQLite), so a
//! row the database refuses fails every message in it, other senders' included. When
//! that happens the batch is split in halves and each half tried again, until every
//! refusal is pinned on the single message that caused it. Halves are tried in order,
//! so what is stored keeps its send order.
use std::ops::Range;

/// The parts of a batch still to try, and each item's result so far.
pub struct Isolation<R, E> {
    results: Vec<Option<Result<R, E>>>,
    /// Ranges still to try, the next on top.
    todo: Vec<Range<usize>>,
}

impl<R, E> Isolation<R, E> {
    /// Starts with the whole batch of `len` items as one part.
    pub fn new(len: usize) -> Self {
        let mut todo = Vec::new();
        if len > 0 {
            todo.push(0..len);
        }
        Isolation {
            results: (0..len).map(|_| None).collect(),
            todo,
        }
    }

    /// The next part to try.
    pub fn next_part(&mut self) -> Option<Range<usize>> {
        self.todo.pop()
    }

    /// The part was stored: one result per item.
    pub fn stored(&mut self, part: Range<usize>, results: Vec<R>) {
        for (slot, r) in self.results[part].iter_mut().zip(results) {
            *slot = Some(Ok(r));
        }
    }

    /// The part failed. A part of several items whose error a split may help (the
    /// database refused some row) is split in two; otherwise every item of it fails.
    pub fn failed(&mut self, part: Range<usize>, error: E, splittable: bool, copy: impl Fn(&E) -> E) {
        if splittable && part.len() > 1 {
            let mid = part.start + part.len() / 2;
            self.todo.push(mid..part.end);
            self.todo.push(part.start..mid);
        } else {
            for slot in &mut self.results[part] {
                *slot = Some(Err(copy(&error)));
            }
        }
    }

    /// One result per item, once no part is left to try.
    pub fn finish(self) -> Vec<Result<R, E>> {
        debug_assert!(self.todo.is_empty());
        self.results
            .into_iter()
            .map(|r| r.expect("every item is settled exactly once"))
            .collect()
    }
}

/// Whether a failed batch is worth splitting: the database refused some row. Lost
/// connections and timeouts would fail every half alike.
pub fn refused_by_database(e: &anyhow::Error) -> bool {
    use sea_orm::{DbErr, RuntimeErr};
    matches!(
        e.downcast_ref::<DbErr>(),
        Some(DbErr::Exec(RuntimeErr::SqlxError(inner)) | DbErr::Query(RuntimeErr::SqlxError(inner)))
            if matches!(**inner, sea_orm::sqlx::Error::Database(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives an isolation against a store that refuses any part holding a poisoned
    /// item; returns the results, what was stored (in order) and the attempts made.
    fn run(items: &[i32], poisoned: &[i32], splittable: bool) -> (Vec<Result<i32, String>>, Vec<i32>, usize) {
        let mut iso = Isolation::new(items.len());
        let (mut stored, mut attempts) = (Vec::new(), 0);
        while let Some(part) = iso.next_part() {
            attempts += 1;
            let slice = &items[part.clone()];
            if slice.iter().any(|i| poisoned.contains(i)) {
                iso.failed(part, format!("refused {slice:?}"), splittable, String::clone);
            } else {
                stored.extend_from_slice(slice);
                iso.stored(part, slice.iter().map(|i| i * 10).collect());
            }
        }
        (iso.finish(), stored, attempts)
    }

    #[test]
    fn one_bad_item_fails_alone_and_the_rest_keep_their_order() {
        let items: Vec<i32> = (1..=10).collect();
        let (results, stored, _) = run(&items, &[4], true);
        assert_eq!(stored, vec![1, 2, 3, 5, 6, 7, 8, 9, 10]);
        for (item, r) in items.iter().zip(&results) {
            if *item == 4 {
                assert_eq!(r.as_ref().unwrap_err(), "refused [4]");
            } else {
                assert_eq!(r.as_ref().unwrap(), &(item * 10));
            }
        }
    }

    #[test]
    fn a_clean_batch_is_one_attempt_and_splitting_stays_logarithmic() {
        let items: Vec<i32> = (0..1024).collect();
        let (_, stored, attempts) = run(&items, &[], true);
        assert_eq!((stored.len(), attempts), (1024, 1));
        let (results, stored, attempts) = run(&items, &[700], true);
        assert_eq!(results.iter().filter(|r| r.is_err()).count(), 1);
        assert_eq!(stored.len(), 1023);
        assert!(attempts <= 2 * 11, "{attempts} attempts for one culprit in 1024");
    }

    #[test]
    fn an_unsplittable_error_fails_the_whole_part_at_once() {
        let (results, stored, attempts) = run(&[1, 2, 3], &[2], false);
        assert_eq!((stored.len(), attempts), (0, 1));
        assert!(
            results
                .iter()
                .all(|r| r.as_ref().unwrap_err() == "refused [1, 2, 3]")
        );
        let (results, _, _) = run(&[], &[], true);
        assert!(results.is_empty());
    }
}
