//! One fan-out run: groups whose members are all connected, one sender in each, and what
//! every other member received. Both halves of scenario 2 (many groups at full speed, one
//! big group at a steady pace) are this run with different groups and pacing.
use std::{
    borrow::Cow,
    sync::Arc,
    time::{Duration, Instant},
};

use serde::Deserialize;
use serde_json::json;
use tokio::{sync::Barrier, time::timeout};

use crate::{
    procfs,
    sio::{Client, Incoming, Listener},
    stats::Stream,
};

/// A group ready to measure: its sender and its other members, connected.
pub struct Group {
    pub conversation_id: i64,
    pub sender: Client,
    pub receivers: Vec<Listener>,
}

/// How a sender spends its messages.
#[derive(Clone, Copy)]
pub enum Pace {
    /// As fast as acknowledgements allow, this many unacknowledged at a time.
    Window(u64),
    /// One message per period, each awaiting its acknowledgement.
    Every(Duration),
}

/// One member's view of one group.
#[derive(Default)]
pub struct Member {
    /// By the server's `seq`: what a client orders and de-duplicates by.
    pub stream: Stream,
    /// `(index, sent_us, arrived_us)` of each first arrival, in microseconds since the start.
    pub arrivals: Vec<(u64, u64, u64)>,
}

/// What a run saw, for the scenario to tally.
pub struct Outcome {
    /// Per group, per receiving member.
    pub members: Vec<Vec<Member>>,
    pub send_errors: u64,
    pub unanswered: u64,
    pub generator_cpu_s: f64,
    pub server_cpu_s: Option<f64>,
}

/// How long to keep listening after the last expected message, for late duplicates.
const LATE_LISTEN: Duration = Duration::from_millis(200);

/// The content of the message that opens a run, outside the measured ones.
const WARM_UP: &str = "warm-up";

/// Sends one unmeasured message to each group and waits until every member has it; returns
/// how long the last member waited. A server may first hand a newly connected device its
/// offline queue (realtime-chat does, one device after another), and live messages sent
/// meanwhile arrive late: after a thousand connects that is connect cost, not fan-out.
pub async fn warm_up(groups: &mut [Group], limit: Duration) -> anyhow::Result<Duration> {
    let start = Instant::now();
    for g in groups.iter() {
        let body = json!({ "conversation_id": g.conversation_id, "content": WARM_UP });
        g.sender.emit("send_message", &body);
    }
    for g in groups.iter_mut() {
        let id = g.conversation_id;
        anyhow::ensure!(
            answer(&mut g.sender, limit).await == Some(true),
            "group {id}: the warm-up message was refused or not acknowledged"
        );
        for r in &mut g.receivers {
            let heard = async {
                while let Some(event) = r.next_event().await {
                    if is_warm_up(event.body(), id) {
                        return true;
                    }
                }
                false
            };
            let left = limit.saturating_sub(start.elapsed());
            anyhow::ensure!(
                timeout(left, heard).await == Ok(true),
                "group {id}: a member did not get the warm-up message within {limit:?}"
            );
        }
    }
    Ok(start.elapsed())
}

/// Starts every sender and receiver at once and waits for all of them.
pub async fn run(
    groups: Vec<Group>,
    messages: u64,
    pace: Pace,
    drain: Duration,
    server_pid: Option<&str>,
) -> anyhow::Result<Outcome> {
    let parties = groups.iter().map(|g| 1 + g.receivers.len()).sum::<usize>() + 1;
    let barrier = Arc::new(Barrier::new(parties));
    let base = Instant::now();
    let gen_cpu0 = procfs::cpu_seconds("self").unwrap_or(0.0);
    let srv_cpu0 = server_pid.and_then(procfs::cpu_seconds);

    let mut receiver_tasks = Vec::new();
    let mut sender_tasks = Vec::new();
    for g in groups {
        let id = g.conversation_id;
        let tasks: Vec<_> = g
            .receivers
            .into_iter()
            .map(|c| tokio::spawn(receive(c, id, messages, drain, base, barrier.clone())))
            .collect();
        receiver_tasks.push(tasks);
        sender_tasks.push(tokio::spawn(send(
            g.sender,
            id,
            messages,
            pace,
            drain,
            base,
            barrier.clone(),
        )));
    }
    barrier.wait().await;

    let (mut send_errors, mut unanswered) = (0, 0);
    for t in sender_tasks {
        let (errors, silent) = t.await?;
        send_errors += errors;
        unanswered += silent;
    }
    let mut members = Vec::with_capacity(receiver_tasks.len());
    for tasks in receiver_tasks {
        let mut group = Vec::with_capacity(tasks.len());
        for t in tasks {
            group.push(t.await?);
        }
        members.push(group);
    }
    Ok(Outcome {
        members,
        send_errors,
        unanswered,
        generator_cpu_s: procfs::cpu_seconds("self").unwrap_or(0.0) - gen_cpu0,
        server_cpu_s: server_pid
            .and_then(procfs::cpu_seconds)
            .zip(srv_cpu0)
            .map(|(b, a)| b - a),
    })
}

