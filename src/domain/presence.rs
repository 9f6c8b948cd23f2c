//! Which users have a connected device.
//!
//! This registry covers the devices connected to this node; with the in-process adapter
//! that is every device. Only the message writer changes it, in its own order, so a
//! message is either delivered live or found by the device's catch-up, never both.
use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
};

/// An opaque handle for one connected device (a socket id for the socket layer).
pub type DeviceId = String;

#[derive(Default)]
pub struct Presence {
    devices: Mutex<HashMap<i64, HashSet<DeviceId>>>,
}

impl Presence {
    /// Records a connected device; true when it is the user's first. Idempotent.
    pub fn device_connected(&self, user: i64, device: &DeviceId) -> bool {
        let mut devices = self.devices.lock().expect("presence lock poisoned");
        let set = devices.entry(user).or_default();
        set.insert(device.clone()) && set.len() == 1
    }

    /// Forgets a device; true when it was the user's last. Idempotent.
    pub fn device_disconnected(&self, user: i64, device: &DeviceId) -> bool {
        let mut devices = self.devices.lock().expect("presence lock poisoned");
        let Some(set) = devices.get_mut(&user) else {
            return false;
        };
        if !set.remove(device) {
            return false;
        }
        if set.is_empty() {
            devices.remove(&user);
            true
        } else {
            false
        }
    }

    pub fn is_online(&self, user: i64) -> bool {
        self.devices
            .lock()
            .expect("presence lock poisoned")
            .contains_key(&user)
    }
}

#[cfg(test)]
mod tests {
    use super::Presence;

    #[test]
    fn online_until_last_device_leaves() {
        let p = Presence::default();
        let (a, b) = ("a".to_string(), "b".to_string());
        assert!(p.device_connected(1, &a));
        assert!(!p.device_connected(1, &b));
        assert!(
            !p.device_connected(1, &b),
            "same device twice is not a new one"
        );
        assert!(!p.device_disconnected(1, &a));
        assert!(p.is_online(1));
        assert!(!p.device_disconnected(1, &a), "a device leaves once");
        assert!(p.device_disconnected(1, &b));
        assert!(!p.is_online(1));
    }
}
