//! The Socket.IO transport: thin handlers over the domain, one module per event family.
pub mod connect;
pub mod dispatch;
pub mod e2e;
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

use socketioxide::handler::ConnectHandler;

use crate::cluster::Adapter;

/// The Socket.IO server, its sockets and acks, over the cluster's adapter.
pub type SocketIo = socketioxide::SocketIo<Adapter>;
pub type SocketRef = socketioxide::extract::SocketRef<Adapter>;
pub type AckSender = socketioxide::extract::AckSender<Adapter>;

/// Registers the default namespace with its authentication middleware.
pub async fn register(io: &SocketIo) -> anyhow::Result<()> {
    io.ns("/", connect::on_connect.with(connect::admit))
        .await
        .map_err(|e| anyhow::anyhow!("the Socket.IO adapter did not start: {e}"))
}
