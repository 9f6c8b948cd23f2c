//! `sync`: what a reconnecting client missed, by per-conversation seq (new messages)
//! or by per-conversation version (every change: new, edited, deleted, reacted to).
use super::{AckSender, SocketRef};
use std::sync::Arc;

use socketioxide::extract::{State, TryData};

use super::{
    events::{
        ChangedMessage, SyncAck, SyncChangesAck, SyncIn, SyncedMessage, envelopes, iso, reaction_counts,
    },
    proof::{Handed, HandedMessage},
    reply::{invalid, reply_error},
    session::Session,
};
use crate::{
    domain::{DomainResult, conversations, lifecycle},
    state::AppState,
};

/// Most messages one `sync` answers; the client asks again while `has_more`.
const SYNC_BUDGET: u64 = 500;
/// A synced message's JSON beside its content (ids, times), for the byte budget.
const SYNCED_ENVELOPE_BYTES: usize = 200;

pub async fn sync(
    s: SocketRef,
    ack: AckSender,
    State(state): State<AppState>,
    TryData(payload): TryData<SyncIn>,
) {
    let Some(session) = s.extensions.get::<Arc<Session>>() else {
        return;
    };
    if let Err(e) = state.limits.sync.check(session.user_id) {
        return reply_error(&s, ack, &e);
    }
    let since = match payload {
        Ok(SyncIn {
            since: Some(since),
            changes: None,
        }) => since
            .iter()
            .map(|s| (s.conversation_id, s.after_seq.max(0)))
            .collect::<Vec<_>>(),
        Ok(SyncIn {
            since: None,
            changes: Some(changes),
        }) => {
            let changes: Vec<(i64, i64)> = changes
                .iter()
                .map(|c| (c.conversation_id, c.after_version.max(0)))
                .collect();
            return match sync_changes(&state, session.user_id, &changes).await {
                Ok(answer) => {
                    ack.send(&answer).ok();
                }
                Err(e) => reply_error(&s, ack, &e),
            };
        }
        _ => {
            let e = invalid(
                "sync needs since: [{ conversation_id, after_seq }] or changes: [{ conversation_id, after_version }]",
            );
            return reply_error(&s, ack, &e);
        }
    };
    match conversations::sync(&state.db, session.user_id, &since, SYNC_BUDGET).await {
        Ok((messages, has_more)) => {
            let items: Vec<(i64, HandedMessage)> = messages
                .iter()
                .map(|m| {
                    (
                        m.seq,
                        HandedMessage {
                            message_id: m.id,
                            conversation_id: m.conversation_id,
                            covers: 0,
                            sent_at: m.sent_at,
                            bytes: m.content.len()
                                + m.envelopes.as_ref().map_or(0, String::len)
                                + SYNCED_ENVELOPE_BYTES,
                        },
                    )
                })
                .collect();
            let messages: Vec<SyncedMessage> = messages
                .into_iter()
                .map(|mut m| SyncedMessage {
                    message_id: m.id,
                    conversation_id: m.conversation_id,
                    from_user_id: m.sender_id,
                    content: std::mem::take(&mut m.content),
                    sent_at: iso(m.sent_at),
                    seq: m.seq,
                    delivered_at: m.delivered_at.map(iso),
                    read_at: m.read_at.map(iso),
                    reply_to: m.quote().map(Into::into),
                    edited_at: m.edited_at.map(iso),
                    deleted: m.deleted_at.is_some(),
                    encrypted: m.encrypted,
                    envelopes: envelopes(m.envelopes.as_deref()),
                    sender_device_id: m.sender_device_id,
                })
                .collect();
            if ack.send(&SyncAck { messages, has_more }).is_err() {
                return;
            }
            // What the answer handed the device counts once the device proves it got it,
            // and neither the offline queue nor live delivery hands it over again: noted
            // once the answer is queued, so whatever they hand over later travels behind it.
            let mut handed = Handed::default();
            let mut started = std::collections::HashSet::new();
            for (seq, mut m) in items {
                // The client holds what precedes the first message answered for a
                // conversation (it asked after it; the answer shows that much exists).
                if started.insert(m.conversation_id) {
                    session.holds_through(m.conversation_id, seq - 1);
                }
                m.covers = session.handed(m.conversation_id, seq);
                handed.add_synced(&session.receipts, session.user_id, m);
            }
            handed.await_proof(&session.receipts, state.messaging.clone(), async {});
        }
        Err(e) => reply_error(&s, ack, &e),
    }
}

/// `sync { changes }`: each message changed after the versions given, as it now stands.
/// Unlike the seq form this hands nothing over for delivery: messages the device has
/// not had also come as `new_message` from its queue (a client keys both by message id).
async fn sync_changes(state: &AppState, user: i64, since: &[(i64, i64)]) -> DomainResult<SyncChangesAck> {
    let mut found = lifecycle::changes(&state.db, user, since, SYNC_BUDGET).await?;
    let changes = found
        .messages
        .into_iter()
        .map(|m| {
            let reactions = found.reactions.remove(&m.id).unwrap_or_default();
            ChangedMessage {
                message_id: m.id,
                conversation_id: m.conversation_id,
                from_user_id: m.sender_id,
                sent_at: iso(m.sent_at),
                seq: m.seq,
                version: m.version,
                edited_at: m.edited_at.map(iso),
                deleted: m.deleted_at.is_some(),
                reply_to: m.quote().map(Into::into),
                reactions: reaction_counts(reactions.counts),
                my_reaction: reactions.mine,
                encrypted: m.encrypted,
                envelopes: envelopes(m.envelopes.as_deref()),
                sender_device_id: m.sender_device_id,
                content: m.content,
            }
        })
        .collect();
    Ok(SyncChangesAck {
        changes,
        has_more: found.has_more,
    })
}
