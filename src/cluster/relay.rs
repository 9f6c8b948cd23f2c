//! What one node decided that the others must carry out for their own sockets.
//!
//! socketioxide-redis carries broadcasts (receipts, typing, presence, group events) to
//! every node, but a message must be handed to each device on its own node so that its
//! proof of receipt (and so its delivered position) is tracked there; room moves only
//! apply to sockets in a live state; and sockets are ended by token. Those travel here,
//! on one channel, as JSON.
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use socketioxide_redis::drivers::Driver;
use tokio::sync::mpsc;

use super::bus::Bus;
use crate::domain::messaging::StoredMessage;

const CHANNEL: &str = "realtime-chat#relay";
/// Relayed events waiting for the dispatcher.
const BUFFER: usize = 16 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Relayed {
    /// Committed messages, in the order their node stored them.
    Stored { messages: Vec<Arc<StoredMessage>> },
    /// These users' live devices join a conversation's room; `since`: the conversation's
    /// seq before their first message in it, when known.
    Joined {
        conversation_id: i64,
        user_ids: Vec<i64>,
        since: Option<i64>,
    },
    /// These users' devices leave a conversation's room.
    Left {
        conversation_id: i64,
        user_ids: Vec<i64>,
    },
    /// End the sockets standing on `jti` (or all) of a user.
    EndSessions { user_id: i64, jti: Option<String> },
    /// A user came online or went offline cluster-wide (for every node's presence view).
    Presence { user_id: i64, online: bool },
}

impl Relayed {
    /// A short name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Relayed::Stored { .. } => "stored",
            Relayed::Joined { .. } => "joined",
            Relayed::Left { .. } => "left",
            Relayed::EndSessions { .. } => "end_sessions",
            Relayed::Presence { .. } => "presence",
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    from: String,
    event: Relayed,
}

/// Publishes to the other nodes and hears from them.
#[derive(Clone)]
pub struct Relay {
    bus: Bus,
    node: String,
}

impl Relay {
    pub fn new(bus: Bus, node: String) -> Self {
        Relay { bus, node }
    }

    pub fn is_clustered(&self) -> bool {
        self.bus.is_clustered()
    }

    /// Tells the other nodes (nothing with one node; dropped while Redis is away).
    pub fn publish(&self, event: Relayed) {
        if !self.bus.is_clustered() {
            return;
        }
        let envelope = Envelope {
            from: self.node.clone(),
            event,
        };
        match serde_json::to_vec(&envelope) {
            Ok(payload) => self.bus.publish_now(CHANNEL.to_owned(), payload),
            Err(e) => tracing::error!(error = %e, "a relayed event could not be serialised"),
        }
    }

    /// Returns once everything published before has left for the other nodes.
    pub async fn flush(&self) {
        self.bus.flush().await;
    }

    /// What the other nodes relay, in the order they published it.
    pub async fn subscribe(&self) -> mpsc::Receiver<Relayed> {
        let (tx, rx) = mpsc::channel(BUFFER);
        if !self.bus.is_clustered() {
            return rx;
        }
        let mut stream = match self.bus.subscribe(CHANNEL.to_owned(), BUFFER).await {
            Ok(stream) => stream,
            Err(e) => {
                tracing::error!(error = %e, "cannot hear from other nodes");
                return rx;
            }
        };
        let node = self.node.clone();
        tokio::spawn(async move {
            use futures_util::StreamExt;
            while let Some((_, payload)) = stream.next().await {
                match serde_json::from_slice::<Envelope>(&payload) {
                    Ok(envelope) if envelope.from == node => {}
                    Ok(envelope) => {
                        if tx.send(envelope.event).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "an unreadable event from another node"),
                }
            }
        });
        rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_back_as_written() {
        let envelope = Envelope {
            from: "a".into(),
            event: Relayed::Joined {
                conversation_id: 3,
                user_ids: vec![1, 2],
                since: Some(0),
            },
        };
        let json = serde_json::to_string(&envelope).unwrap();
        assert_eq!(
            json,
            r#"{"from":"a","event":{"kind":"joined","conversation_id":3,"user_ids":[1,2],"since":0}}"#
        );
        let back: Envelope = serde_json::from_str(&json).unwrap();
        assert!(matches!(
            back.event,
            Relayed::Joined {
                conversation_id: 3,
                ..
            }
        ));
    }
}
