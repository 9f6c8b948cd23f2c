//! A minimal Socket.IO v5 client over a raw websocket: just enough of the protocol to
//! drive a server at full speed (text events, handshake auth, engine.io ping/pong).
//!
//! Hand-written on purpose: the load generator must cost far less CPU than the server it
//! measures, and the generic Rust clients add callbacks, locks and reconnection logic.
use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// Something the server said.
#[derive(Debug)]
pub enum Incoming {
    Event(String, Value),
    Closed,
}

/// One connected socket: send events through it, read what arrives on `rx`.
pub struct Client {
    tx: mpsc::UnboundedSender<Message>,
    pub rx: mpsc::UnboundedReceiver<Incoming>,
}

impl Client {
    /// Opens a websocket, authenticates with `token` and waits for the namespace connect.
    pub async fn connect(base: &str, token: &str) -> anyhow::Result<Client> {
        tokio::time::timeout(std::time::Duration::from_secs(30), Self::handshake(base, token))
            .await
            .context("handshake timed out")?
    }

    async fn handshake(base: &str, token: &str) -> anyhow::Result<Client> {
        let url = format!(
            "{}/socket.io/?EIO=4&transport=websocket",
            base.replacen("http", "ws", 1)
        );
        let (ws, _) = tokio_tungstenite::connect_async(&url)
            .await
            .with_context(|| format!("connecting {url}"))?;
        let (mut sink, mut stream) = ws.split();

        // Engine.IO open packet, then our namespace CONNECT with the auth payload.
        match stream.next().await {
            Some(Ok(Message::Text(t))) if t.starts_with('0') => {}
            other => bail!("unexpected engine.io open: {other:?}"),
        }
        let auth = serde_json::json!({ "token": token });
        sink.send(Message::text(format!("40{auth}"))).await?;
        loop {
            match stream.next().await {
                Some(Ok(Message::Text(t))) if t.starts_with("40") => break,
                Some(Ok(Message::Text(t))) if t.starts_with("44") => bail!("connect_error: {t}"),
                Some(Ok(Message::Text(t))) if t.as_str() == "2" => sink.send(Message::text("3")).await?,
                Some(Ok(_)) => {}
                other => bail!("connection closed during handshake: {other:?}"),
            }
        }

        let (tx, mut out_rx) = mpsc::unbounded_channel::<Message>();
        let (in_tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(m) = out_rx.recv().await {
                if sink.send(m).await.is_err() {
                    break;
                }
            }
        });
        let pong = tx.clone();
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Message::Text(text) = msg else { continue };
                let text = text.as_str();
                if text == "2" {
                    let _ = pong.send(Message::text("3"));
                } else if let Some(body) = text.strip_prefix("42")
                    && let Ok((name, payload)) = serde_json::from_str::<(String, Value)>(body)
                    && in_tx.send(Incoming::Event(name, payload)).is_err()
                {
                    break;
                }
            }
            let _ = in_tx.send(Incoming::Closed);
        });
        Ok(Client { tx, rx })
    }

    /// Emits `event` with one JSON payload.
    pub fn emit(&self, event: &str, payload: &Value) {
        let frame = format!("42{}", serde_json::json!([event, payload]));
        let _ = self.tx.send(Message::text(frame));
    }
}
