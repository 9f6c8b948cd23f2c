//! Announces what the domain decided, in the order it decided it, and reports back
//! which members' devices messages reached. With several nodes, what other nodes
//! decided arrives here too (the relay), and is carried out for this node's sockets.
use std::{
    collections::HashMap,
    str::FromStr,
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use super::{SocketIo, SocketRef};

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use socketioxide::socket::Sid;
use tokio::sync::mpsc;

use super::{
    e2e,
    events::{
        self, ConversationRead, GroupEventOut, MessageDelivered, MessageRead, NewMessage, UserOffline,
        UserOnline, conversation_room, device_room, is_conversation_room, iso, user_room,
    },
    lifecycle,
    messaging::sent_payload,
    proof::{Handed, HandedMessage},
    reply::emit_error,
    session::Session,
    typing,
};
use crate::{
    cluster::{
        Cluster,
        bus::LinkState,
        relay::{Relay, Relayed},
    },
    domain::{
        DomainError, conversations,
        groups::{GroupChange, GroupEvent},
        messaging::{Outcome, QueuedMessage, ReadReceipt, Settled, Stored, StoredMessage},
    },
    state::AppState,
};

/// How long a gap (a message handed before an earlier one) may stay open before the
/// device's queue is read again: the earlier message is normally on its way from the
/// node that stored it.
const GAP_PATIENCE: Duration = Duration::from_millis(300);

/// Runs until the writer stops.
pub async fn run(
    io: SocketIo,
    state: AppState,
    mut outcomes: mpsc::UnboundedReceiver<Outcome>,
    cluster: Cluster,
) {
    let mut relayed = cluster.relay.subscribe().await;
    let mut link = cluster.bus.watch();
    let relay = &cluster.relay;
    let mut recent = Recent::default();
    loop {
        tokio::select! {
            // A returning link is seen to before what arrives through it.
            biased;
            Ok(()) = link.changed() => {
                if *link.borrow_and_update() == LinkState::Connected {
                    // What crossed nodes while Redis was away never arrived. Rooms first,
                    // before any relayed message is handed out: a member removed meanwhile
                    // must get none. Then every live device reads its queue again (it gets
                    // only what it lacks), and sockets on tokens ended meanwhile end.
                    resync_rooms(&io, &state).await;
                    refill_all(&io, &state).await;
                    tokio::spawn(end_ended_sessions(io.clone(), state.clone()));
                }
            }
            outcome = outcomes.recv() => {
                let Some(outcome) = outcome else { return };
                announce(&io, &state, relay, &mut recent, outcome).await;
            }
            Some(event) = relayed.recv() => carry_out(&io, &state, &cluster, &mut recent, event),
        }
    }
}

async fn announce(io: &SocketIo, state: &AppState, relay: &Relay, recent: &mut Recent, outcome: Outcome) {
    match outcome {
        Outcome::Joined {
            conversation_id,
            user_ids,
            since,
        } => {
            join_live(io, conversation_id, &user_ids, since, false);
            relay.publish(Relayed::Joined {
                conversation_id,
                user_ids,
                since,
            });
        }
        Outcome::Stored(batch) => {
            let mut handed = HashMap::new();
            let mut fresh = Vec::new();
            for stored in batch {
                if let Some(message) = announce_stored(io, stored, &mut handed, state) {
                    let message = Arc::new(message);
                    recent.keep(message.clone());
                    if relay.is_clustered() {
                        fresh.push(message);
                    }
                }
            }
            if !fresh.is_empty() {
                relay.publish(Relayed::Stored { messages: fresh });
            }
            await_proofs(state, handed);
        }
        Outcome::CatchUp {
            device,
            user_id,
            messages,
            rooms,
        } => hand_over(io, state, recent, device, user_id, messages, rooms).await,
        Outcome::CatchUpFailed { device } => {
            // It reconnects and tries again.
            if let Some(s) = socket(io, &device) {
                cut_off(&s);
            }
        }
        Outcome::TypingStopped {
            conversation_id,
            user_id,
        } => typing::announce(io, conversation_id, user_id, false).await,
        Outcome::Presence {
            user_id,
            online,
            last_seen,
            contacts,
        } => announce_presence(io, user_id, online, last_seen, &contacts).await,
        Outcome::Read(receipt) => announce_read(io, receipt).await,
        Outcome::Delivered { messages, at } => tell_delivered(io, &messages, at).await,
        Outcome::Group(event) => {
            if !event.join.is_empty() {
                relay.publish(Relayed::Joined {
                    conversation_id: event.conversation_id,
                    user_ids: event.join.clone(),
                    since: None,
                });
            }
            if !event.leave.is_empty() {
                relay.publish(Relayed::Left {
                    conversation_id: event.conversation_id,
                    user_ids: event.leave.clone(),
                });
            }
            announce_group(io, event).await
        }
        Outcome::EndSessions { user_id, jti } => {
            end_sessions(io, user_id, jti.as_deref());
            relay.publish(Relayed::EndSessions { user_id, jti });
        }
        Outcome::Changed(change) => lifecycle::announce(io, change).await,
        Outcome::PrekeysLow {
            user_id,
            device_id,
            remaining,
        } => e2e::announce_prekeys_low(io, user_id, device_id, remaining).await,
        Outcome::Flushed(done) => {
            relay.flush().await;
            let _ = done.send(());
        }
    }
}

/// Carries out, for this node's sockets, what another node decided.
fn carry_out(io: &SocketIo, state: &AppState, cluster: &Cluster, recent: &mut Recent, event: Relayed) {
    // The kind only: message content stays out of the logs.
    tracing::debug!(node = %state.config.node_id, kind = event.kind(), "relayed from another node");
    match event {
        Relayed::Stored { messages } => {
            let mut handed = HashMap::new();
            for message in messages {
                deliver_live(io, &message, &mut handed, state);
                recent.keep(message);
            }
            await_proofs(state, handed);
        }
        Relayed::Joined {
            conversation_id,
            user_ids,
            since,
        } => join_live(io, conversation_id, &user_ids, since, true),
        Relayed::Left {
            conversation_id,
            user_ids,
        } => leave(io, conversation_id, &user_ids),
        Relayed::EndSessions { user_id, jti } => end_sessions(io, user_id, jti.as_deref()),
        Relayed::Presence { user_id, online } => {
            if let Some(presence) = &cluster.presence {
                presence.heard(user_id, online);
            }
        }
    }
}

/// Waits for each socket's proof of what it was handed; cuts off those past their budget.
fn await_proofs(state: &AppState, handed: HandedTo) {
    for (s, session, handed) in handed.into_values() {
        if session.receipts.over_budget() {
            tracing::warn!(sid = %s.id, "device cannot keep up: disconnected, it will catch up");
            session.receipts.cut_off(&s);
        }
        handed.await_proof(&session.receipts, state.messaging.clone(), async {});
    }
}

/// Puts each socket in the rooms of exactly the conversations its user belongs to now.
async fn resync_rooms(io: &SocketIo, state: &AppState) {
    let sockets: Vec<(SocketRef, Arc<Session>)> = io
        .sockets()
        .into_iter()
        .filter_map(|s| s.extensions.get::<Arc<Session>>().map(|session| (s, session)))
        .filter(|(_, session)| session.live.load(Ordering::SeqCst))
        .collect();
    let mut users: Vec<i64> = sockets.iter().map(|(_, session)| session.user_id).collect();
    users.sort_unstable();
    users.dedup();
    let memberships = match conversations::memberships(&state.db, &users).await {
        Ok(memberships) => memberships,
        Err(e) => {
            // Rooms stay as they are; the queue re-reads below still set them right.
            tracing::warn!(error = %e, "re-reading memberships after Redis returned failed");
            return;
        }
    };
    for (s, session) in sockets {
        let conversations = memberships.get(&session.user_id).map_or(&[][..], Vec::as_slice);
        set_conversation_rooms(&s, conversations.iter().copied());
    }
}

/// Puts a socket in exactly these conversations' rooms: it leaves the others (memberships
/// that ended while their news could not arrive) and joins these.
fn set_conversation_rooms(s: &SocketRef, conversations: impl Iterator<Item = i64>) {
    let rooms: Vec<String> = conversations.map(conversation_room).collect();
    let stale: Vec<_> = s
        .rooms()
        .into_iter()
        .filter(|r| is_conversation_room(r) && !rooms.iter().any(|c| c.as_str() == &**r))
        .collect();
    if !stale.is_empty() {
        s.leave(stale);
    }
    if !rooms.is_empty() {
        s.join(rooms);
    }
}

/// Every live device on this node reads its offline queue again.
async fn refill_all(io: &SocketIo, state: &AppState) {
    for s in io.sockets() {
        if let Some(session) = s.extensions.get::<Arc<Session>>()
            && session.live.load(Ordering::SeqCst)
        {
            state
                .messaging
                .catch_up_more(session.user_id, s.id.to_string())
                .await;
        }
    }
}

/// Ends this node's sockets whose tokens were ended while Redis was away (the news of it
/// never came), telling them why, as `end_sessions` does.
async fn end_ended_sessions(io: SocketIo, state: AppState) {
    for s in io.sockets() {
        let Some(session) = s.extensions.get::<Arc<Session>>() else {
            continue;
        };
        let (jti, version) = session.token();
        if state
            .sessions
            .ended(session.user_id, jti.as_deref(), version)
            .await
        {
            emit_error(&s, &DomainError::TokenRevoked);
            s.disconnect().ok();
        }
    }
}

/// A message was handed beyond a gap: unless the gap closes soon, the device reads its
/// queue again (whatever is missing and not already on another of the member's devices
/// is there).
fn mind_the_gap(s: &SocketRef, session: &Arc<Session>, state: &AppState) {
    if session.refill_pending.swap(true, Ordering::SeqCst) {
        return;
    }
    let (s, session, messaging) = (s.clone(), session.clone(), state.messaging.clone());
    tokio::spawn(async move {
        tokio::time::sleep(GAP_PATIENCE).await;
        session.refill_pending.store(false, Ordering::SeqCst);
        if s.connected() && session.has_gap() {
            messaging.catch_up_more(session.user_id, s.id.to_string()).await;
        }
    });
}

/// Per socket, what this batch handed it.
type HandedTo = HashMap<Sid, (SocketRef, Arc<Session>, Handed)>;

/// Answers the sender's device and hands a new message to live devices; returns it
/// when it is new (for the other nodes).
fn announce_stored(
    io: &SocketIo,
    stored: Stored,
    handed: &mut HandedTo,
    state: &AppState,
) -> Option<StoredMessage> {
    let Stored {
        device,
        message,
        fresh,
    } = stored;
    if let Some(s) = socket(io, &device) {
        s.emit(events::MESSAGE_SENT, &sent_payload(&message)).ok();
    }
    if !fresh {
        // A retry: members heard of it the first time.
        return None;
    }
    deliver_live(io, &message, handed, state);
    Some(message)
}

/// Hands a message to every live device of the other members (devices still catching
/// up will find it in their queue). Each device gets it separately: it counts as
/// reached only once that device proves it arrived (`proof`), and a device whose
/// buffer is full is disconnected at once (it catches up on reconnect).
fn deliver_live(io: &SocketIo, msg: &StoredMessage, handed: &mut HandedTo, state: &AppState) {
    let Some(raw) = new_message(msg) else { return };
    for s in io.to(conversation_room(msg.conversation_id)).sockets() {
        if let Some(session) = s.extensions.get::<Arc<Session>>() {
            hand_to(s, session, msg, &raw, handed, state);
        }
    }
}

/// A message's `new_message` payload, serialised once (each emit copies the JSON).
fn new_message(msg: &StoredMessage) -> Option<Box<RawValue>> {
    let payload = NewMessage {
        message_id: msg.id,
        conversation_id: msg.conversation_id,
        from_user_id: msg.sender_id,
        content: &msg.content,
        sent_at: iso(msg.sent_at),
        seq: msg.seq,
        version: msg.version,
        reply_to: msg.reply_to.clone().map(Into::into),
        edited_at: None,
        deleted: false,
        encrypted: msg.envelopes.is_some(),
        envelopes: events::envelopes(msg.envelopes.as_deref()),
        sender_device_id: msg.sender_device_id,
    };
    let raw = serde_json::value::to_raw_value(&payload);
    if raw.is_err() {
        tracing::error!(message_id = msg.id, "message could not be serialised");
    }
    raw.ok()
}

/// Hands a message to one live device of a member (unless it is the sender's or the
/// device has it), recording it for proof.
fn hand_to(
    s: SocketRef,
    session: Arc<Session>,
    msg: &StoredMessage,
    raw: &RawValue,
    handed: &mut HandedTo,
    state: &AppState,
) {
    let (_, session, to_socket) = handed
        .entry(s.id)
        .or_insert_with(|| (s.clone(), session, Handed::default()));
    hand_into(&s, session, msg, raw, to_socket, state);
}

/// [`hand_to`], recording into one socket's hand-over.
fn hand_into(
    s: &SocketRef,
    session: &Arc<Session>,
    msg: &StoredMessage,
    raw: &RawValue,
    to_socket: &mut Handed,
    state: &AppState,
) {
    if session.user_id == msg.sender_id {
        // The sender's devices hold their own messages: no gap in their run.
        session.handed(msg.conversation_id, msg.seq);
        return;
    }
    if session.was_handed(msg.conversation_id, msg.seq) || !emit_new(s, session, raw, msg.id) {
        return;
    }
    let covers = session.handed(msg.conversation_id, msg.seq);
    if covers < msg.seq {
        mind_the_gap(s, session, state);
    }
    to_socket.add(
        &session.receipts,
        session.user_id,
        HandedMessage {
            message_id: msg.id,
            conversation_id: msg.conversation_id,
            covers,
            sent_at: msg.sent_at,
            bytes: raw.get().len(),
        },
    );
}

/// Messages stored in the last moments (here or relayed), by arrival. A device going
/// live is owed every message that reached this node after it connected, but its queue leaves out what
/// another device of its user already showed it received, and it was in no room yet
/// when those messages were handed out: it gets them from here, as it goes live.
#[derive(Default)]
pub struct Recent {
    messages: std::collections::VecDeque<(std::time::Instant, Arc<StoredMessage>)>,
    bytes: usize,
}

/// Longer than a connecting device takes to go live.
const RECENT_FOR: Duration = Duration::from_secs(10);
/// Bounds on what is kept (a flood keeps its memory bounded; a device that went live
/// later than that finds the rest with `sync`).
const RECENT_MAX: usize = 50_000;
const RECENT_MAX_BYTES: usize = 16 * 1024 * 1024;

impl Recent {
    fn keep(&mut self, msg: Arc<StoredMessage>) {
        let now = std::time::Instant::now();
        self.bytes += msg.content.len();
        self.messages.push_back((now, msg));
        while let Some((at, front)) = self.messages.front() {
            let over = self.messages.len() > RECENT_MAX || self.bytes > RECENT_MAX_BYTES;
            if !over && now.duration_since(*at) <= RECENT_FOR {
                break;
            }
            self.bytes -= front.content.len();
            self.messages.pop_front();
        }
    }

    /// Those of `conversation` that reached this node at or after `since`, in arrival order.
    fn since(&self, conversation: i64, since: std::time::Instant) -> impl Iterator<Item = &StoredMessage> {
        self.messages
            .iter()
            .filter(move |(at, m)| *at >= since && m.conversation_id == conversation)
            .map(|(_, m)| &**m)
    }
}

/// Emits a finished `new_message` (with its offset, to a client that records them); a
/// device that cannot take it is disconnected.
fn emit_new(s: &SocketRef, session: &Session, raw: &RawValue, message_id: i64) -> bool {
    let sent = if session.receipts.offsets {
        s.emit(events::NEW_MESSAGE, &(raw, message_id.to_string()))
    } else {
        s.emit(events::NEW_MESSAGE, raw)
    };
    match sent {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, sid = %s.id, "device cannot keep up: disconnected, it will catch up");
            cut_off(s);
            false
        }
    }
}

