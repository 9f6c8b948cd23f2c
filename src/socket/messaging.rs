//! `send_message`: parse, queue in arrival order, answer the sender.
use super::{AckSender, SocketRef};
use std::sync::Arc;

use socketioxide::extract::{State, TryData};

use super::{
    events::{EncryptedIn, MessageSent, SendMessage, iso},
    reply::reply_error,
    session::Arrival,
    shutdown::SendsInFlight,
};
use crate::{
    domain::{
        DomainError,
        e2e::envelopes::{Envelope, Envelopes},
        messaging::{SendRequest, SendTarget, StoredMessage},
        types::{ClientMsgId, Content},
    },
    state::AppState,
};

pub async fn send_message(
    s: SocketRef,
    arrival: Arrival,
    ack: AckSender,
    State(state): State<AppState>,
    State(in_flight): State<Arc<SendsInFlight>>,
    TryData(payload): TryData<SendMessage>,
) {
    let Some(session) = arrival.session else {
        return;
    };
    // A draining node waits for this answer before it drops the connection.
    let _answering = in_flight.enter();
    let queued = {
        // Every ticket takes its turn, refused or not, or the sends behind it would wait forever.
        let _turn = session.turn(arrival.ticket).await;
        match state.limits.sends.check(session.user_id).and_then(|()| {
            parse(
                session.user_id,
                s.id.to_string(),
                payload,
                state.config.max_message_bytes,
                state.config.max_encrypted_bytes,
            )
        }) {
            Ok(req) => state.messaging.send(req).await,
            Err(e) => Err(e),
        }
    };
    if session.note_refusal(matches!(queued, Err(DomainError::RateLimited { .. }))) {
        tracing::warn!(
            user_id = session.user_id,
            "sustained send flood: socket disconnected"
        );
        reply_error(&s, ack, &queued.err().unwrap_or(DomainError::Unavailable));
        s.disconnect().ok();
        return;
    }
    let result = match queued {
        Ok(committed) => committed.await.unwrap_or(Err(DomainError::Unavailable)),
        Err(e) => Err(e),
    };
    match result {
        // `message_sent` itself is emitted by the dispatcher, in order with the delivery.
        Ok(stored) => {
            ack.send(&sent_payload(&stored)).ok();
        }
        Err(e) => reply_error(&s, ack, &e),
    }
}

fn parse(
    sender: i64,
    device: String,
    payload: Result<SendMessage, socketioxide::ParserError>,
    max_bytes: usize,
    max_encrypted_bytes: usize,
) -> Result<SendRequest, DomainError> {
    let payload = payload.map_err(|_| {
        DomainError::InvalidInput(
            "send_message needs to_user_id (a user id) or conversation_id, and content (a string) \
             or encrypted (an object)"
                .into(),
        )
    })?;
    let target = match (&payload.to_user_id, &payload.conversation_id) {
        (Some(to), None) => SendTarget::Direct(
            to.parse()
                .ok_or_else(|| DomainError::InvalidInput("to_user_id must be a numeric user id".into()))?,
        ),
        (None, Some(c)) => SendTarget::Conversation(
            c.parse()
                .ok_or_else(|| DomainError::InvalidInput("conversation_id must be a numeric id".into()))?,
        ),
        _ => {
            return Err(DomainError::InvalidInput(
                "send_message needs exactly one of to_user_id or conversation_id".into(),
            ));
        }
    };
    let attachment_id = match &payload.attachment_id {
        None => None,
        Some(id) => Some(
            id.parse()
                .ok_or_else(|| DomainError::InvalidInput("attachment_id must be an attachment id".into()))?,
        ),
    };
    let client_msg_id = payload
        .client_msg_id
        .as_deref()
        .map(ClientMsgId::parse)
        .transpose()?;
    let reply_to = match &payload.reply_to {
        None => None,
        Some(id) => Some(
            id.parse()
                .ok_or_else(|| DomainError::InvalidInput("reply_to must be a message id".into()))?,
        ),
    };
    let request = match (payload.content, payload.encrypted) {
        (content, None) => {
            let content = match (content, attachment_id) {
                (content, Some(_)) => Content::caption(content, max_bytes)?,
                (Some(content), None) => Content::parse(content, max_bytes)?,
                (None, None) => {
                    return Err(DomainError::InvalidInput(
                        "send_message needs content (a string), encrypted (an object) or attachment_id"
                            .into(),
                    ));
                }
            };
            SendRequest::new(sender, device, target, content, client_msg_id)?
        }
        (None, Some(encrypted)) => SendRequest::new_encrypted(
            sender,
            device,
            target,
            envelopes(encrypted, max_encrypted_bytes)?,
            client_msg_id,
        )?,
        (Some(_), Some(_)) => {
            return Err(DomainError::InvalidInput(
                "an encrypted message carries no content: its text is in its envelopes".into(),
            ));
        }
    };
    request.replying_to(reply_to)?.carrying(attachment_id)
}

/// `encrypted: { envelopes: [{ user_id, device_id, type, body }] }`, checked.
fn envelopes(raw: serde_json::Value, max_bytes: usize) -> Result<Envelopes, DomainError> {
    let parsed: EncryptedIn = serde_json::from_value(raw).map_err(|e| {
        DomainError::InvalidInput(format!(
            "encrypted must be {{ sender_device_id, envelopes: [{{ user_id, device_id, type, body }}] }}: {e}"
        ))
    })?;
    let list = parsed
        .envelopes
        .into_iter()
        .map(|e| {
            let user_id = e.user_id.parse().ok_or_else(|| {
                DomainError::InvalidInput("each envelope's user_id must be a user id".into())
            })?;
            Ok(Envelope {
                user_id,
                device_id: e.device_id,
                kind: e.kind,
                body: e.body,
            })
        })
        .collect::<Result<Vec<_>, DomainError>>()?;
    Envelopes::parse(parsed.sender_device_id, list, max_bytes)
}

pub fn sent_payload(m: &StoredMessage) -> MessageSent {
    MessageSent {
        message_id: m.id,
        conversation_id: m.conversation_id,
        status: "sent",
        sent_at: iso(m.sent_at),
        seq: m.seq,
    }
}
