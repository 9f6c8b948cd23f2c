//! The Socket.IO transport: thin handlers over the domain, one module per event family.
pub mod connect;
pub mod dispatch;
pub mod events;
pub mod expiry;
pub mod handshake;
pub mod lifecycle;
pub mod messaging;
pub mod ping;
pub mod proof;
pub mod receipts;
pub mod reply;
pub mod request_copy;
pub mod session;
pub mod shutdown;
pub mod sync;
pub mod typing;

use socketioxide::{SocketIo, handler::ConnectHandler};

/// Registers the default namespace with its authentication middleware.
pub fn register(io: &SocketIo) {
    io.ns("/", connect::on_connect.with(connect::admit));
}