/// A page of a device's offline queue; after the last, the device goes live. The next
/// page is asked for once the device proves it got this one, so a slow device is
/// handed its queue at its own pace.
async fn hand_over(
    io: &SocketIo,
    state: &AppState,
    recent: &mut Recent,
    device: String,
    user_id: i64,
    messages: Vec<QueuedMessage>,
    rooms: Option<Vec<(i64, i64)>>,
) {
    let Some((s, session)) =
        socket(io, &device).and_then(|s| s.extensions.get::<Arc<Session>>().map(|session| (s, session)))
    else {
        // Gone before its queue could be handed over: make sure the writer knows.
        state.messaging.device_disconnected(user_id, device).await;
        return;
    };
    let mut handed = Handed::default();
    let mut complete = true;
    let mut skipped = false;
    for (i, m) in messages.iter().enumerate() {
        if i > 0 && session.receipts.over_budget() {
            // The rest waits for the next page, asked for once this part is proven.
            complete = false;
            break;
        }
        // The queue holds every message from others after the member's delivered
        // position: what it skips before this one is the member's own (or had).
        session.holds_through(m.conversation_id, m.seq - 1);
        if session.was_handed(m.conversation_id, m.seq) {
            // Already handed (live, or in a `sync` answer), waiting for its proof.
            skipped = true;
            continue;
        }
        let payload = NewMessage {
            message_id: m.id,
            conversation_id: m.conversation_id,
            from_user_id: m.sender_id,
            content: &m.content,
            sent_at: iso(m.sent_at),
            seq: m.seq,
            version: m.version,
            reply_to: m.quote().map(Into::into),
            edited_at: m.edited_at.map(iso),
            deleted: m.deleted_at.is_some(),
            encrypted: m.encrypted,
            envelopes: events::envelopes(m.envelopes.as_deref()),
            sender_device_id: m.sender_device_id,
        };
        let Ok(raw) = serde_json::value::to_raw_value(&payload) else {
            tracing::error!(message_id = m.id, "queued message could not be serialised");
            complete = false;
            break;
        };
        if !emit_new(&s, &session, &raw, m.id) {
            // Disconnected: what was not proven stays queued for the next connect.
            return;
        }
        let covers = session.handed(m.conversation_id, m.seq);
        handed.add(
            &session.receipts,
            user_id,
            HandedMessage {
                message_id: m.id,
                conversation_id: m.conversation_id,
                covers,
                sent_at: m.sent_at,
                bytes: raw.get().len(),
            },
        );
    }
    if !s.connected() {
        return;
    }
    let next_page = match rooms {
        Some(rooms) if complete && !session.missed_move.swap(false, Ordering::SeqCst) => {
            // What reached this node since the device connected and is not in its queue
            // (another device of its user showed it first, or it came after the queue
            // was read).
            for (conversation_id, _) in &rooms {
                for msg in recent.since(*conversation_id, session.connected_at) {
                    if let Some(raw) = new_message(msg) {
                        hand_into(&s, &session, msg, &raw, &mut handed, state);
                    }
                }
            }
            // The queue is drained: the device holds each conversation up to where it
            // stood when the queue was read (what is not in the queue reached another
            // of the member's devices, or is the member's own).
            for (conversation_id, last_seq) in &rooms {
                session.holds_through(*conversation_id, *last_seq);
            }
            // A re-read (Redis came back, or a gap) may find memberships that ended
            // while their news could not arrive: what is no longer listed is left.
            set_conversation_rooms(&s, rooms.iter().map(|(c, _)| *c));
            session.live.store(true, Ordering::SeqCst);
            None
        }
        _ => Some(state.messaging.clone()),
    };
    // A page whose messages were all handed already (their proof is on its way) would
    // come back unchanged if asked for at once.
    let patience = (handed.is_empty() && skipped).then_some(GAP_PATIENCE);
    let after = async move {
        if let Some(messaging) = next_page {
            if let Some(wait) = patience {
                tokio::time::sleep(wait).await;
            }
            messaging.catch_up_more(user_id, device).await;
        }
    };
    handed.await_proof(&session.receipts, state.messaging.clone(), after);
}

