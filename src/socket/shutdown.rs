//! Leaving gracefully (SIGTERM, SIGINT): admit no one new, commit every send already
//! accepted, then drop each connection the way a lost link drops, so that clients
//! reconnect on their own, to another node behind the load balancer.
use std::{sync::Arc, time::Duration};

use socketioxide::SocketIo;

use super::session::Session;
use crate::domain::{limits::Connections, messaging::Messaging};

/// Time for the handlers of the last committed sends to answer their senders before
/// the connections go.
const ANSWER_TIME: Duration = Duration::from_millis(200);

pub struct Shutdown {
    pub io: SocketIo,
    pub messaging: Messaging,
    pub connections: Arc<Connections>,
}

impl Shutdown {
    pub async fn run(&self) {
        self.connections.close();
        // From here sends are refused (`unavailable`: resend after reconnecting); those
        // accepted before are committed and answered.
        self.messaging.drain().await;
        tokio::time::sleep(ANSWER_TIME).await;
        let sockets = self.io.sockets();
        tracing::info!(sockets = sockets.len(), "send queue drained: closing connections");
        for s in sockets {
            match s.extensions.get::<Arc<Session>>() {
                // A dropped transport, not a Socket.IO disconnect: clients reconnect.
                Some(session) => session.receipts.cut_off(&s),
                None => {
                    s.disconnect().ok();
                }
            }
        }
    }
}
