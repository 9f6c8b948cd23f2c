//! Who is online, and when users were last seen.
//!
//! This registry covers the devices connected to this node; with one node that is
//! every device. With several, a [`Registry`] (Redis) is asked whenever a user's
//! first device arrives on this node or their last one leaves it, so that "online" and
//! "offline" mean anywhere. Only the message writer changes it, in its own order, so a
//! message is either delivered live or found by the device's catch-up, never both.
//!
//! A user whose last device leaves lingers (still appears online) for a grace period, so
//! a quick reconnect (to this node or another) does not flap offline/online to their
//! contacts.
use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;

/// Presence across nodes. Each call answers None when the registry cannot be reached:
/// this node then decides from what it knows itself.
pub trait Registry: Send + Sync {
    /// `user`'s first device on this node arrived: whether they were offline everywhere.
    fn arrived(&self, user: i64) -> BoxFuture<'_, Option<bool>>;
    /// `user`'s last device on this node left: whether none is left anywhere (a linger
    /// named `token` then starts).
    fn departed(&self, user: i64, token: u64) -> BoxFuture<'_, Option<bool>>;
    /// The linger `token` ran its course: whether the user is now offline everywhere
    /// (false if a device came back anywhere, or a later linger took over).
    fn expired(&self, user: i64, token: u64) -> BoxFuture<'_, Option<bool>>;
    /// Whether the user has a device, or lingers, on any node (as last heard).
    fn appears_online(&self, user: i64) -> bool;
}

/// An opaque handle for one connected device (a socket id for the socket layer).
pub type DeviceId = String;

#[derive(Default)]
struct Inner {
    devices: HashMap<i64, HashSet<DeviceId>>,
    /// Users with no device left, not yet announced offline: (generation, left at).
    lingering: HashMap<i64, (u64, DateTime<Utc>)>,
    generation: u64,
}

#[derive(Default)]
pub struct Presence {
    inner: Mutex<Inner>,
    cluster: Option<Arc<dyn Registry>>,
}

/// What a device connecting means for the user's contacts.
#[derive(Debug, PartialEq, Eq)]
pub enum Arrival {
    /// The user was offline: announce them online.
    CameOnline,
    /// The user was online or lingering: nothing to announce.
    Unchanged,
}

/// What a device leaving means.
#[derive(Debug, PartialEq, Eq)]
pub enum Departure {
    /// Other devices remain (or the device was unknown).
    Unchanged,
    /// The last device left: the user lingers; expire `generation` after the grace period.
    Lingering { generation: u64 },
}

impl Presence {
    /// Presence shared with other nodes through `cluster`.
    pub fn clustered(cluster: Arc<dyn Registry>) -> Self {
        Presence {
            inner: Mutex::default(),
            cluster: Some(cluster),
        }
    }

    /// Records a connected device (idempotent) and says what it means anywhere.
    pub async fn connect(&self, user: i64, device: &DeviceId) -> Arrival {
        let (local, first_here) = {
            let mut inner = self.lock();
            let had_devices = inner.devices.contains_key(&user);
            (Self::arrive(&mut inner, user, device), !had_devices)
        };
        let Some(cluster) = &self.cluster else {
            return local;
        };
        if !first_here {
            return Arrival::Unchanged;
        }
        match cluster.arrived(user).await {
            Some(true) => Arrival::CameOnline,
            Some(false) => Arrival::Unchanged,
            None => local,
        }
    }

    /// Forgets a device (idempotent); a linger starts only when no device is left anywhere.
    pub async fn disconnect(&self, user: i64, device: &DeviceId, at: DateTime<Utc>) -> Departure {
        let local = self.device_disconnected(user, device, at);
        let (Some(cluster), Departure::Lingering { generation }) = (&self.cluster, &local) else {
            return local;
        };
        match cluster.departed(user, *generation).await {
            Some(false) => {
                // Online elsewhere: nothing lingers here.
                self.lock().lingering.remove(&user);
                Departure::Unchanged
            }
            _ => local,
        }
    }

    /// Ends a linger nothing interrupted, here or elsewhere; returns when the user was
    /// last seen.
    pub async fn expire_anywhere(&self, user: i64, generation: u64) -> Option<DateTime<Utc>> {
        let at = self.expire(user, generation)?;
        match &self.cluster {
            Some(cluster) => match cluster.expired(user, generation).await {
                Some(false) => None,
                _ => Some(at),
            },
            None => Some(at),
        }
    }

    /// Users with a device on this node (to register again with a registry that lost them).
    pub fn local_users(&self) -> Vec<i64> {
        self.lock().devices.keys().copied().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("presence lock poisoned")
    }