/// The live devices of these users join a conversation's room (holding it up to
/// `since`, when known). Devices still catching up join with the last page of their
/// queue instead, unless the change comes from another node (`cross_node`).
fn join_live(io: &SocketIo, conversation_id: i64, users: &[i64], since: Option<i64>, cross_node: bool) {
    if users.is_empty() {
        // `io.to([])` would be every socket of the node.
        return;
    }
    let rooms: Vec<String> = users.iter().map(|u| user_room(*u)).collect();
    for s in io.to(rooms).sockets() {
        let Some(session) = s.extensions.get::<Arc<Session>>() else {
            continue;
        };
        if !session.live.load(Ordering::SeqCst) {
            if !cross_node {
                // Joins with the last page of its queue, which this node's writer reads
                // after the change.
                continue;
            }
            // Another node made the change: this device's queue read may predate it, so
            // it reads again before going live, and takes the conversation's messages
            // from now on meanwhile (its spans sort out the order).
            session.missed_move.store(true, Ordering::SeqCst);
        }
        if let Some(since) = since {
            session.holds_through(conversation_id, since);
        }
        s.join(conversation_room(conversation_id));
    }
}

/// These users' devices on this node leave a conversation's room.
fn leave(io: &SocketIo, conversation_id: i64, users: &[i64]) {
    if users.is_empty() {
        // `io.to([])` would be every socket of the node.
        return;
    }
    let rooms: Vec<String> = users.iter().map(|u| user_room(*u)).collect();
    for s in io.to(rooms).sockets() {
        s.leave(conversation_room(conversation_id));
        if let Some(session) = s.extensions.get::<Arc<Session>>()
            && !session.live.load(Ordering::SeqCst)
        {
            // Its queue read may still name the room it left.
            session.missed_move.store(true, Ordering::SeqCst);
        }
    }
}

