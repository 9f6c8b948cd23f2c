//! Announces what the domain decided, in the order it decided it, and reports back
//! which members' devices messages reached.
use std::{
    collections::HashMap,
    str::FromStr,
    sync::{Arc, atomic::Ordering},
};

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use socketioxide::{SocketIo, extract::SocketRef, socket::Sid};
use tokio::sync::mpsc;

use super::{
    events::{
        self, ConversationRead, GroupEventOut, MessageDelivered, MessageRead, NewMessage, UserOffline,
        UserOnline, conversation_room, device_room, iso, user_room,
    },
    lifecycle,
    messaging::sent_payload,
    proof::{Handed, HandedMessage},
    reply::emit_error,
    session::Session,
    typing,
};
use crate::{
    domain::{
        DomainError,
        groups::{GroupChange, GroupEvent},
        messaging::{Outcome, QueuedMessage, ReadReceipt, Settled, Stored, StoredMessage},
    },
    state::AppState,
};

/// Runs until the writer stops.
pub async fn run(io: SocketIo, state: AppState, mut outcomes: mpsc::UnboundedReceiver<Outcome>) {
    while let Some(outcome) = outcomes.recv().await {
        match outcome {
            Outcome::Joined {
                conversation_id,
                user_ids,
            } => join_live(&io, conversation_id, &user_ids),
            Outcome::Stored(batch) => {
                let mut handed = HashMap::new();
                for stored in batch {
                    announce_stored(&io, stored, &mut handed);
                }
                for (s, session, handed) in handed.into_values() {
                    if session.receipts.over_budget() {
                        tracing::warn!(sid = %s.id, "device cannot keep up: disconnected, it will catch up");
                        session.receipts.cut_off(&s);
                    }
                    handed.await_proof(&session.receipts, state.messaging.clone(), async {});
                }
            }
            Outcome::CatchUp {
                device,
                user_id,
                messages,
                rooms,
            } => hand_over(&io, &state, device, user_id, messages, rooms).await,
            Outcome::CatchUpFailed { device } => {
                // It reconnects and tries again.
                if let Some(s) = socket(&io, &device) {
                    cut_off(&s);
                }
            }
            Outcome::TypingStopped {
                conversation_id,
                user_id,
            } => typing::announce(&io, conversation_id, user_id, false).await,
            Outcome::Presence {
                user_id,
                online,
                last_seen,
                contacts,
            } => announce_presence(&io, user_id, online, last_seen, &contacts).await,
            Outcome::Read(receipt) => announce_read(&io, receipt).await,
            Outcome::Delivered { messages, at } => tell_delivered(&io, &messages, at).await,
            Outcome::Group(event) => announce_group(&io, event).await,
            Outcome::EndSessions { user_id, jti } => end_sessions(&io, user_id, jti.as_deref()),
            Outcome::Changed(change) => lifecycle::announce(&io, change).await,
        }
    }
}

/// Per socket, what this batch handed it.
type HandedTo = HashMap<Sid, (SocketRef, Arc<Session>, Handed)>;

fn announce_stored(io: &SocketIo, stored: Stored, handed: &mut HandedTo) {
    let Stored {
        device,
        message,
        fresh,
    } = stored;
    if let Some(s) = socket(io, &device) {
        s.emit(events::MESSAGE_SENT, &sent_payload(&message)).ok();
    }
    if !fresh {
        // A retry: members heard of it the first time.
        return;
    }
    deliver_live(io, &message, handed);
}

/// Hands a message to every live device of the other members (devices still catching
/// up will find it in their queue). Each device gets it separately: it counts as
/// reached only once that device proves it arrived (`proof`), and a device whose
/// buffer is full is disconnected at once (it catches up on reconnect).
fn deliver_live(io: &SocketIo, msg: &StoredMessage, handed: &mut HandedTo) {
    let payload = NewMessage {
        message_id: msg.id,
        conversation_id: msg.conversation_id,
        from_user_id: msg.sender_id,
        content: &msg.content,
        sent_at: iso(msg.sent_at),
        seq: msg.seq,
        version: msg.version,
        reply_to: msg.reply_to.clone().map(Into::into),
        edited_at: None,
        deleted: false,
    };
    // Serialised once; each emit copies the finished JSON.
    let Ok(raw) = serde_json::value::to_raw_value(&payload) else {
        tracing::error!(message_id = msg.id, "message could not be serialised");
        return;
    };
    for s in io.to(conversation_room(msg.conversation_id)).sockets() {
        let Some(session) = s.extensions.get::<Arc<Session>>() else {
            continue;
        };
        if session.user_id == msg.sender_id
            || session.was_handed(msg.conversation_id, msg.seq)
            || !emit_new(&s, &session, &raw, msg.id)
        {
            continue;
        }
        session.handed(msg.conversation_id, msg.seq);
        let (_, session, to_socket) = handed
            .entry(s.id)
            .or_insert_with(|| (s, session, Handed::default()));
        to_socket.add(
            &session.receipts,
            session.user_id,
            HandedMessage {
                message_id: msg.id,
                conversation_id: msg.conversation_id,
                seq: msg.seq,
                sent_at: msg.sent_at,
                bytes: raw.get().len(),
            },
        );
    }
}

