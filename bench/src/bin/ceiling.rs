//! The ceiling: the seed protocol answered from memory by a bare socketioxide + axum relay.
//! No database, no ordering, no auth check beyond reading the token's user id. Whatever
//! this does on a machine is the most any server on this stack can do there.
//!
//! Groups: `POST /api/groups { name, member_ids }` records the membership in memory and
//! puts the members' sockets (now and at every later connect) in the group's room;
//! `send_message { conversation_id, content }` is broadcast to that room, the sending
//! socket excepted, numbered by a per-group `seq`. No membership check on send.
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

use axum::{
    Json,
    extract::State as HttpState,
    http::{HeaderMap, StatusCode},
    routing::post,
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

/// Groups: each user's groups (joined at connect) and each group's last `seq`.
#[derive(Default)]
struct Groups {
    created: i64,
    of_user: HashMap<i64, Vec<i64>>,
    last_seq: HashMap<i64, u64>,
}

#[derive(Clone)]
struct Relay {
    fault: Fault,
    ids: Arc<AtomicI64>,
    senders: Arc<Mutex<SenderState>>,
    groups: Arc<Mutex<Groups>>,
}

#[derive(Deserialize)]
struct Auth {
    token: String,
}

/// Exactly one of `to_user_id` (1:1) and `conversation_id` (a group).
#[derive(Deserialize)]
struct Send {
    to_user_id: Option<Value>,
    conversation_id: Option<Value>,
    content: String,
}

#[derive(Deserialize)]
struct NewGroup {
    name: String,
    #[serde(default)]
    member_ids: Vec<i64>,
}

/// A number, or a string holding one (clients send either).
fn id_of(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str()?.parse().ok())
}

fn group_room(id: i64) -> String {
    format!("group:{id}")
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

async fn authenticate(
    s: SocketRef,
    State(relay): State<Relay>,
    Data(auth): Data<Auth>,
) -> Result<(), String> {
    let id = user_id(&auth.token).ok_or("invalid token")?;
    s.extensions.insert(id);
    s.join(format!("user:{id}"));
    let groups = relay.groups.lock().unwrap().of_user.get(&id).cloned();
    s.join(
        groups
            .unwrap_or_default()
            .into_iter()
            .map(group_room)
            .collect::<Vec<_>>(),
    );
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
    let id = relay.ids.fetch_add(1, Ordering::Relaxed);
    let now = "1970-01-01T00:00:00Z";
    // A group message carries its group's id and next seq; a 1:1 message keeps the
    // seed's shape (conversation 1, no seq).
    let (room, conversation_id, seq) = match data.conversation_id.as_ref().and_then(id_of) {
        Some(group) => {
            let mut groups = relay.groups.lock().unwrap();
            let seq = groups.last_seq.entry(group).or_default();
            *seq += 1;
            (group_room(group), group, Some(*seq))
        }
        None => {
            let to = data.to_user_id.as_ref().and_then(id_of).unwrap_or_default();
            (format!("user:{to}"), 1, None)
        }
    };
    let mut msg = json!({
        "message_id": id, "conversation_id": conversation_id, "from_user_id": from,
        "content": data.content, "sent_at": now,
    });
    let mut sent = json!({
        "message_id": id, "conversation_id": conversation_id, "status": "sent", "sent_at": now,
    });
    if let Some(seq) = seq {
        msg["seq"] = json!(seq);
        sent["seq"] = json!(seq);
    }
    // Counted per sender: with one sender per group (or per recipient), a held-back
    // message goes to the same room as the one that releases it.
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
        // The sender's own socket does not hear its group message.
        let to = if seq.is_some() {
            s.to(room.clone())
        } else {
            io.to(room.clone())
        };
        to.emit("new_message", &m).await.ok();
    }
    // After the delivery, so that with one message in flight per sender the next message
    // cannot overtake this one (the smoke tests rely on an honest relay not reordering).
    s.emit("message_sent", &sent).ok();
    s.emit(
        "message_delivered",
        &json!({ "message_id": id, "delivered_at": now }),
    )
    .ok();
}

/// `POST /api/groups`: the caller (from the bearer token) owns a new group of itself and
/// `member_ids`; members already connected join its room at once.
async fn create_group(
    HttpState((io, relay)): HttpState<(SocketIo, Relay)>,
    headers: HeaderMap,
    Json(body): Json<NewGroup>,
) -> Result<(StatusCode, Json<Value>), StatusCode> {
    let owner = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok()?.strip_prefix("Bearer "))
        .and_then(user_id)
        .ok_or(StatusCode::UNAUTHORIZED)?;
    let mut members = vec![owner];
    members.extend(body.member_ids.iter().filter(|&&m| m != owner));
    let id = {
        let mut groups = relay.groups.lock().unwrap();
        groups.created += 1;
        // Conversation 1 is every 1:1 message's.
        let id = 1 + groups.created;
        for m in &members {
            groups.of_user.entry(*m).or_default().push(id);
        }
        id
    };
    // A socket mid-handshake may miss both this and its connect-time join; the bench
    // creates groups before connecting members.
    let user_rooms: Vec<String> = members.iter().map(|m| format!("user:{m}")).collect();
    io.to(user_rooms).join(group_room(id)).await.ok();
    let group = json!({ "conversation_id": id, "kind": "group", "name": body.name, "members": members });
    Ok((StatusCode::CREATED, Json(json!({ "group": group }))))
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
        groups: Arc::default(),
    };
    let (layer, io) = SocketIo::builder()
        .with_state(relay.clone())
        .max_buffer_size(8 * 1024)
        .build_layer();
    io.ns("/", on_connect.with(authenticate));
    let app = axum::Router::new()
        .route("/api/groups", post(create_group))
        .with_state((io, relay))
        .layer(layer);
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(format!("{}:{}", cli.host, cli.port).parse()?)?;
    let listener = socket.listen(4096)?;
    println!("bench-ceiling listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