async fn announce_group(io: &SocketIo, e: GroupEvent) {
    join_live(io, e.conversation_id, &e.join, None, false);
    let name = match e.change {
        GroupChange::Created => events::GROUP_CREATED,
        GroupChange::MemberAdded => events::MEMBER_ADDED,
        GroupChange::MemberRemoved => events::MEMBER_REMOVED,
        GroupChange::MemberLeft => events::MEMBER_LEFT,
        GroupChange::RoleChanged => events::ROLE_CHANGED,
        GroupChange::Updated => events::GROUP_UPDATED,
    };
    let payload = GroupEventOut {
        conversation_id: e.conversation_id,
        actor_id: e.actor_id,
        user_id: e.user_id,
        role: e.role.map(|r| r.as_str()),
        name: e.name.as_deref(),
        description: e.description.as_deref(),
    };
    let rooms: Vec<String> = e.audience.iter().map(|u| user_room(*u)).collect();
    if let Err(err) = io.to(rooms).emit(name, &payload).await {
        tracing::warn!(error = %err, conversation_id = e.conversation_id, "group event not announced");
    }
    leave(io, e.conversation_id, &e.leave);
}

async fn announce_presence(
    io: &SocketIo,
    user_id: i64,
    online: bool,
    last_seen: Option<DateTime<Utc>>,
    contacts: &[i64],
) {
    let rooms: Vec<String> = contacts.iter().map(|id| user_room(*id)).collect();
    let sent = match last_seen {
        Some(at) if !online => {
            io.to(rooms)
                .emit(
                    events::USER_OFFLINE,
                    &UserOffline {
                        user_id,
                        last_seen: iso(at),
                    },
                )
                .await
        }
        _ => {
            io.to(rooms)
                .emit(events::USER_ONLINE, &UserOnline { user_id })
                .await
        }
    };
    if let Err(e) = sent {
        tracing::warn!(error = %e, user_id, "presence not announced");
    }
}

