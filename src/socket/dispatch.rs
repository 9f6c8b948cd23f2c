//! Announces what the domain decided, in the order it decided it, and reports back
//! which members' devices messages reached.
use std::{
    collections::HashMap,
    str::FromStr,
    sync::{Arc, atomic::Ordering},
};

use chrono::{DateTime, Utc};
use metrics::{counter, histogram};
use serde_json::value::RawValue;
use socketioxide::{SocketIo, extract::SocketRef, socket::Sid};
use tokio::sync::mpsc;

use super::{
    events::{
        self, ConversationRead, GroupEventOut, MessageDelivered, MessageRead, NewMessage, UserOffline,
        UserOnline, conversation_room, device_room, iso, user_room,
    },
    messaging::sent_payload,
    reply::emit_error,
    session::Session,
    typing,
};
use crate::{
    domain::{
        DomainError,
        groups::{GroupChange, GroupEvent},
        messaging::{Move, Outcome, QueuedMessage, ReadReceipt, Settled, Stored, StoredMessage},
    },
    monitoring,
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
                let mut reached = Vec::new();
                for stored in batch {
                    announce_stored(&io, stored, &mut reached).await;
                }
                state.messaging.reached(reached).await;
            }
            Outcome::CatchUp {
                device,
                user_id,
                messages,
                rooms,
            } => hand_over(&io, &state, device, user_id, messages, rooms).await,
            Outcome::CatchUpFailed { device } => {
                if let Some(s) = socket(&io, &device) {
                    s.disconnect().ok();
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
        }
    }
}

async fn announce_stored(io: &SocketIo, stored: Stored, reached: &mut Vec<Move>) {
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
    deliver_live(io, &message, reached);
}

/// Hands a message to every live device of the other members (devices still catching
/// up will find it in their queue). Each device gets it separately so that a device
/// whose buffer is full is known: it is disconnected (it catches up on reconnect) and
/// does not count as reached.
fn deliver_live(io: &SocketIo, msg: &StoredMessage, reached: &mut Vec<Move>) {
    let payload = NewMessage {
        message_id: msg.id,
        conversation_id: msg.conversation_id,
        from_user_id: msg.sender_id,
        content: &msg.content,
        sent_at: iso(msg.sent_at),
        seq: msg.seq,
    };
    // Serialised once; each emit copies the finished JSON.
    let Ok(raw) = serde_json::value::to_raw_value(&payload) else {
        tracing::error!(message_id = msg.id, "message could not be serialised");
        return;
    };
    let mut users: HashMap<i64, bool> = HashMap::new();
    let mut handed = 0;
    for s in io.to(conversation_room(msg.conversation_id)).sockets() {
        let Some(session) = s.extensions.get::<Arc<Session>>() else {
            continue;
        };
        if session.user_id == msg.sender_id {
            continue;
        }
        let ok = emit_raw(&s, &raw);
        handed += usize::from(ok);
        let got = users.entry(session.user_id).or_default();
        *got |= ok;
    }
    if handed > 0 {
        let latency = (Utc::now() - msg.sent_at).to_std().unwrap_or_default();
        counter!(monitoring::MESSAGES_DELIVERED).increment(handed as u64);
        histogram!(monitoring::DELIVERY_LATENCY).record_many(latency.as_secs_f64(), handed);
    }
    reached.extend(
        users
            .into_iter()
            .filter(|(_, got)| *got)
            .map(|(user_id, _)| Move {
                conversation_id: msg.conversation_id,
                user_id,
                seq: msg.seq,
            }),
    );
}

/// Emits a finished `new_message`; a device that cannot take it is disconnected.
fn emit_raw(s: &SocketRef, raw: &RawValue) -> bool {
    match s.emit(events::NEW_MESSAGE, raw) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, sid = %s.id, "device cannot keep up: disconnected, it will catch up");
            s.clone().disconnect().ok();
            false
        }
    }
}

/// A page of a device's offline queue; after the last, the device goes live.
async fn hand_over(
    io: &SocketIo,
    state: &AppState,
    device: String,
    user_id: i64,
    messages: Vec<QueuedMessage>,
    rooms: Option<Vec<i64>>,
) {
    let Some(s) = socket(io, &device) else {
        // Gone before its queue could be handed over: make sure the writer knows.
        state.messaging.device_disconnected(user_id, device).await;
        return;
    };
    let mut furthest: HashMap<i64, i64> = HashMap::new();
    let mut complete = true;
    for m in &messages {
        let payload = NewMessage {
            message_id: m.id,
            conversation_id: m.conversation_id,
            from_user_id: m.sender_id,
            content: &m.content,
            sent_at: iso(m.sent_at),
            seq: m.seq,
        };
        if let Err(e) = s.emit(events::NEW_MESSAGE, &payload) {
            // What was handed over counts; the rest stays queued for the next connect.
            tracing::warn!(error = %e, message_id = m.id, "queued message not handed to device");
            s.clone().disconnect().ok();
            complete = false;
            break;
        }
        let seq = furthest.entry(m.conversation_id).or_default();
        *seq = (*seq).max(m.seq);
    }
    state
        .messaging
        .reached(
            furthest
                .into_iter()
                .map(|(conversation_id, seq)| Move {
                    conversation_id,
                    user_id,
                    seq,
                })
                .collect(),
        )
        .await;
    if !complete || !s.connected() {
        return;
    }
    match rooms {
        Some(rooms) => {
            s.join(rooms.into_iter().map(conversation_room).collect::<Vec<_>>());
            if let Some(session) = s.extensions.get::<Arc<Session>>() {
                session.live.store(true, Ordering::SeqCst);
            }
        }
        None => state.messaging.catch_up_more(user_id, device).await,
    }
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

fn socket(io: &SocketIo, device: &str) -> Option<SocketRef> {
    Sid::from_str(device).ok().and_then(|sid| io.get_socket(sid))
}
