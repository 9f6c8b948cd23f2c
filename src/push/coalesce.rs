//! With `PUSH_COALESCE_MS`, the hooks of one user that fall due together become one:
//! it reports the newest message and how many it stands for ("3 new messages"),
//! rather than one notification per message of a burst.
use std::collections::BTreeMap;

/// One hook to post, standing for one or more outbox rows of one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged<T> {
    /// The newest row's hook: its ids, delivery id and text go out.
    pub lead: T,
    /// Every row this post answers for, the lead's included.
    pub rows: Vec<i64>,
}

/// Groups `hooks` (each with its row id, user and message id) per user when `coalesce`
/// is on, else one per row. Users keep the order of their first hook.
pub fn merge<T>(hooks: Vec<T>, coalesce: bool, key: impl Fn(&T) -> (i64, i64, i64)) -> Vec<Merged<T>> {
    if !coalesce {
        return hooks
            .into_iter()
            .map(|h| Merged {
                rows: vec![key(&h).0],
                lead: h,
            })
            .collect();
    }
    let mut order = Vec::new();
    let mut by_user: BTreeMap<i64, Vec<T>> = BTreeMap::new();
    for h in hooks {
        let (_, user, _) = key(&h);
        by_user.entry(user).or_insert_with(|| {
            order.push(user);
            Vec::new()
        });
        by_user.get_mut(&user).expect("inserted above").push(h);
    }
    order
        .into_iter()
        .filter_map(|user| {
            let hooks = by_user.remove(&user)?;
            let rows = hooks.iter().map(|h| key(h).0).collect();
            let lead = hooks.into_iter().max_by_key(|h| key(h).2)?;
            Some(Merged { lead, rows })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (row, user, message)
    type Row = (i64, i64, i64);

    #[test]
    fn off_keeps_one_post_per_row() {
        let merged = merge(vec![(1, 7, 10), (2, 7, 11)], false, |r: &Row| *r);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[1].rows, vec![2]);
    }

    #[test]
    fn on_posts_the_newest_per_user_for_all_their_rows() {
        let merged = merge(vec![(1, 7, 10), (2, 8, 12), (3, 7, 11)], true, |r: &Row| *r);
        assert_eq!(
            merged,
            vec![
                Merged {
                    lead: (3, 7, 11),
                    rows: vec![1, 3]
                },
                Merged {
                    lead: (2, 8, 12),
                    rows: vec![2]
                },
            ]
        );
    }
}