/// `message_delivered` to every device of each sender.
async fn tell_delivered(io: &SocketIo, messages: &[Settled], at: DateTime<Utc>) {
    let delivered_at = iso(at);
    for m in messages {
        let receipt = MessageDelivered {
            message_id: m.id,
            delivered_at: delivered_at.clone(),
            conversation_id: m.conversation_id,
        };
        io.to(user_room(m.sender_id))
            .emit(events::MESSAGE_DELIVERED, &receipt)
            .await
            .ok();
    }
}

async fn announce_read(io: &SocketIo, r: ReadReceipt) {
    let read_at = iso(r.read_at);
    for (sender, message_id) in &r.newest_read {
        let payload = MessageRead {
            conversation_id: r.conversation_id,
            message_id: *message_id,
            reader_id: r.reader_id,
            read_at: read_at.clone(),
        };
        io.to(user_room(*sender))
            .emit(events::MESSAGE_READ, &payload)
            .await
            .ok();
    }
    let payload = ConversationRead {
        conversation_id: r.conversation_id,
        up_to_message_id: r.up_to_message_id,
    };
    let reader_devices = io.to(user_room(r.reader_id));
    let sent = match &r.reader_device {
        Some(device) => {
            reader_devices
                .except(device_room(device))
                .emit(events::CONVERSATION_READ, &payload)
                .await
        }
        None => reader_devices.emit(events::CONVERSATION_READ, &payload).await,
    };
    sent.ok();
}

/// Tells the sockets standing on ended tokens why, and disconnects them.
fn end_sessions(io: &SocketIo, user_id: i64, jti: Option<&str>) {
    for s in io.to(user_room(user_id)).sockets() {
        let ended = s
            .extensions
            .get::<Arc<Session>>()
            .is_some_and(|session| jti.is_none_or(|jti| session.uses_token(jti)));
        if ended {
            emit_error(&s, &DomainError::TokenRevoked);
            s.disconnect().ok();
        }
    }
}

/// Drops a device's connection so that it reconnects and catches up.
fn cut_off(s: &SocketRef) {
    match s.extensions.get::<Arc<Session>>() {
        Some(session) => session.receipts.cut_off(s),
        None => {
            s.clone().disconnect().ok();
        }
    }
}

fn socket(io: &SocketIo, device: &str) -> Option<SocketRef> {
    Sid::from_str(device).ok().and_then(|sid| io.get_socket(sid))
}
