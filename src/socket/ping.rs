//! `ping` → `pong`: an application-level heartbeat the seed's clients use.
use super::SocketRef;
use chrono::Utc;

use super::events::{self, Pong, iso};

pub async fn ping(s: SocketRef) {
    s.emit(
        events::PONG,
        &Pong {
            timestamp: iso(Utc::now()),
        },
    )
    .ok();
}