/// Emits a finished `new_message` (with its offset, to a client that records them); a
/// device that cannot take it is disconnected.
fn emit_new(s: &SocketRef, session: &Session, raw: &RawValue, message_id: i64) -> bool {
    let sent = if session.receipts.offsets {
        s.emit(events::NEW_MESSAGE, &(raw, message_id.to_string()))
    } else {
        s.emit(events::NEW_MESSAGE, raw)
    };
    match sent {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, sid = %s.id, "device cannot keep up: disconnected, it will catch up");
            cut_off(s);
            false
        }
    }
}

/// A page of a device's offline queue; after the last, the device goes live. The next
/// page is asked for once the device proves it got this one, so a slow device is
/// handed its queue at its own pace.
async fn hand_over(
    io: &SocketIo,
    state: &AppState,
    device: String,
    user_id: i64,
    messages: Vec<QueuedMessage>,
    rooms: Option<Vec<i64>>,
) {
    let Some((s, session)) =
        socket(io, &device).and_then(|s| s.extensions.get::<Arc<Session>>().map(|session| (s, session)))
    else {
        // Gone before its queue could be handed over: make sure the writer knows.
        state.messaging.device_disconnected(user_id, device).await;
        return;
    };
    let mut handed = Handed::default();
    let mut complete = true;
    for (i, m) in messages.iter().enumerate() {
        if i > 0 && session.receipts.over_budget() {
            // The rest waits for the next page, asked for once this part is proven.
            complete = false;
            break;
        }
        if session.was_handed(m.conversation_id, m.seq) {
            // Already in a `sync` answer to this socket, waiting for its proof.
            continue;
        }
        let payload = NewMessage {
            message_id: m.id,
            conversation_id: m.conversation_id,
            from_user_id: m.sender_id,
            content: &m.content,
            sent_at: iso(m.sent_at),
            seq: m.seq,
            version: m.version,
            reply_to: m.quote().map(Into::into),
            edited_at: m.edited_at.map(iso),
            deleted: m.deleted_at.is_some(),
        };
        let Ok(raw) = serde_json::value::to_raw_value(&payload) else {
            tracing::error!(message_id = m.id, "queued message could not be serialised");
            complete = false;
            break;
        };
        if !emit_new(&s, &session, &raw, m.id) {
            // Disconnected: what was not proven stays queued for the next connect.
            return;
        }
        session.handed(m.conversation_id, m.seq);
        handed.add(
            &session.receipts,
            user_id,
            HandedMessage {
                message_id: m.id,
                conversation_id: m.conversation_id,
                seq: m.seq,
                sent_at: m.sent_at,
                bytes: raw.get().len(),
            },
        );
    }
    if !s.connected() {
        return;
    }
    let next_page = match rooms {
        Some(rooms) if complete => {
            s.join(rooms.into_iter().map(conversation_room).collect::<Vec<_>>());
            session.live.store(true, Ordering::SeqCst);
            None
        }
        _ => Some(state.messaging.clone()),
    };
    let after = async move {
        if let Some(messaging) = next_page {
            messaging.catch_up_more(user_id, device).await;
        }
    };
    handed.await_proof(&session.receipts, state.messaging.clone(), after);
}

/// The live devices of these users join a conversation's room. Devices still catching
/// up join with the last page of their queue instead.
fn join_live(io: &SocketIo, conversation_id: i64, users: &[i64]) {
    let rooms: Vec<String> = users.iter().map(|u| user_room(*u)).collect();
    for s in io.to(rooms).sockets() {
        let live = s
            .extensions
            .get::<Arc<Session>>()
            .is_some_and(|session| session.live.load(Ordering::SeqCst));
        if live {
            s.join(conversation_room(conversation_id));
        }
    }
}

