//! End-to-end encryption's one server event: `prekeys_low`, to every device of the
//! user whose device runs low (a broadcast to the user's room, which crosses nodes).
use super::{
    SocketIo,
    events::{self, PrekeysLow, user_room},
};

pub async fn announce_prekeys_low(io: &SocketIo, user_id: i64, device_id: i64, remaining: i64) {
    let sent = io
        .to(user_room(user_id))
        .emit(events::PREKEYS_LOW, &PrekeysLow { device_id, remaining })
        .await;
    if let Err(e) = sent {
        tracing::warn!(error = %e, user_id, device_id, "prekeys_low not announced");
    }
}
