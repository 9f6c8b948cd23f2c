//! Announces what the message writer committed, in the writer's order.
use std::str::FromStr;

use socketioxide::{SocketIo, socket::Sid};
use tokio::sync::mpsc;

use super::{
    events::{self, MessageDelivered, NewMessage, iso, user_room},
    messaging::sent_payload,
};
use crate::domain::messaging::{Messaging, Outcome, StoredMessage};

/// Runs until the writer stops.
pub async fn run(
    io: SocketIo,
    messaging: Messaging,
    mut outcomes: mpsc::UnboundedReceiver<Outcome>,
) {
    while let Some(outcome) = outcomes.recv().await {
        match outcome {
            Outcome::Stored(batch) => {
                for (device, msg) in batch {
                    if let Some(s) = socket(&io, &device) {
                        s.emit(events::MESSAGE_SENT, &sent_payload(&msg)).ok();
                    }
                    if msg.delivered_at.is_some() {
                        deliver_live(&io, &msg).await;
                    }
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
                    messaging.device_disconnected(user_id, device).await;
                    continue;
                };
                s.join(user_room(user_id));
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
                    let receipt = MessageDelivered {
                        message_id: m.id,
                        delivered_at: iso(delivered_at),
                        conversation_id: m.conversation_id,
                    };
                    io.to(user_room(m.sender_id))
                        .emit(events::MESSAGE_DELIVERED, &receipt)
                        .await
                        .ok();
                }
            }
            Outcome::CatchUpFailed { device } => {
                if let Some(s) = socket(&io, &device) {
                    s.disconnect().ok();
                }
            }
        }
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
        let receipt = MessageDelivered {
            message_id: msg.id,
            delivered_at: iso(at),
            conversation_id: msg.conversation_id,
        };
        io.to(user_room(msg.sender_id))
            .emit(events::MESSAGE_DELIVERED, &receipt)
            .await
            .ok();
    }
}

fn socket(io: &SocketIo, device: &str) -> Option<socketioxide::extract::SocketRef> {
    Sid::from_str(device)
        .ok()
        .and_then(|sid| io.get_socket(sid))
}