/// Listens until every message arrived, or nothing has for `drain`.
async fn receive(
    mut client: Listener,
    conversation: i64,
    messages: u64,
    drain: Duration,
    base: Instant,
    barrier: Arc<Barrier>,
) -> Member {
    barrier.wait().await;
    let mut member = Member::default();
    while member.stream.unique() < messages {
        let Ok(Some(event)) = timeout(drain, client.next_event()).await else {
            break;
        };
        member.record(event.body(), conversation, base);
    }
    // A late repeat still counts as a duplicate: listen a little longer.
    while let Ok(Some(event)) = timeout(LATE_LISTEN, client.next_event()).await {
        member.record(event.body(), conversation, base);
    }
    member
}

impl Member {
    /// Counts an event if it is one of our messages in `conversation`.
    fn record(&mut self, body: &str, conversation: i64, base: Instant) {
        let arrived = Instant::now().duration_since(base).as_micros() as u64;
        let Some((seq, index, sent_us)) = parse(body, conversation) else {
            return;
        };
        let before = self.stream.unique();
        self.stream.record(seq);
        if self.stream.unique() > before {
            self.arrivals.push((index, sent_us, arrived));
        }
    }
}

/// Sends `messages` to the group at `pace`; returns (errors, never answered).
async fn send(
    mut client: Client,
    conversation: i64,
    messages: u64,
    pace: Pace,
    drain: Duration,
    base: Instant,
    barrier: Arc<Barrier>,
) -> (u64, u64) {
    barrier.wait().await;
    let emit = |client: &Client, i: u64| {
        let micros = Instant::now().duration_since(base).as_micros();
        let body = json!({ "conversation_id": conversation, "content": format!("{i}:{micros}") });
        client.emit("send_message", &body);
    };
    let (mut sent, mut acked, mut errors) = (0, 0, 0);
    match pace {
        Pace::Window(w) => {
            while sent < w.min(messages) {
                emit(&client, sent);
                sent += 1;
            }
            while acked + errors < messages {
                match answer(&mut client, drain).await {
                    Some(true) => acked += 1,
                    Some(false) => errors += 1,
                    None => break,
                }
                if sent < messages {
                    emit(&client, sent);
                    sent += 1;
                }
            }
        }
        Pace::Every(period) => {
            let mut tick = tokio::time::interval(period);
            while sent < messages {
                tick.tick().await;
                emit(&client, sent);
                sent += 1;
                match answer(&mut client, drain).await {
                    Some(true) => acked += 1,
                    Some(false) => errors += 1,
                    None => break,
                }
            }
        }
    }
    (errors, sent - acked - errors)
}

/// The server's answer to one send: `Some(true)` acknowledged, `Some(false)` refused, `None`
/// silence for `drain` (a server that stops answering must not hang the run).
async fn answer(client: &mut Client, drain: Duration) -> Option<bool> {
    loop {
        match timeout(drain, client.rx.recv()).await {
            Ok(Some(Incoming::Event(name, _))) if name == "message_sent" => return Some(true),
            Ok(Some(Incoming::Event(name, _))) if name == "error" => return Some(false),
            Ok(Some(Incoming::Event(..))) => continue,
            _ => return None,
        }
    }
}

/// The fields of a `new_message` we read, borrowed from the frame (the rest are skipped).
#[derive(Deserialize)]
struct NewMessage<'a> {
    conversation_id: i64,
    seq: Option<u64>,
    #[serde(borrow)]
    content: Cow<'a, str>,
}

fn is_warm_up(body: &str, conversation: i64) -> bool {
    matches!(serde_json::from_str::<(Cow<str>, NewMessage)>(body),
        Ok((name, msg)) if name == "new_message" && msg.conversation_id == conversation && msg.content == WARM_UP)
}

/// `(seq, index, sent_us)` of a `new_message` in `conversation`, from the event's
/// `["name", payload]`. Our content is `"<index>:<micros since start>"`; a server that
/// sends no `seq` is judged by the index.
fn parse(body: &str, conversation: i64) -> Option<(u64, u64, u64)> {
    let (name, msg): (Cow<str>, NewMessage) = serde_json::from_str(body).ok()?;
    if name != "new_message" || msg.conversation_id != conversation {
        return None;
    }
    let (index, micros) = msg.content.split_once(':')?;
    let index: u64 = index.parse().ok()?;
    Some((msg.seq.unwrap_or(index), index, micros.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_our_conversation() {
        let m = r#"["new_message",{"message_id":9,"conversation_id":7,"content":"3:1500","seq":4}]"#;
        assert_eq!(parse(m, 7), Some((4, 3, 1500)));
        assert_eq!(parse(m, 8), None);
        let sent = r#"["message_sent",{"conversation_id":7,"content":"3:1500","seq":4}]"#;
        assert_eq!(parse(sent, 7), None);
        let no_seq = r#"["new_message",{"conversation_id":7,"content":"3:1500"}]"#;
        assert_eq!(parse(no_seq, 7), Some((3, 3, 1500)));
        let other = r#"["member_added",{"conversation_id":7,"user_id":3}]"#;
        assert_eq!(parse(other, 7), None);
        let warm = r#"["new_message",{"conversation_id":7,"content":"warm-up","seq":1}]"#;
        assert_eq!(parse(warm, 7), None, "the warm-up is not measured");
        assert!(is_warm_up(warm, 7) && !is_warm_up(warm, 8) && !is_warm_up(m, 7));
    }
}
