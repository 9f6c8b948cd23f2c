//! The SQLite write path: a batch of sends in one transaction.
//!
//! SQLite runs in-process, so several statements per batch cost little: counter bump,
//! insert, list previews and the senders' `sent_since_read` each get their own
//! statement. What they do is the shared [`BatchPlan`].
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult};

use super::{
    messages::{Landed, NewMessage},
    stmt, value_tuples, values_list,
};
use crate::domain::messaging::plan::BatchPlan;

#[derive(FromQueryResult)]
struct Inserted {
    id: i64,
    conversation_id: i64,
    seq: i64,
}

#[derive(FromQueryResult)]
struct CounterRow {
    id: i64,
    last_seq: i64,
    version: i64,
}

/// Stores `batch` as `plan` says; returns each message's `(id, seq, version)` in batch order.
pub async fn write_batch(
    db: &DatabaseConnection,
    plan: &BatchPlan,
    batch: &[NewMessage],
    now: DateTime<Utc>,
) -> anyhow::Result<Landed> {
    let _turn = super::SQLITE_TURNS.lock().await;
    let txn = super::begin_write(db).await?;
    // One statement bumps every counter the batch touches; the row locks it takes order
    // concurrent writers per conversation.
    let (tuples, values) = values_list(
        vec![now.into()],
        plan.touched.iter().map(|t| [t.conversation_id, t.count]),
    );
    let bumped = CounterRow::find_by_statement(stmt(
        &txn,
        &format!(
            "UPDATE conversations SET last_seq = conversations.last_seq + v.column2, \
               version = conversations.version + v.column2, updated_at = $1 \
             FROM (VALUES {tuples}) AS v WHERE conversations.id = v.column1 \
             RETURNING conversations.id, conversations.last_seq, conversations.version"
        ),
        values,
    ))
    .all(&txn)
    .await?;
    // Both counters moved by the same amount: a message's version is its seq plus
    // the conversation's distance between them.
    let version_offset: std::collections::HashMap<i64, i64> =
        bumped.iter().map(|r| (r.id, r.version - r.last_seq)).collect();
    let bumped: Vec<(i64, i64)> = bumped.into_iter().map(|r| (r.id, r.last_seq)).collect();
    let keys: Vec<(i64, i64)> = batch.iter().map(|m| (m.conversation_id, m.sender_id)).collect();
    let seqs = plan
        .seqs(&keys, &bumped)
        .ok_or_else(|| anyhow::anyhow!("a conversation vanished while sending"))?;

    let version_of =
        |m: &NewMessage, seq: i64| seq + version_offset.get(&m.conversation_id).copied().unwrap_or(0);
    // Written out rather than built by the ORM: only the columns a message sets (the
    // rest keep their defaults), and only the row's key back, not the whole row.
    let plain = batch.iter().all(NewMessage::is_plain);
    // Every value in placeholder order, once (`now` repeated): SQLite binds them
    // anonymously, see `store::stmt`.
    let rows = batch.iter().zip(&seqs).map(|(m, seq)| {
        let mut row: Vec<sea_orm::Value> = vec![
            m.conversation_id.into(),
            (*seq).into(),
            version_of(m, *seq).into(),
            m.sender_id.into(),
            m.client_msg_id.clone().into(),
            m.content.clone().into(),
        ];
        if !plain {
            row.extend([
                m.reply_to_id.into(),
                m.envelopes.is_some().into(),
                m.envelopes.clone().into(),
                m.sender_device_id.into(),
                m.attachment_id.into(),
            ]);
        }
        row.extend([now.into(), now.into()]);
        row
    });
    let (tuples, values) = value_tuples(Vec::new(), rows);
    let extra = if plain {
        ""
    } else {
        ", reply_to_id, encrypted, envelopes, sender_device_id, attachment_id"
    };
    let inserted = Inserted::find_by_statement(stmt(
        &txn,
        &format!(
            "INSERT INTO messages (conversation_id, seq, version, sender_id, client_msg_id, content{extra}, \
               sent_at, created_at) VALUES {tuples} RETURNING id, conversation_id, seq"
        ),
        values,
    ))
    .all(&txn)
    .await?;
    let ids: std::collections::HashMap<(i64, i64), i64> = inserted
        .into_iter()
        .map(|m| ((m.conversation_id, m.seq), m.id))
        .collect();
    let landed = batch
        .iter()
        .zip(&seqs)
        .map(|(m, seq)| {
            ids.get(&(m.conversation_id, *seq))
                .map(|id| (*id, *seq, version_of(m, *seq)))
                .ok_or_else(|| anyhow::anyhow!("inserted message {}:{seq} not returned", m.conversation_id))
        })
        .collect::<anyhow::Result<Landed>>()?;

    update_previews(&txn, plan).await?;
    count_senders(&txn, plan).await?;
    txn.commit().await?;
    Ok(landed)
}

/// Copies each touched conversation's newest message into its list preview.
async fn update_previews<C: ConnectionTrait>(txn: &C, plan: &BatchPlan) -> anyhow::Result<()> {
    let ids: Vec<sea_orm::Value> = plan.touched.iter().map(|t| t.conversation_id.into()).collect();
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

/// Each sender's own messages after their read position, for their unread count.
async fn count_senders<C: ConnectionTrait>(txn: &C, plan: &BatchPlan) -> anyhow::Result<()> {
    let (tuples, values) = values_list(
        Vec::new(),
        plan.senders
            .iter()
            .map(|s| [s.conversation_id, s.sender_id, s.count]),
    );
    txn.execute_raw(stmt(
        txn,
        &format!(
            "UPDATE conversation_members SET sent_since_read = conversation_members.sent_since_read + v.column3, \
               has_written = TRUE \
             FROM (VALUES {tuples}) AS v \
             WHERE conversation_members.conversation_id = v.column1 AND conversation_members.user_id = v.column2"
        ),
        values,
    ))
    .await?;
    Ok(())
}
