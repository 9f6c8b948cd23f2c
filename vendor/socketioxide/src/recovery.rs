//! The private session id of Socket.IO's connection state recovery. (realtime-chat patch;
//! see PATCH.md at the crate root.)
//!
//! socket.io-client 4.6+ keeps the `pid` a server puts in its CONNECT packet, records
//! the last string argument of each event it receives as its offset while it has one,
//! and sends both back in the auth of its next CONNECT. Upstream socketioxide never
//! sends a `pid` (issue #729). A connect middleware that inserts a [`PrivateSessionId`]
//! into the socket's extensions has it sent; what the application does with the `pid`
//! and `offset` it later receives is its own affair.

/// Sent as `pid` in the CONNECT packet of a socket whose extensions hold one.
#[derive(Clone, Debug)]
pub struct PrivateSessionId(pub String);
