//! Presence across nodes, kept in Redis.
//!
//! - `rc:p:{user}`: a hash of the nodes where the user has a device (field: node id).
//! - `rc:n:{node}`: the users with a device on a node, so a dead node's can be found.
//! - `rc:online`: users online or lingering anywhere; joining it is "came online".
//! - `rc:lg:{user}`: the linger that may end it (`node:generation`).
//! - `rc:nodes`: each node's last heartbeat (ms). A node silent for `ttl` is dead: the
//!   first survivor to claim it takes its users off and announces those left with no
//!   device anywhere (`user_offline` to their contacts), and marks it `rc:swept:{node}`
//!   so that, should it come back, it announces its users online again.
//!
//! Each step is one Lua script, so two nodes deciding about one user cannot interleave.
use std::{
    collections::HashSet,
    sync::{Arc, RwLock},
    time::Duration,
};

use futures_util::{FutureExt, future::BoxFuture};
use redis::{Script, aio::ConnectionManager};

use super::{
    bus::{Bus, LinkState},
    relay::{Relay, Relayed},
};
use crate::domain::{
    messaging::Messaging,
    presence::{Presence, Registry},
};

const ONLINE: &str = "rc:online";
const NODES: &str = "rc:nodes";

fn devices_key(user: i64) -> String {
    format!("rc:p:{user}")
}
fn node_key(node: &str) -> String {
    format!("rc:n:{node}")
}
fn linger_key(user: i64) -> String {
    format!("rc:lg:{user}")
}

/// KEYS: devices, node's users, online, linger. ARGV: node, user.
const ARRIVE: &str = r"
redis.call('HSET', KEYS[1], ARGV[1], 1)
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[4])
return redis.call('SADD', KEYS[3], ARGV[2])";

/// KEYS: devices, node's users, linger. ARGV: node, user, token.
const DEPART: &str = r"
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[2], ARGV[2])
if redis.call('HLEN', KEYS[1]) > 0 then return 0 end
redis.call('SET', KEYS[3], ARGV[3])
return 1";

/// KEYS: devices, linger, online. ARGV: token, user.
const EXPIRE: &str = r"
if redis.call('HLEN', KEYS[1]) > 0 then return 0 end
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], ARGV[2])
return 1";

/// KEYS: nodes, the dead node's users, online. ARGV: dead node. Returns the users it
/// leaves with no device anywhere (none if another survivor claimed the node first).
const SWEEP: &str = r"
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return {} end
local gone = {}
for _, user in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local devices = 'rc:p:' .. user
  redis.call('HDEL', devices, ARGV[1])
  if redis.call('HLEN', devices) == 0 and redis.call('SREM', KEYS[3], user) == 1 then
    redis.call('DEL', 'rc:lg:' .. user)
    table.insert(gone, tonumber(user))
  end
end
redis.call('DEL', KEYS[2])
redis.call('SET', 'rc:swept:' .. ARGV[1], 1, 'EX', 86400)
return gone";

pub struct RedisPresence {
    bus: Bus,
    conn: ConnectionManager,
    node: String,
    relay: Relay,
    /// `rc:online` as last heard: read on every conversation list, so never a round trip.
    online: RwLock<HashSet<i64>>,
    arrive: Script,
    depart: Script,
    expire: Script,
    sweep: Script,
}

impl RedisPresence {
    /// None for one node.
    pub fn new(bus: &Bus, node: &str, relay: Relay) -> Option<Arc<Self>> {
        Some(Arc::new(RedisPresence {
            bus: bus.clone(),
            conn: bus.connection()?,
            node: node.to_owned(),
            relay,
            online: RwLock::default(),
            arrive: Script::new(ARRIVE),
            depart: Script::new(DEPART),
            expire: Script::new(EXPIRE),
            sweep: Script::new(SWEEP),
        }))
    }

    fn reachable(&self) -> bool {
        self.bus.state() == LinkState::Connected
    }

    fn token(&self, generation: u64) -> String {
        format!("{}:{generation}", self.node)
    }

    /// Another node's word that a user came or went.
    pub fn heard(&self, user: i64, online: bool) {
        let mut set = self.online.write().expect("presence mirror poisoned");
        if online {
            set.insert(user);
        } else {
            set.remove(&user);
        }
    }

    fn changed(&self, user: i64, online: bool) {
        self.heard(user, online);
        self.relay.publish(Relayed::Presence {
            user_id: user,
            online,
        });
    }

    /// Heartbeats this node, registers its users again when Redis lost them, and sweeps
    /// dead nodes; every `ttl / 4`.
    pub async fn upkeep(self: Arc<Self>, ttl: Duration, local: Arc<Presence>, messaging: Messaging) {
        let every = (ttl / 4).max(Duration::from_millis(100));
        // Beats left that re-read `rc:online` whole: after this node (re)joins, the other
        // nodes' users come back as those nodes register them again, each on its own beat.
        let mut reread = 0u32;
        let mut was_reachable = false;
        loop {
            match self
                .beat(ttl, &local, &messaging, &mut reread, !was_reachable)
                .await
            {
                Ok(()) => was_reachable = true,
                Err(e) => {
                    if was_reachable {
                        tracing::debug!(error = %e, "presence heartbeat failed");
                    }
                    was_reachable = false;
                }
            }
            tokio::time::sleep(every).await;
        }
    }

