//! The ceiling: the seed protocol answered from memory by a bare socketioxide + axum relay.
//! No database, no ordering, no auth check beyond reading the token's user id. Whatever
//! this does on a machine is the most any server on this stack can do there.
//!
//! `--fault` makes it misbehave on purpose (reorder, drop or duplicate), so the load
//! generator's counters can be checked against a server known to be wrong.
use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicI64, Ordering},
    },
};

use base64::Engine;
use clap::Parser;
use serde::Deserialize;
use serde_json::{Value, json};
use socketioxide::{
    SocketIo,
    extract::{Data, SocketRef, State, TryData},
    handler::ConnectHandler,
};

#[derive(Parser)]
struct Cli {
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long, default_value_t = 5200)]
    port: u16,
    /// none | reorder | drop:N | duplicate:N (every Nth message per sender)
    #[arg(long, default_value = "none")]
    fault: String,
}

#[derive(Clone, Copy)]
enum Fault {
    None,
    Reorder,
    Drop(u64),
    Duplicate(u64),
}

/// Per sender: messages seen, and a held-back message (for `reorder`).
type SenderState = HashMap<i64, (u64, Option<Value>)>;

#[derive(Clone)]
struct Relay {
    fault: Fault,
    ids: Arc<AtomicI64>,
    senders: Arc<Mutex<SenderState>>,
}

#[derive(Deserialize)]
struct Auth {
    token: String,
}

#[derive(Deserialize)]
struct Send {
    to_user_id: Value,
    content: String,
}

fn user_id(token: &str) -> Option<i64> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    let id = claims.get("user_id").or_else(|| claims.get("sub"))?;
    id.as_i64().or_else(|| id.as_str()?.parse().ok())
}

async fn authenticate(s: SocketRef, Data(auth): Data<Auth>) -> Result<(), String> {
    let id = user_id(&auth.token).ok_or("invalid token")?;
    s.extensions.insert(id);
    s.join(format!("user:{id}"));
    // Before the CONNECT packet leaves: an event sent right after connecting would
    // otherwise find no handler yet and be dropped.
    s.on("ping", async |s: SocketRef| {
        s.emit("pong", &json!({ "timestamp": "1970-01-01T00:00:00Z" }))
            .ok();
    });
    s.on("send_message", send_message);
    Ok(())
}

async fn on_connect(s: SocketRef) {
    let id: i64 = s.extensions.get().unwrap_or_default();
    s.emit("authenticated", &json!({ "user_id": id, "message": "ok" }))
        .ok();
}

async fn send_message(s: SocketRef, io: SocketIo, State(relay): State<Relay>, TryData(data): TryData<Send>) {
    let Ok(data) = data else {
        s.emit(
            "error",
            &json!({ "message": "bad payload", "code": "invalid_payload" }),
        )
        .ok();
        return;
    };
    let from: i64 = s.extensions.get().unwrap_or_default();
    let to = data
        .to_user_id
        .as_i64()
        .or_else(|| data.to_user_id.as_str()?.parse().ok())
        .unwrap_or_default();
    let id = relay.ids.fetch_add(1, Ordering::Relaxed);
    let now = "1970-01-01T00:00:00Z";
    let msg = json!({ "message_id": id, "conversation_id": 1, "from_user_id": from, "content": data.content, "sent_at": now });
    let deliveries: Vec<Value> = {
        let mut senders = relay.senders.lock().unwrap();
        let (count, held) = senders.entry(from).or_default();
        *count += 1;
        match relay.fault {
            Fault::None => vec![msg],
            Fault::Drop(n) if *count % n == 0 => vec![],
            Fault::Drop(_) => vec![msg],
            Fault::Duplicate(n) if *count % n == 0 => vec![msg.clone(), msg],
            Fault::Duplicate(_) => vec![msg],
            // Holds every odd message back and sends it after the next one.
            Fault::Reorder => match held.take() {
                Some(first) => vec![msg, first],
                None => {
                    *held = Some(msg);
                    vec![]
                }
            },
        }
    };
    for m in deliveries {
        io.to(format!("user:{to}")).emit("new_message", &m).await.ok();
    }
    // After the delivery, so that with one message in flight per sender the next message
    // cannot overtake this one (the smoke tests rely on an honest relay not reordering).
    s.emit(
        "message_sent",
        &json!({ "message_id": id, "conversation_id": 1, "status": "sent", "sent_at": now }),
    )
    .ok();
    s.emit(
        "message_delivered",
        &json!({ "message_id": id, "delivered_at": now }),
    )
    .ok();
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let fault = match cli.fault.split_once(':') {
        None if cli.fault == "none" => Fault::None,
        None if cli.fault == "reorder" => Fault::Reorder,
        Some(("drop", n)) => Fault::Drop(n.parse()?),
        Some(("duplicate", n)) => Fault::Duplicate(n.parse()?),
        _ => anyhow::bail!("--fault must be none, reorder, drop:N or duplicate:N"),
    };
    let relay = Relay {
        fault,
        ids: Arc::new(AtomicI64::new(1)),
        senders: Arc::default(),
    };
    let (layer, io) = SocketIo::builder()
        .with_state(relay)
        .max_buffer_size(8 * 1024)
        .build_layer();
    io.ns("/", on_connect.with(authenticate));
    let app = axum::Router::new().layer(layer);
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(format!("{}:{}", cli.host, cli.port).parse()?)?;
    let listener = socket.listen(4096)?;
    println!("bench-ceiling listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
