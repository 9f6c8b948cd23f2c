//! A minimal Socket.IO v5 client over a raw websocket: just enough of the protocol to
//! drive a server at full speed (text events, handshake auth, engine.io ping/pong).
//!
//! Hand-written on purpose: the load generator must cost far less CPU than the server it
//! measures, and the generic Rust clients add callbacks, locks and reconnection logic.
use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::{net::TcpStream, sync::mpsc};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{Message, Utf8Bytes},
};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

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
        let (mut sink, mut stream) = open(base, token).await?.split();
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

/// A websocket through the Engine.IO open and our namespace CONNECT with the auth payload.
async fn open(base: &str, token: &str) -> anyhow::Result<Ws> {
    let url = format!(
        "{}/socket.io/?EIO=4&transport=websocket",
        base.replacen("http", "ws", 1)
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(&url)
        .await
        .with_context(|| format!("connecting {url}"))?;
    match ws.next().await {
        Some(Ok(Message::Text(t))) if t.starts_with('0') => {}
        other => bail!("unexpected engine.io open: {other:?}"),
    }
    let auth = serde_json::json!({ "token": token });
    ws.send(Message::text(format!("40{auth}"))).await?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.starts_with("40") => return Ok(ws),
            Some(Ok(Message::Text(t))) if t.starts_with("44") => bail!("connect_error: {t}"),
            Some(Ok(Message::Text(t))) if t.as_str() == "2" => ws.send(Message::text("3")).await?,
            Some(Ok(_)) => {}
            other => bail!("connection closed during handshake: {other:?}"),
        }
    }
}

/// A socket that only listens, read by its owner in place. Group fan-out has many more
/// receivers than senders: a `Client`'s reader task, channel and `Value` per event would
/// cost the generator more CPU per delivery than the server it measures.
pub struct Listener {
    ws: Ws,
}

impl Listener {
    /// Connects like `Client::connect`.
    pub async fn connect(base: &str, token: &str) -> anyhow::Result<Listener> {
        let ws = tokio::time::timeout(std::time::Duration::from_secs(30), open(base, token))
            .await
            .context("handshake timed out")??;
        Ok(Listener { ws })
    }

    /// The next event frame, `["name", payload]` as text, answering pings on the way;
    /// `None` once the connection is gone.
    pub async fn next_event(&mut self) -> Option<Event> {
        while let Some(Ok(msg)) = self.ws.next().await {
            let Message::Text(text) = msg else { continue };
            if text.as_str() == "2" {
                self.ws.send(Message::text("3")).await.ok()?;
            } else if text.starts_with("42") {
                return Some(Event(text));
            }
        }
        None
    }
}

/// One event frame as the server sent it.
pub struct Event(Utf8Bytes);

impl Event {
    /// The `["name", payload]` array.
    pub fn body(&self) -> &str {
        &self.0.as_str()[2..]
    }
}
