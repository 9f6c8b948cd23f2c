//! The load generator's counters, checked against servers known to be right and wrong:
//! the ceiling relay, honest and with deliberate faults.
use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
};

use serde_json::Value;

struct Server(Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ceiling(fault: &str) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bench-ceiling"))
        .args(["--port", "0", "--fault", fault])
        .stdout(Stdio::piped())
        .spawn()
        .expect("ceiling starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.trim().rsplit(' ').next().expect("listening line").to_owned();
    Server(child, format!("http://{addr}"))
}

const PAIRS: u64 = 5;
const MESSAGES: u64 = 40;

fn run_pairs(server: &Server) -> Value {
    run_pairs_with(server, &[])
}

fn run_pairs_with(server: &Server, extra: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_realtime-chat-bench"))
        .args([
            "pairs",
            "--url",
            &server.1,
            "--secret",
            "smoke",
            "--drain-secs",
            "1",
        ])
        // One message in flight per sender: the relay's concurrent handlers cannot reorder,
        // so every disorder counted is the one the fault injected.
        .args([
            "--pairs",
            &PAIRS.to_string(),
            "--messages",
            &MESSAGES.to_string(),
            "--window",
            "1",
        ])
        .arg("--server-pid")
        .arg(server.0.id().to_string())
        .args(extra)
        .output()
        .expect("generator runs");
    assert!(
        out.status.success(),
        "generator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    let report = line["report"].clone();
    assert_eq!(report["unanswered"], 0, "every send was acknowledged: {report}");
    report
}

#[test]
fn an_honest_server_scores_clean() {
    let r = run_pairs(&ceiling("none"));
    assert_eq!(r["expected"], PAIRS * MESSAGES);
    assert_eq!(r["delivered"], PAIRS * MESSAGES);
    assert_eq!(r["missing"], 0);
    assert_eq!(r["duplicated"], 0);
    assert_eq!(r["reordered"], 0);
    assert!(r["server_cpu_s"].as_f64().is_some(), "server CPU is reported");
    assert!(r["msgs_per_sec"].as_f64().unwrap() > 0.0);
}

#[test]
fn dropped_messages_are_counted_missing() {
    let r = run_pairs(&ceiling("drop:10"));
    // Every 10th message of each sender never arrives.
    assert_eq!(r["missing"], PAIRS * MESSAGES / 10);
    assert_eq!(r["delivered"], PAIRS * MESSAGES - PAIRS * MESSAGES / 10);
    assert_eq!(r["duplicated"], 0);
}

#[test]
fn duplicated_messages_are_counted_once_each() {
    let r = run_pairs(&ceiling("duplicate:10"));
    assert_eq!(r["duplicated"], PAIRS * MESSAGES / 10);
    assert_eq!(r["missing"], 0);
    assert_eq!(r["delivered"], PAIRS * MESSAGES);
}

#[test]
fn swapped_messages_are_counted_reordered() {
    let r = run_pairs(&ceiling("reorder"));
    // The relay swaps every two consecutive messages of a sender: half arrive late.
    assert_eq!(r["reordered"], PAIRS * MESSAGES / 2);
    assert_eq!(r["missing"], 0);
    assert_eq!(r["duplicated"], 0);
}

/// Receivers on another server than the senders (scenario 5's senders on node A and
/// receivers on node B). Two lone relays share nothing, so nothing may arrive: proof that
/// receivers connected where they were told, and that a cross-node loss counts missing.
#[test]
fn receivers_connect_to_the_receiver_url() {
    let (a, b) = (ceiling("none"), ceiling("none"));
    let pids = format!("{},{}", a.0.id(), b.0.id());
    let r = run_pairs_with(
        &a,
        &[
            "--receiver-url",
            &b.1,
            "--watch",
            &format!("nodes={pids}"),
            "--watch",
            &format!("b={}", b.0.id()),
        ],
    );
    assert_eq!(r["expected"], PAIRS * MESSAGES);
    assert_eq!(r["delivered"], 0, "{r}");
    assert_eq!(r["missing"], PAIRS * MESSAGES);
    assert_eq!(r["duplicated"], 0);
    let watched = &r["watched_cpu_s"];
    assert!(watched["nodes"].as_f64().is_some(), "summed CPU of both: {r}");
    assert!(watched["b"].as_f64().is_some(), "{r}");

    // The same flag naming the senders' own server: everything arrives, in order.
    let r = run_pairs_with(&a, &["--receiver-url", &a.1]);
    assert_eq!(r["delivered"], PAIRS * MESSAGES);
    assert_eq!(r["missing"], 0);
    assert_eq!(r["reordered"], 0);
    assert!(
        r.get("watched_cpu_s").is_none(),
        "nothing watched, nothing reported: {r}"
    );
}

const GROUPS: u64 = 2;
const MEMBERS: u64 = 5;
const GROUP_MESSAGES: u64 = 10;

/// Scenario 2 on a small scale: prints the fan-out line, then (with `big_members` ≥ 2)
/// the big-group line. Against a faulty relay there is no warm-up message: the fault
/// would act on it too (a held-back warm-up never arrives).
fn run_groups(server: &Server, big_members: u64, warm_up: bool) -> Vec<Value> {
    let mut generator = Command::new(env!("CARGO_BIN_EXE_realtime-chat-bench"));
    generator
        .args([
            "groups",
            "--url",
            &server.1,
            "--secret",
            "smoke",
            "--drain-secs",
            "1",
        ])
        // One message in flight per sender, for the same reason as in `run_pairs`.
        .args(["--groups", &GROUPS.to_string(), "--members", &MEMBERS.to_string()])
        .args(["--messages", &GROUP_MESSAGES.to_string(), "--window", "1"])
        .args(["--big-members", &big_members.to_string(), "--big-seconds", "2"])
        .args(["--cool-down-secs", "0"]);
    if !warm_up {
        generator.arg("--no-warm-up");
    }
    let out = generator.output().expect("generator runs");
    assert!(
        out.status.success(),
        "generator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON lines"))
        .collect();
    for line in &lines {
        assert_eq!(
            line["report"]["unanswered"], 0,
            "every send was acknowledged: {line}"
        );
    }
    lines.into_iter().map(|l| l["report"].clone()).collect()
}

/// Deliveries expected in the fan-out part: every member but the sender gets every message.
const FANOUT: u64 = GROUPS * (MEMBERS - 1) * GROUP_MESSAGES;

#[test]
fn an_honest_relay_fans_out_clean() {
    let reports = run_groups(&ceiling("none"), 5, true);
    let [fanout, big] = &reports[..] else {
        panic!("two result lines: {reports:?}")
    };
    assert_eq!(fanout["expected"], FANOUT);
    assert_eq!(fanout["delivered"], FANOUT);
    for r in [fanout, big] {
        assert_eq!(r["missing"], 0, "{r}");
        assert_eq!(r["duplicated"], 0, "{r}");
        assert_eq!(r["reordered"], 0, "{r}");
        assert!(
            r["p99_all_ms"].as_f64().unwrap() > 0.0,
            "latency to every member is measured"
        );
    }
    // One message a second for two seconds, to four members.
    assert_eq!(big["delivered"], 2 * 4);
}

#[test]
fn dropped_group_messages_are_missing_for_every_member() {
    let reports = run_groups(&ceiling("drop:5"), 0, false);
    let r = &reports[0];
    // Every 5th message of each sender reaches none of its group's other members.
    let lost = GROUPS * (MEMBERS - 1) * GROUP_MESSAGES / 5;
    assert_eq!(r["missing"], lost);
    assert_eq!(r["delivered"], FANOUT - lost);
    assert_eq!(r["members_incomplete"], GROUPS * (MEMBERS - 1));
    assert_eq!(r["duplicated"], 0);
    assert_eq!(r["reordered"], 0);
}

#[test]
fn swapped_group_messages_are_counted_reordered_by_seq() {
    let r = &run_groups(&ceiling("reorder"), 0, false)[0];
    // Every two consecutive messages arrive swapped, at every member: half arrive late.
    assert_eq!(r["reordered"], FANOUT / 2);
    assert_eq!(r["missing"], 0);
    assert_eq!(r["duplicated"], 0);
}
