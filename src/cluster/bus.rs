//! The Redis link between nodes: socketioxide-redis's driver, our relay's channel, and
//! the connection presence uses.
//!
//! Upstream's driver fails every emit once Redis is gone (the adapter publishes before
//! it delivers locally) and never resubscribes. Ours is built for a node that must keep
//! serving its own clients: publishing never fails (while Redis is away, what would go
//! to other nodes is dropped and recovered later by `seq`), the connection is redis-rs's
//! `ConnectionManager` (it reconnects and resubscribes by itself), and a probe reports
//! each change of state once, in the log and on `/health`.
use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use metrics::{counter, gauge};

use redis::{
    PushInfo, PushKind,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use tokio::sync::{mpsc, oneshot, watch};

use crate::monitoring;

/// How often the link is probed (and, while Redis is away, retried).
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// A command that takes longer than this counts as a lost link.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Publishes waiting for the link; past this, new ones are dropped (and recovered by seq).
const PUBLISH_QUEUE: usize = 64 * 1024;
/// Most publishes sent in one pipeline.
const PUBLISH_BATCH: usize = 512;

/// What `/health` says of Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// No `REDIS_URL`: one node, nothing to link.
    Unused,
    Connected,
    Down,
}

impl LinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Unused => "unused",
            LinkState::Connected => "connected",
            LinkState::Down => "down",
        }
    }
}

type Handlers = Arc<RwLock<HashMap<String, mpsc::Sender<ChanItem>>>>;

struct Link {
    conn: ConnectionManager,
    handlers: Handlers,
    state: watch::Sender<LinkState>,
    publish: mpsc::Sender<Queued>,
}

/// What the publisher sends, in order.
enum Queued {
    Message(String, Vec<u8>),
    /// Answered once everything queued before it was sent.
    Flush(oneshot::Sender<()>),
}

/// The driver handed to socketioxide-redis; also used by the relay and presence.
#[derive(Clone)]
pub struct Bus(Option<Arc<Link>>);

const UP: u8 = 1;
const DOWN: u8 = 2;

impl Bus {
    /// One node: publishing goes nowhere, subscriptions never hear anything.
    pub fn solo() -> Self {
        Bus(None)
    }

    /// A link to the Redis at `url`, connected in the background: a node starts (and
    /// serves its own clients) whether or not Redis is there yet.
    pub fn connect(url: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(with_resp3(url)?)?;
        let handlers: Handlers = Arc::default();
        let pushed = handlers.clone();
        let config = ConnectionManagerConfig::new()
            .set_push_sender(move |msg: PushInfo| {
                route(msg, &pushed);
                Ok::<(), std::convert::Infallible>(())
            })
            .set_automatic_resubscription()
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, config)?;
        let (state, _) = watch::channel(LinkState::Down);
        let (publish, queued) = mpsc::channel(PUBLISH_QUEUE);
        let link = Arc::new(Link {
            conn,
            handlers,
            state,
            publish,
        });
        tokio::spawn(probe(link.clone()));
        tokio::spawn(publisher(link.clone(), queued));
        Ok(Bus(Some(link)))
    }

    pub fn is_clustered(&self) -> bool {
        self.0.is_some()
    }

    pub fn state(&self) -> LinkState {
        match &self.0 {
            None => LinkState::Unused,
            Some(link) => *link.state.borrow(),
        }
    }

    /// Follows the link's state (Unused forever for one node).
    pub fn watch(&self) -> watch::Receiver<LinkState> {
        match &self.0 {
            None => watch::channel(LinkState::Unused).1,
            Some(link) => link.state.subscribe(),
        }
    }

    /// A connection for commands (presence), or None for one node.
    pub fn connection(&self) -> Option<ConnectionManager> {
        self.0.as_ref().map(|link| link.conn.clone())
    }

    /// Returns once everything published before has been sent to Redis (or failed to be).
    pub async fn flush(&self) {
        let Some(link) = &self.0 else { return };
        let (done, sent) = oneshot::channel();
        if link.publish.send(Queued::Flush(done)).await.is_ok() {
            let _ = sent.await;
        }
    }

    /// Queues a publish; never waits for Redis, never fails.
    pub fn publish_now(&self, chan: String, payload: Vec<u8>) {
        let Some(link) = &self.0 else { return };
        if *link.state.borrow() != LinkState::Connected
            || link.publish.try_send(Queued::Message(chan, payload)).is_err()
        {
            counter!(monitoring::CLUSTER_DROPPED).increment(1);
        }
    }
}

/// The manager's push channel carries subscribed messages: each goes to its channel's
/// handler. A full handler drops it (the relay recovers by seq; upstream does the same).
fn route(msg: PushInfo, handlers: &Handlers) {
    if !matches!(msg.kind, PushKind::Message) || msg.data.len() < 2 {
        return;
    }
    let mut data = msg.data.into_iter();
    let (Some(chan), Some(payload)) = (data.next(), data.next()) else {
        return;
    };
    let (Ok(chan), Ok(payload)) = (
        redis::from_redis_value::<String>(chan),
        redis::from_redis_value::<Vec<u8>>(payload),
    ) else {
        return;
    };
    let handlers = handlers.read().expect("handler lock poisoned");
    if let Some(tx) = handlers.get(&chan)
        && tx.try_send((chan, payload)).is_err()
    {
        tracing::warn!("a cluster channel's buffer is full: a message from another node was dropped");
    }
}

