//! Announces what the domain decided, in the order it decided it.
use std::str::FromStr;

use chrono::{DateTime, Utc};

use socketioxide::{SocketIo, extract::SocketRef, socket::Sid};
use tokio::sync::mpsc;

use super::{
    events::{
        self, ConversationRead, MessageDelivered, MessageRead, NewMessage, UserOffline, UserOnline,
        device_room, iso, user_room,
    },
    messaging::sent_payload,
    typing,
};
use crate::{
    app::AppState,
    domain::messaging::{Outcome, ReadReceipt, Stored, StoredMessage},
};

/// Runs until the writer stops.
pub async fn run(io: SocketIo, state: AppState, mut outcomes: mpsc::UnboundedReceiver<Outcome>) {
    while let Some(outcome) = outcomes.recv().await {
        match outcome {
            Outcome::Stored(batch) => {
                for stored in batch {
                    announce_stored(&io, &state, stored).await;
                }
            }
            Outcome::CatchUp {
                device,
                user_id,
                messages,
                delivered_at,
            } => {
                let Some(s) = socket(&io, &device) else {
                    // Gone before its queue could be handed over: make sure the writer knows.
                    state.messaging.device_disconnected(user_id, device).await;
                    continue;
                };
                s.join([user_room(user_id), device_room(&device)]);
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
                        tracing::warn!(error = %e, message_id = m.id, "queued message not handed to device");
                    }
                }
                for m in &messages {
                    tell_delivered(&io, m.id, m.conversation_id, m.sender_id, delivered_at).await;
                }
            }
            Outcome::CatchUpFailed { device } => {
                if let Some(s) = socket(&io, &device) {
                    s.disconnect().ok();
                }
            }
            Outcome::Presence {
                user_id,
                online,
                last_seen,
                contacts,
            } => {
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
            Outcome::Read(receipt) => announce_read(&io, receipt).await,
        }
    }
}

async fn announce_stored(
    io: &SocketIo,
    state: &AppState,
    Stored {
        device,
        message,
        fresh,
    }: Stored,
) {
    if let Some(s) = socket(io, &device) {
        s.emit(events::MESSAGE_SENT, &sent_payload(&message)).ok();
    }
    if !fresh {
        // A retry: recipients heard of it the first time.
        return;
    }
    if state.typing.stop(message.conversation_id, message.sender_id) {
        typing::announce(
            io,
            message.conversation_id,
            message.sender_id,
            &[message.recipient_id],
            false,
        )
        .await;
    }
    // Undelivered messages wait for the recipient's catch-up.
    if message.delivered_at.is_some() {
        deliver_live(io, &message).await;
    }
}

async fn deliver_live(io: &SocketIo, msg: &StoredMessage) {
    let payload = NewMessage {
        message_id: msg.id,
        conversation_id: msg.conversation_id,
        from_user_id: msg.sender_id,
        content: &msg.content,
        sent_at: iso(msg.sent_at),
        seq: msg.seq,
    };
    if let Err(e) = io
        .to(user_room(msg.recipient_id))
        .emit(events::NEW_MESSAGE, &payload)
        .await
    {
        tracing::warn!(error = %e, message_id = msg.id, "live delivery failed");
    }
    if let Some(at) = msg.delivered_at {
        tell_delivered(io, msg.id, msg.conversation_id, msg.sender_id, at).await;
    }
}

/// `message_delivered` to every device of the sender.
async fn tell_delivered(
    io: &SocketIo,
    message_id: i64,
    conversation_id: i64,
    sender: i64,
    at: DateTime<Utc>,
) {
    let receipt = MessageDelivered {
        message_id,
        delivered_at: iso(at),
        conversation_id,
    };
    io.to(user_room(sender))
        .emit(events::MESSAGE_DELIVERED, &receipt)
        .await
        .ok();
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

fn socket(io: &SocketIo, device: &str) -> Option<SocketRef> {
    Sid::from_str(device).ok().and_then(|sid| io.get_socket(sid))
}