async fn announce_group(io: &SocketIo, e: GroupEvent) {
    join_live(io, e.conversation_id, &e.join);
    let name = match e.change {
        GroupChange::Created => events::GROUP_CREATED,
        GroupChange::MemberAdded => events::MEMBER_ADDED,
        GroupChange::MemberRemoved => events::MEMBER_REMOVED,
        GroupChange::MemberLeft => events::MEMBER_LEFT,
        GroupChange::RoleChanged => events::ROLE_CHANGED,
        GroupChange::Updated => events::GROUP_UPDATED,
    };
    let payload = GroupEventOut {
        conversation_id: e.conversation_id,
        actor_id: e.actor_id,
        user_id: e.user_id,
        role: e.role.map(|r| r.as_str()),
        name: e.name.as_deref(),
        description: e.description.as_deref(),
    };
    let rooms: Vec<String> = e.audience.iter().map(|u| user_room(*u)).collect();
    if let Err(err) = io.to(rooms).emit(name, &payload).await {
        tracing::warn!(error = %err, conversation_id = e.conversation_id, "group event not announced");
    }
    if !e.leave.is_empty() {
        let rooms: Vec<String> = e.leave.iter().map(|u| user_room(*u)).collect();
        for s in io.to(rooms).sockets() {
            s.leave(conversation_room(e.conversation_id));
        }
    }
}

async fn announce_presence(
    io: &SocketIo,
    user_id: i64,
    online: bool,
    last_seen: Option<DateTime<Utc>>,
    contacts: &[i64],
) {
    let rooms: Vec<String> = contacts.iter().map(|id| user_room(*id)).collect();
    let sent = match last_seen {
        Some(at) if !online => {
            io.to(rooms)
                .emit(
                    events::USER_OFFLINE,
                    &UserOffline {
                        user_id,
                        last_seen: iso(at),
                    },
                )
                .await
        }
        _ => {
            io.to(rooms)
                .emit(events::USER_ONLINE, &UserOnline { user_id })
                .await
        }
    };
    if let Err(e) = sent {
        tracing::warn!(error = %e, user_id, "presence not announced");
    }
}

/// `message_delivered` to every device of each sender.
async fn tell_delivered(io: &SocketIo, messages: &[Settled], at: DateTime<Utc>) {
    let delivered_at = iso(at);
    for m in messages {
        let receipt = MessageDelivered {
            message_id: m.id,
            delivered_at: delivered_at.clone(),
            conversation_id: m.conversation_id,
        };
        io.to(user_room(m.sender_id))
            .emit(events::MESSAGE_DELIVERED, &receipt)
            .await
            .ok();
    }
}

async fn announce_read(io: &SocketIo, r: ReadReceipt) {
    let read_at = iso(r.read_at);
    for (sender, message_id) in &r.newest_read {
        let payload = MessageRead {
            conversation_id: r.conversation_id,
            message_id: *message_id,
            reader_id: r.reader_id,
            read_at: read_at.clone(),
        };
        io.to(user_room(*sender))
            .emit(events::MESSAGE_READ, &payload)
            .await
            .ok();
    }
    let payload = ConversationRead {
        conversation_id: r.conversation_id,
        up_to_message_id: r.up_to_message_id,
    };
    let reader_devices = io.to(user_room(r.reader_id));
    let sent = match &r.reader_device {
        Some(device) => {
            reader_devices
                .except(device_room(device))
                .emit(events::CONVERSATION_READ, &payload)
                .await
        }
        None => reader_devices.emit(events::CONVERSATION_READ, &payload).await,
    };
    sent.ok();
}

/// Tells the sockets standing on ended tokens why, and disconnects them.
fn end_sessions(io: &SocketIo, user_id: i64, jti: Option<&str>) {
    for s in io.to(user_room(user_id)).sockets() {
        let ended = s
            .extensions
            .get::<Arc<Session>>()
            .is_some_and(|session| jti.is_none_or(|jti| session.uses_token(jti)));
        if ended {
            emit_error(&s, &DomainError::TokenRevoked);
            s.disconnect().ok();
        }
    }
}

/// Drops a device's connection so that it reconnects and catches up.
fn cut_off(s: &SocketRef) {
    match s.extensions.get::<Arc<Session>>() {
        Some(session) => session.receipts.cut_off(s),
        None => {
            s.clone().disconnect().ok();
        }
    }
}

fn socket(io: &SocketIo, device: &str) -> Option<SocketRef> {
    Sid::from_str(device).ok().and_then(|sid| io.get_socket(sid))
}
