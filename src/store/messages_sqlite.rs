//! The SQLite write path: a batch of sends in one transaction.
//!
//! SQLite runs in-process, so several statements per batch cost little: conversations,
//! counter bump, insert, member updates and list previews each get their own statement.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::messages;
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DatabaseConnection, EntityTrait, FromQueryResult, TransactionTrait,
};

use super::{
    messages::{NewMessage, PairCache, StoredMessage, direct_conversation},
    stmt,
};

/// Stores `batch` in order; returns the stored messages in the same order.
pub async fn write_batch(
    db: &DatabaseConnection,
    cache: &PairCache,
    batch: &[NewMessage],
) -> anyhow::Result<Vec<StoredMessage>> {
    let txn = db.begin().await?;
    let reservation = reserve(&txn, cache, batch).await?;
    let stored = insert(&txn, batch, &reservation).await?;
    txn.commit().await?;
    // Only ids of committed conversations may be remembered.
    cache
        .lock()
        .expect("pair cache poisoned")
        .extend(reservation.new_pairs);
    Ok(stored)
}

#[derive(FromQueryResult)]
struct CounterRow {
    id: i64,
    last_seq: i64,
}

/// `($k, $k+1), …` for rows of integers, numbered after the `leading` values, which come
/// first in the returned values. `VALUES` columns are named column1, column2… on both
/// SQLite and PostgreSQL.
fn values_list<const N: usize>(
    leading: Vec<sea_orm::Value>,
    rows: impl Iterator<Item = [i64; N]>,
) -> (String, Vec<sea_orm::Value>) {
    let mut values = leading;
    let mut tuples = Vec::new();
    for row in rows {
        let start = values.len() + 1;
        tuples.push(format!(
            "({})",
            (start..start + N)
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        values.extend(row.map(sea_orm::Value::from));
    }
    (tuples.join(", "), values)
}

/// A batch whose conversations exist and whose seqs are taken (the counter rows stay
/// locked until the transaction ends).
struct Reservation {
    now: DateTime<Utc>,
    conversation_of: Vec<i64>,
    first_seq: HashMap<i64, i64>,
    /// Pairs whose conversation this batch created: cache them after commit.
    new_pairs: Vec<((i64, i64), i64)>,
}

/// First half of a batch write: finds or creates each message's conversation and takes
/// its seqs from the counter, in one statement for all conversations.
async fn reserve<C: ConnectionTrait>(
    txn: &C,
    cache: &PairCache,
    batch: &[NewMessage],
) -> anyhow::Result<Reservation> {
    let now = Utc::now();
    let mut conversation_of = Vec::with_capacity(batch.len());
    let mut new_pairs = Vec::new();
    // Conversations in order of first appearance, with how many messages each receives.
    let mut counts: Vec<(i64, i64)> = Vec::new();
    for m in batch {
        let pair = (m.sender_id.min(m.recipient_id), m.sender_id.max(m.recipient_id));
        let cached = cache.lock().expect("pair cache poisoned").get(&pair).copied();
        let conv = match cached.or_else(|| new_pairs.iter().find(|(p, _)| *p == pair).map(|(_, c)| *c)) {
            Some(conv) => conv,
            None => {
                let conv = direct_conversation(txn, pair.0, pair.1, now).await?;
                new_pairs.push((pair, conv));
                conv
            }
        };
        conversation_of.push(conv);
        match counts.iter_mut().find(|(c, _)| *c == conv) {
            Some((_, n)) => *n += 1,
            None => counts.push((conv, 1)),
        }
    }

    // One statement bumps every counter the batch touches; the row locks it takes order
    // concurrent writers (other nodes) per conversation.
    let (tuples, values) = values_list(vec![now.into()], counts.iter().map(|(conv, n)| [*conv, *n]));
    let bumped = CounterRow::find_by_statement(stmt(
        txn,
        &format!(
            "UPDATE conversations SET last_seq = conversations.last_seq + v.column2, updated_at = $1 \
             FROM (VALUES {tuples}) AS v WHERE conversations.id = v.column1 \
             RETURNING conversations.id, conversations.last_seq"
        ),
        values,
    ))
    .all(txn)
    .await?;
    let mut first_seq: HashMap<i64, i64> = HashMap::with_capacity(counts.len());
    for (conv, n) in &counts {
        let row = bumped
            .iter()
            .find(|r| r.id == *conv)
            .ok_or_else(|| anyhow::anyhow!("conversation {conv} vanished while sending"))?;
        first_seq.insert(*conv, row.last_seq - n + 1);
    }
    Ok(Reservation {
        now,
        conversation_of,
        first_seq,
        new_pairs,
    })
}

/// Second half: inserts the messages with their seqs and moves delivered positions.
/// Returns the stored messages in batch order.
async fn insert<C: ConnectionTrait>(
    txn: &C,
    batch: &[NewMessage],
    reservation: &Reservation,
) -> anyhow::Result<Vec<StoredMessage>> {
    let now = reservation.now;
    let mut next_seq = reservation.first_seq.clone();

    let mut stored = Vec::with_capacity(batch.len());
    for (m, conv) in batch.iter().zip(&reservation.conversation_of) {
        let seq = next_seq.get_mut(conv).expect("every conversation was counted");
        stored.push(StoredMessage {
            id: 0,
            conversation_id: *conv,
            seq: *seq,
            sender_id: m.sender_id,
            recipient_id: m.recipient_id,
            content: m.content.clone(),
            sent_at: now,
            delivered_at: m.deliver_now.then_some(now),
        });
        *seq += 1;
    }

    let ids = insert_values(txn, &stored, batch, now).await?;
    for s in &mut stored {
        s.id = *ids.get(&(s.conversation_id, s.seq)).ok_or_else(|| {
            anyhow::anyhow!("inserted message {}:{} not returned", s.conversation_id, s.seq)
        })?;
    }
    advance_members(txn, &stored).await?;
    update_previews(txn, &reservation.first_seq).await?;
    Ok(stored)
}

/// Copies each touched conversation's newest message into its list preview.
async fn update_previews<C: ConnectionTrait>(txn: &C, touched: &HashMap<i64, i64>) -> anyhow::Result<()> {
    let ids: Vec<sea_orm::Value> = touched.keys().map(|id| (*id).into()).collect();
    let placeholders = (1..=ids.len())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    txn.execute_raw(stmt(
        txn,
        &format!(
            "UPDATE conversations SET last_sender_id = m.sender_id, last_content = m.content, \
               last_sent_at = m.sent_at \
             FROM messages m WHERE m.conversation_id = conversations.id AND m.seq = conversations.last_seq \
               AND conversations.id IN ({placeholders})"
        ),
        ids,
    ))
    .await?;
    Ok(())
}

/// SQLite (in-process, so statement size costs little): one multi-row insert.
async fn insert_values<C: ConnectionTrait>(
    txn: &C,
    stored: &[StoredMessage],
    batch: &[NewMessage],
    now: DateTime<Utc>,
) -> anyhow::Result<HashMap<(i64, i64), i64>> {
    let rows = stored.iter().zip(batch).map(|(s, m)| messages::ActiveModel {
        conversation_id: Set(s.conversation_id),
        seq: Set(s.seq),
        sender_id: Set(s.sender_id),
        client_msg_id: Set(m.client_msg_id.clone()),
        content: Set(s.content.clone()),
        sent_at: Set(now),
        delivered_at: Set(s.delivered_at),
        read_at: Set(None),
        created_at: Set(now),
        ..Default::default()
    });
    let inserted = messages::Entity::insert_many(rows)
        .exec_with_returning(txn)
        .await?;
    Ok(inserted
        .into_iter()
        .map(|m| ((m.conversation_id, m.seq), m.id))
        .collect())
}

/// Per recipient of the batch: one more unread message for each, and the delivered
/// position moved to the newest message handed to a device. One statement.
async fn advance_members<C: ConnectionTrait>(txn: &C, stored: &[StoredMessage]) -> anyhow::Result<()> {
    // (conversation, recipient) → (messages, newest delivered seq or 0)
    let mut members: HashMap<(i64, i64), (i64, i64)> = HashMap::new();
    for s in stored {
        let e = members.entry((s.conversation_id, s.recipient_id)).or_default();
        e.0 += 1;
        if s.delivered_at.is_some() {
            e.1 = e.1.max(s.seq);
        }
    }
    if members.is_empty() {
        return Ok(());
    }
    let (tuples, values) = values_list(
        Vec::new(),
        members
            .iter()
            .map(|((conv, user), (n, delivered))| [*conv, *user, *n, *delivered]),
    );
    txn.execute_raw(stmt(
        txn,
        &format!(
            "UPDATE conversation_members SET unread_count = conversation_members.unread_count + v.column3, \
               delivered_seq = CASE WHEN v.column4 > conversation_members.delivered_seq \
                                    THEN v.column4 ELSE conversation_members.delivered_seq END \
             FROM (VALUES {tuples}) AS v \
             WHERE conversation_members.conversation_id = v.column1 AND conversation_members.user_id = v.column2"
        ),
        values,
    ))
    .await?;
    Ok(())
}