    /// Records a connected device. Idempotent.
    pub fn device_connected(&self, user: i64, device: &DeviceId) -> Arrival {
        let mut inner = self.lock();
        Self::arrive(&mut inner, user, device)
    }

    fn arrive(inner: &mut Inner, user: i64, device: &DeviceId) -> Arrival {
        let was_lingering = inner.lingering.remove(&user).is_some();
        let set = inner.devices.entry(user).or_default();
        let first = set.insert(device.clone()) && set.len() == 1;
        if first && !was_lingering {
            Arrival::CameOnline
        } else {
            Arrival::Unchanged
        }
    }

    /// Forgets a device. Idempotent.
    pub fn device_disconnected(&self, user: i64, device: &DeviceId, at: DateTime<Utc>) -> Departure {
        let mut inner = self.lock();
        let Some(set) = inner.devices.get_mut(&user) else {
            return Departure::Unchanged;
        };
        if !set.remove(device) || !set.is_empty() {
            return Departure::Unchanged;
        }
        inner.devices.remove(&user);
        inner.generation += 1;
        let generation = inner.generation;
        inner.lingering.insert(user, (generation, at));
        Departure::Lingering { generation }
    }

    /// Ends a linger that nothing interrupted; returns when the user was last seen.
    pub fn expire(&self, user: i64, generation: u64) -> Option<DateTime<Utc>> {
        let mut inner = self.lock();
        match inner.lingering.get(&user) {
            Some((g, at)) if *g == generation => {
                let at = *at;
                inner.lingering.remove(&user);
                Some(at)
            }
            _ => None,
        }
    }

    /// Whether a device of the user is connected (messages can be handed over now).
    pub fn is_connected(&self, user: i64) -> bool {
        self.lock().devices.contains_key(&user)
    }

    /// Whether a device of the user is connected here or, as last heard, on another node
    /// (push hooks go to users without one). A user lingering here has none anywhere:
    /// their last device left, and no other node had one when it did.
    pub fn has_device_anywhere(&self, user: i64) -> bool {
        {
            let inner = self.lock();
            if inner.devices.contains_key(&user) {
                return true;
            }
            if inner.lingering.contains_key(&user) {
                return false;
            }
        }
        self.cluster.as_ref().is_some_and(|c| c.appears_online(user))
    }

    /// Whether contacts should see the user as online (connected, or within the grace).
    pub fn appears_online(&self, user: i64) -> bool {
        let here = {
            let inner = self.lock();
            inner.devices.contains_key(&user) || inner.lingering.contains_key(&user)
        };
        here || self.cluster.as_ref().is_some_and(|c| c.appears_online(user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn online_until_last_device_leaves_then_lingers() {
        let p = Presence::default();
        let (a, b) = ("a".to_string(), "b".to_string());
        let now = Utc::now();
        assert_eq!(p.device_connected(1, &a), Arrival::CameOnline);
        assert_eq!(p.device_connected(1, &b), Arrival::Unchanged);
        assert_eq!(
            p.device_connected(1, &b),
            Arrival::Unchanged,
            "same device twice is not a new one"
        );
        assert_eq!(p.device_disconnected(1, &a, now), Departure::Unchanged);
        assert_eq!(
            p.device_disconnected(1, &a, now),
            Departure::Unchanged,
            "a device leaves once"
        );
        let Departure::Lingering { generation } = p.device_disconnected(1, &b, now) else {
            panic!()
        };
        assert!(!p.is_connected(1));
        assert!(p.appears_online(1));
        assert_eq!(p.expire(1, generation), Some(now));
        assert!(!p.appears_online(1));
        assert_eq!(p.expire(1, generation), None);
    }

    #[test]
    fn a_lingering_user_has_no_device_for_push_hooks() {
        let p = Presence::default();
        let a = "a".to_string();
        assert!(!p.has_device_anywhere(1), "never connected");
        p.device_connected(1, &a);
        assert!(p.has_device_anywhere(1));
        p.device_disconnected(1, &a, Utc::now());
        assert!(p.appears_online(1), "contacts still see them online");
        assert!(
            !p.has_device_anywhere(1),
            "but no device would show a notification"
        );
    }

    #[test]
    fn quick_reconnect_cancels_the_linger() {
        let p = Presence::default();
        let (a, b) = ("a".to_string(), "b".to_string());
        p.device_connected(1, &a);
        let Departure::Lingering { generation } = p.device_disconnected(1, &a, Utc::now()) else {
            panic!()
        };
        assert_eq!(
            p.device_connected(1, &b),
            Arrival::Unchanged,
            "no online announcement after a blip"
        );
        assert_eq!(
            p.expire(1, generation),
            None,
            "the old linger must not announce offline"
        );
        assert!(p.is_connected(1));
    }
}