/// Probes the link, logs each change of state once, and (re)subscribes every channel
/// when it comes up: SUBSCRIBE is idempotent, and a restarted Redis knows nothing.
async fn probe(link: Arc<Link>) {
    let mut last = 0u8;
    loop {
        let mut conn = link.conn.clone();
        let up = redis::cmd("PING").query_async::<String>(&mut conn).await.is_ok();
        let now = if up { UP } else { DOWN };
        if now != last {
            if up {
                let channels: Vec<String> = link
                    .handlers
                    .read()
                    .expect("handler lock poisoned")
                    .keys()
                    .cloned()
                    .collect();
                let mut subscribed = true;
                for chan in channels {
                    if let Err(e) = conn.subscribe(&chan).await {
                        tracing::warn!(error = %e, chan, "subscribing to a cluster channel failed");
                        subscribed = false;
                    }
                }
                if subscribed {
                    tracing::info!("redis connected: events cross nodes");
                    gauge!(monitoring::REDIS_UP).set(1.0);
                    link.state.send_replace(LinkState::Connected);
                    last = now;
                }
            } else {
                tracing::warn!("redis unreachable: serving this node's clients only until it returns");
                gauge!(monitoring::REDIS_UP).set(0.0);
                link.state.send_replace(LinkState::Down);
                last = now;
            }
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
}

/// Sends queued publishes in order, many per round trip.
async fn publisher(link: Arc<Link>, mut queued: mpsc::Receiver<Queued>) {
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    while queued.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
        let mut pipe = redis::pipe();
        let mut flushed = Vec::new();
        for item in batch.drain(..) {
            match item {
                Queued::Message(chan, payload) => {
                    pipe.publish(chan, payload).ignore();
                }
                Queued::Flush(done) => flushed.push(done),
            }
        }
        if !pipe.is_empty() {
            let mut conn = link.conn.clone();
            if let Err(e) = pipe.query_async::<()>(&mut conn).await {
                tracing::debug!(error = %e, "publishing to other nodes failed");
            }
        }
        for done in flushed {
            let _ = done.send(());
        }
    }
}

/// socketioxide-redis's subscriptions need RESP3 push messages.
fn with_resp3(url: &str) -> anyhow::Result<String> {
    let mut parsed = url::Url::parse(url).map_err(|e| anyhow::anyhow!("REDIS_URL: {e}"))?;
    if !parsed.query_pairs().any(|(k, _)| k == "protocol") {
        parsed.query_pairs_mut().append_pair("protocol", "resp3");
    }
    Ok(parsed.into())
}

/// The error socketioxide-redis sees; publishing never produces one.
#[derive(Debug, thiserror::Error)]
#[error("redis: {0}")]
pub struct BusError(#[from] redis::RedisError);

impl Driver for Bus {
    type Error = BusError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Self::Error> {
        self.publish_now(chan, val);
        Ok(())
    }

    async fn subscribe(&self, chan: String, size: usize) -> Result<MessageStream<ChanItem>, Self::Error> {
        let Some(link) = &self.0 else {
            return Ok(MessageStream::new_empty());
        };
        let (tx, rx) = mpsc::channel(size);
        link.handlers
            .write()
            .expect("handler lock poisoned")
            .insert(chan.clone(), tx);
        // Subscribed now if Redis is there, else by the probe once it comes up (both may
        // happen: SUBSCRIBE is idempotent; asking only when the state says "up" would
        // miss a probe that is coming up right now).
        let mut conn = link.conn.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.subscribe(&chan).await {
                tracing::debug!(error = %e, chan, "not subscribed yet: the probe will");
            }
        });
        Ok(MessageStream::new(rx))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        let Some(link) = &self.0 else { return Ok(()) };
        link.handlers
            .write()
            .expect("handler lock poisoned")
            .remove(&chan);
        let _ = link.conn.clone().unsubscribe(&chan).await;
        Ok(())
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        let Some(link) = &self.0 else { return Ok(1) };
        let mut conn = link.conn.clone();
        let (_, count): (String, u16) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(chan)
            .query_async(&mut conn)
            .await?;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp3_is_asked_for_unless_the_url_says_otherwise() {
        assert_eq!(
            with_resp3("redis://127.0.0.1:6379").unwrap(),
            "redis://127.0.0.1:6379?protocol=resp3"
        );
        assert_eq!(
            with_resp3("redis://h:1/2?protocol=resp3").unwrap(),
            "redis://h:1/2?protocol=resp3"
        );
        assert!(with_resp3("not a url").is_err());
    }
}
