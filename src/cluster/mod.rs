//! Several nodes joined by Redis (`REDIS_URL`); without it, one node and nothing here
//! does anything.
//!
//! - socketioxide-redis carries every broadcast (`io.to(room).emit`) to every node,
//!   over our own driver (`bus`) that keeps a node serving its clients while Redis is
//!   away.
//! - `relay` carries what each node must do for its own sockets: committed messages
//!   (each node hands them to its devices and tracks their proof of receipt), room
//!   moves, ended sessions, presence changes.
//! - `presence` keeps who is online anywhere, and notices dead nodes.
pub mod bus;
pub mod presence;
pub mod relay;

use std::sync::Arc;

use socketioxide_redis::{CustomRedisAdapter, RedisAdapterConfig, RedisAdapterCtr};

use crate::config::Config;
use bus::Bus;
use presence::RedisPresence;
use relay::Relay;

/// The Socket.IO adapter of every node (with one node its bus publishes nowhere).
pub type Adapter = CustomRedisAdapter<socketioxide::adapter::Emitter, Bus>;

/// This node's part in the cluster.
#[derive(Clone)]
pub struct Cluster {
    pub bus: Bus,
    pub relay: Relay,
    /// Presence across nodes (None for one node).
    pub presence: Option<Arc<RedisPresence>>,
}

impl Cluster {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let bus = match &config.redis_url {
            Some(url) => Bus::connect(url)?,
            None => Bus::solo(),
        };
        let relay = Relay::new(bus.clone(), config.node_id.clone());
        let presence = RedisPresence::new(&bus, &config.node_id, relay.clone());
        Ok(Cluster { bus, relay, presence })
    }

    /// What socketioxide-redis is built from.
    pub fn adapter(&self) -> RedisAdapterCtr<Bus> {
        RedisAdapterCtr::new_with_driver(
            self.bus.clone(),
            RedisAdapterConfig::new()
                .with_prefix("realtime-chat")
                // A burst of receipts from a busy node must not be dropped on arrival.
                .with_stream_buffer(64 * 1024),
        )
    }
}
