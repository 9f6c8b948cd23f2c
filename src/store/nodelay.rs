//! Turns off Nagle's algorithm on the process's PostgreSQL connections.
//!
//! sqlx 0.9.0 stopped setting `TCP_NODELAY` (launchbadge/sqlx#4335). A batch insert is
//! written in several segments, and Nagle holds the last one back until the server's
//! delayed ACK: measured here, every multi-row insert took ~95 ms over TCP against ~1 ms
//! over a Unix socket. sqlx offers no hook to the socket, so after each new connection we
//! find our TCP sockets connected to the database port and set the option ourselves.
//! Remove this once sqlx sets it again.
use std::os::fd::{BorrowedFd, RawFd};

/// Sets `TCP_NODELAY` on every TCP socket of this process whose peer port is `port`.
pub fn apply(port: u16) {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse::<RawFd>().ok()) else {
            continue;
        };
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
        if !is_socket {
            continue;
        }
        // SAFETY: the fd was listed as open by /proc/self/fd and is only borrowed for the
        // duration of these calls; socket2 does not close a borrowed fd.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let sock = socket2::SockRef::from(&fd);
        let peer_port = sock
            .peer_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .map(|a| a.port());
        if peer_port == Some(port) && sock.r#type().is_ok_and(|t| t == socket2::Type::STREAM) {
            let _ = sock.set_tcp_nodelay(true);
        }
    }
}