    async fn beat(
        &self,
        ttl: Duration,
        local: &Presence,
        messaging: &Messaging,
        reread: &mut u32,
        just_back: bool,
    ) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        let now = chrono::Utc::now().timestamp_millis();
        let added: i64 = redis::cmd("ZADD")
            .arg(NODES)
            .arg(now)
            .arg(&self.node)
            .query_async(&mut conn)
            .await?;
        if added == 1 {
            // New to the registry: first start, a Redis that restarted, or a node others
            // took for dead. Its users are here: say so, and announce those taken off.
            let users = local.local_users();
            let mut pipe = redis::pipe();
            for user in &users {
                pipe.hset(devices_key(*user), &self.node, 1).ignore();
                pipe.sadd(node_key(&self.node), *user).ignore();
                pipe.sadd(ONLINE, *user);
            }
            let fresh: Vec<i64> = if users.is_empty() {
                Vec::new()
            } else {
                pipe.query_async(&mut conn).await?
            };
            // Announced offline by a survivor that took this node for dead: announce its
            // users online again. After a Redis restart (no such mark) they never
            // looked offline to anyone, and nothing is said.
            let swept: i64 = redis::cmd("DEL")
                .arg(format!("rc:swept:{}", self.node))
                .query_async(&mut conn)
                .await?;
            for (user, fresh) in users.iter().zip(fresh) {
                if fresh == 1 {
                    // The other nodes learn it either way.
                    self.changed(*user, true);
                    if swept == 1 {
                        messaging.presence_changed(*user, None).await;
                    }
                }
            }
        }
        if added == 1 || just_back {
            *reread = 4;
        }
        if *reread > 0 {
            *reread -= 1;
            let members: Vec<i64> = redis::cmd("SMEMBERS").arg(ONLINE).query_async(&mut conn).await?;
            let mut mirror = self.online.write().expect("presence mirror poisoned");
            *mirror = members.into_iter().collect();
            mirror.extend(local.local_users());
        }
        let dead: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(NODES)
            .arg("-inf")
            .arg(now - ttl.as_millis() as i64)
            .query_async(&mut conn)
            .await?;
        for node in dead.into_iter().filter(|n| *n != self.node) {
            let gone: Vec<i64> = self
                .sweep
                .key(NODES)
                .key(node_key(&node))
                .key(ONLINE)
                .arg(&node)
                .invoke_async(&mut conn)
                .await?;
            if !gone.is_empty() {
                tracing::warn!(
                    node,
                    users = gone.len(),
                    "a node stopped without a goodbye: its users are offline"
                );
            }
            let at = crate::store::now();
            for user in gone {
                self.changed(user, false);
                messaging.presence_changed(user, Some(at)).await;
            }
        }
        Ok(())
    }
}

impl Registry for RedisPresence {
    fn arrived(&self, user: i64) -> BoxFuture<'_, Option<bool>> {
        async move {
            if !self.reachable() {
                return None;
            }
            let fresh: i64 = self
                .arrive
                .key(devices_key(user))
                .key(node_key(&self.node))
                .key(ONLINE)
                .key(linger_key(user))
                .arg(&self.node)
                .arg(user)
                .invoke_async(&mut self.conn.clone())
                .await
                .ok()?;
            if fresh == 1 {
                self.changed(user, true);
            } else {
                self.heard(user, true);
            }
            Some(fresh == 1)
        }
        .boxed()
    }

    fn departed(&self, user: i64, token: u64) -> BoxFuture<'_, Option<bool>> {
        async move {
            if !self.reachable() {
                return None;
            }
            let none_left: i64 = self
                .depart
                .key(devices_key(user))
                .key(node_key(&self.node))
                .key(linger_key(user))
                .arg(&self.node)
                .arg(user)
                .arg(self.token(token))
                .invoke_async(&mut self.conn.clone())
                .await
                .ok()?;
            Some(none_left == 1)
        }
        .boxed()
    }

    fn expired(&self, user: i64, token: u64) -> BoxFuture<'_, Option<bool>> {
        async move {
            if !self.reachable() {
                return None;
            }
            let offline: i64 = self
                .expire
                .key(devices_key(user))
                .key(linger_key(user))
                .key(ONLINE)
                .arg(self.token(token))
                .arg(user)
                .invoke_async(&mut self.conn.clone())
                .await
                .ok()?;
            if offline == 1 {
                self.changed(user, false);
            }
            Some(offline == 1)
        }
        .boxed()
    }

    fn appears_online(&self, user: i64) -> bool {
        self.online
            .read()
            .expect("presence mirror poisoned")
            .contains(&user)
    }
}
