// Benchmark scenario 6 (issue 18): delivery across silent drops. Not a test: numbers only.
//
// PAIRS sender→receiver pairs of each receiver kind send MESSAGES messages each, spread
// over SECONDS. Senders are connected directly (a good link); receivers go through
// tests/js/lib/lossy-proxy.js: JITTER ms of delay per chunk and direction, and each
// receiver connection is cut *silently* (the server sees no FIN or RST; the client's
// socket is reset, as when a phone leaves Wi-Fi) CUT_EVERY_MS ×(1 ± 50 %) after it
// opened. Receivers reconnect with socket.io-client's default back-off. Two kinds:
//   seed  listens to `new_message` only, never calls `sync` (the seed's clients)
//   sync  also calls `sync` by seq on every (re)connect and on a gap (docs/PROTOCOL.md)
// When the senders are done the cuts stop, every receiver reconnects, each sender sends
// a marker message and the run waits until every receiver has it (and the marker's
// receipt), then counts. A second run does the same on a clean network (jitter, no cuts).
//
// Per server, network and receiver kind the table shows: of the acknowledged messages,
// the share that reached their receiver at least once; duplicate copies as a share of
// the messages; "lying" receipts (`message_delivered` for a message its receiver never
// got by the end); "early" receipts (the receipt reached the sender before the receiver
// had the message: it got it only later); first arrivals out of order (seed receivers);
// the receivers' connections and the silent cuts of the run (both kinds together).
//
// Usage (needs `cd tests/js && npm ci` once; PostgreSQL for the peer and the default DB):
//   node bench/drops.mjs                 # realtime-chat (started here) and the reference peer
//   node bench/drops.mjs rc              # realtime-chat only
//   node bench/drops.mjs peer            # the reference peer only (../shared/peer-node)
//   node bench/drops.mjs --url http://127.0.0.1:5000             # a running realtime-chat
//   node bench/drops.mjs --url http://127.0.0.1:5100 --peer --secret S   # a running peer
// Knobs (environment): PAIRS=50 MESSAGES=200 SECONDS=60 JITTER=50-300 CUT_EVERY_MS=10000
//   CLEAN=1 (0: skip the clean run) CLEAN_SECONDS=30 DB=postgres|sqlite
//   PG_URL=postgres://postgres@127.0.0.1:5432 RC_BIN (default: release binary under
//   $CARGO_TARGET_DIR, else debug) PEER_DIR=../shared/peer-node
//   PING_INTERVAL_MS / PING_TIMEOUT_MS are passed on to the realtime-chat it starts.
// realtime-chat is started like bench/run starts it (RATE_SENDS_PER_SEC=0, a fresh
// database); users are registered over REST. The peer is copied to /tmp/peer-node and
// `npm install`ed there once (as bench/run does); its tokens carry `user_id`, it needs no
// users. The peer has no offline queue, no seq and no `sync`: its sync receivers' calls go
// unanswered (shown in the table), and order and coverage are read from the content.

import { spawn, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm, copyFile } from "node:fs/promises";
import { tmpdir, homedir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(path.join(ROOT, "tests/js/package.json"));
const { io } = require("socket.io-client");
const jwt = require("jsonwebtoken");
const pg = require("pg");
const { startLossyProxy } = await import(path.join(ROOT, "tests/js/lib/lossy-proxy.js"));

const env = process.env;
const PAIRS = Number(env.PAIRS ?? 50);
const MESSAGES = Number(env.MESSAGES ?? 200);
const SECONDS = Number(env.SECONDS ?? 60);
const JITTER = (env.JITTER ?? "50-300").split("-").map(Number);
const CUT_EVERY_MS = Number(env.CUT_EVERY_MS ?? 10_000);
const CLEAN = env.CLEAN !== "0";
const CLEAN_SECONDS = Number(env.CLEAN_SECONDS ?? 30);
const DB = env.DB ?? "postgres";
const PG_URL = env.PG_URL ?? "postgres://postgres@127.0.0.1:5432";
const PEER_DIR = env.PEER_DIR ?? path.join(ROOT, "../shared/peer-node");
const TARGET_DIR = env.CARGO_TARGET_DIR ?? path.join(homedir(), ".cache/realtime-chat-target");
const RC_BIN =
  env.RC_BIN ??
  [path.join(TARGET_DIR, "release/realtime-chat"), path.join(TARGET_DIR, "debug/realtime-chat")].find(existsSync);
const SECRET = `drops-${randomBytes(16).toString("hex")}`;

const log = (...args) => console.error("==>", ...args);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
let tick = 0;
const stamp = () => ++tick; // one event order for every client in this process

async function until(probe, timeoutMs, intervalMs = 200) {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) return false;
    await sleep(intervalMs);
  }
  return true;
}

// ---------------------------------------------------------------- servers

function waitForLine(child, pattern, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: not ready within 60 s`)), 60_000);
    child.once("exit", (code) => reject(new Error(`${what} exited during start-up (code ${code})`)));
    createInterface({ input: child.stdout }).on("line", (line) => {
      const m = pattern.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
  });
}

async function freshPg(name) {
  const admin = new pg.Client({ connectionString: `${PG_URL}/postgres` });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  return `${PG_URL}/${name}`;
}

function stopper(child, cleanup = async () => {}) {
  return async () => {
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    }
    await cleanup();
  };
}

async function startRc() {
  if (!RC_BIN) throw new Error("no realtime-chat binary: cargo build --release -p realtime-chat, or set RC_BIN");
  const dir = await mkdtemp(path.join(tmpdir(), "rc-drops-"));
  const url =
    DB === "sqlite" ? `sqlite://${dir}/drops.db?mode=rwc` : `${await freshPg("rc_bench_drops")}?sslmode=disable`;
  const pass = Object.fromEntries(
    ["PING_INTERVAL_MS", "PING_TIMEOUT_MS", "RUST_LOG"].filter((k) => env[k]).map((k) => [k, env[k]]),
  );
  const child = spawn(RC_BIN, ["serve"], {
    cwd: dir,
    env: {
      PATH: env.PATH,
      DATABASE_URL: url,
      JWT_SECRET: SECRET,
      HOST: "127.0.0.1",
      PORT: "0",
      RUST_LOG: "warn",
      RATE_SENDS_PER_SEC: "0",
      ...pass,
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const [, port] = await waitForLine(child, /listening on 127\.0\.0\.1:(\d+)/, "realtime-chat");
  const settings = Object.entries(pass).map(([k, v]) => `${k}=${v}`).join(" ");
  return {
    label: `realtime-chat (${DB === "sqlite" ? "SQLite" : "PostgreSQL"}${settings ? `, ${settings}` : ""})`,
    kind: "rc",
    url: `http://127.0.0.1:${port}`,
    stop: stopper(child, () => rm(dir, { recursive: true, force: true })),
  };
}

async function startPeer() {
  const work = "/tmp/peer-node";
  if (!existsSync(path.join(work, "node_modules"))) {
    log("installing the reference peer in", work);
    execFileSync("rm", ["-rf", work]);
    execFileSync("cp", ["-r", PEER_DIR, work]);
    execFileSync("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: work, stdio: "inherit" });
  }
  await copyFile(path.join(PEER_DIR, "server.js"), path.join(work, "server.js")); // unpatched, every start
  const port = 5330 + Math.floor(Math.random() * 50);
  const child = spawn("node", ["server.js"], {
    cwd: work,
    env: { ...env, DATABASE_URL: await freshPg("rc_bench_drops_peer"), JWT_SECRET: SECRET, PORT: String(port) },
    stdio: ["ignore", "pipe", "inherit"],
  });
  await waitForLine(child, /peer-node listening/, "reference peer");
  return { label: "reference peer (Node + PostgreSQL)", kind: "peer", url: `http://127.0.0.1:${port}`, stop: stopper(child) };
}

// ---------------------------------------------------------------- users

async function register(url, label) {
  for (;;) {
    const res = await fetch(`${url}/api/auth/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        email: `${label}-${randomBytes(5).toString("hex")}@drops.example`,
        password: randomBytes(9).toString("hex"),
        display_name: label,
      }),
    });
    if (res.status === 503) {
      await sleep(1000 * Number(res.headers.get("retry-after") ?? 1));
      continue;
    }
    const body = await res.json();
    if (res.status !== 201) throw new Error(`registering ${label}: ${res.status} ${JSON.stringify(body)}`);
    return { id: body.user.id, token: body.token };
  }
}

/** `count` users: registered over REST (realtime-chat) or minted tokens (the peer). */
async function users(target, count) {
  if (target.kind === "peer") {
    const exp = Math.floor(Date.now() / 1000) + 3600;
    const base = 1 + Math.floor(Math.random() * 1e6) * 1000;
    return Array.from({ length: count }, (_, i) => ({
      id: base + i,
      token: jwt.sign({ user_id: base + i, exp }, target.secret ?? SECRET, { algorithm: "HS256", noTimestamp: true }),
    }));
  }
  const out = [];
  for (let i = 0; i < count; i += 8) {
    const batch = Array.from({ length: Math.min(8, count - i) }, (_, j) => register(target.url, `drops${i + j}`));
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

// ---------------------------------------------------------------- clients

const indexOf = (content) => Number(/#(\d+)$/.exec(content ?? "")?.[1] ?? 0);

class Receiver {
  constructor(url, user, kind) {
    this.user = user;
    this.kind = kind;
    this.arrivals = [];
    this.connects = 0;
    this.epoch = 0;
    this.conversationId = null;
    this.bySeq = new Map();
    this.contig = 0;
    this.syncCalls = 0;
    this.syncAnswers = 0;
    this.socket = io(url, { auth: { token: user.token }, transports: ["websocket"], forceNew: true });
    this.socket.io.on("open", () => (this.epoch += 1));
    this.socket.on("connect", () => {
      this.connects += 1;
      if (kind === "sync") this.sync();
    });
    this.socket.on("new_message", (m) => this.arrive(m, "live"));
  }

  arrive(m, via) {
    this.arrivals.push({ id: m.message_id, seq: m.seq, index: indexOf(m.content), epoch: this.epoch, via, at: stamp() });
    if (this.kind !== "sync" || m.seq === undefined) return;
    if (!this.bySeq.has(m.seq)) this.bySeq.set(m.seq, m);
    while (this.bySeq.has(this.contig + 1)) this.contig += 1;
    if (via === "live" && m.seq > this.contig + 1) this.sync();
  }

  async sync() {
    if (this.syncing) return void (this.syncAgain = true);
    if (this.conversationId === null) return;
    this.syncing = true;
    try {
      do {
        this.syncAgain = false;
        for (;;) {
          if (!this.socket.connected) return;
          this.syncCalls += 1;
          let answer;
          try {
            answer = await this.socket.timeout(3_000).emitWithAck("sync", {
              since: [{ conversation_id: this.conversationId, after_seq: this.contig }],
            });
          } catch {
            return; // cut meanwhile (or a server without sync): the next connect tries again
          }
          if (!Array.isArray(answer?.messages)) return;
          this.syncAnswers += 1;
          for (const m of answer.messages) this.arrive(m, "sync");
          if (!answer.has_more) break;
        }
      } while (this.syncAgain);
    } finally {
      this.syncing = false;
    }
  }

  has(id) {
    return this.arrivals.some((a) => a.id === id);
  }
}

class Sender {
  constructor(url, user, viaAck) {
    this.viaAck = viaAck; // realtime-chat: the ack; the peer answers only with message_sent
    this.socket = io(url, { auth: { token: user.token }, transports: ["websocket"], forceNew: true });
    this.receipts = [];
    this.sentEvents = [];
    this.waiters = [];
    this.socket.on("message_delivered", (r) => this.receipts.push({ id: r.message_id, at: stamp() }));
    this.socket.on("message_sent", (m) => {
      this.sentEvents.push(m);
      this.waiters.splice(0).forEach((wake) => wake());
    });
  }

  /** Sends one message; resolves to its acknowledgement, or null after 10 s. */
  async send(to, content) {
    if (this.viaAck) {
      try {
        const ack = await this.socket.timeout(10_000).emitWithAck("send_message", { to_user_id: to, content });
        return ack?.status === "sent" ? ack : null;
      } catch {
        return null;
      }
    }
    const before = this.sentEvents.length;
    this.socket.emit("send_message", { to_user_id: to, content });
    const ok = await Promise.race([
      new Promise((resolve) => this.waiters.push(() => resolve(true))),
      sleep(10_000).then(() => false),
    ]);
    return ok && this.sentEvents.length > before ? this.sentEvents[before] : null;
  }
}

// ---------------------------------------------------------------- one run

async function run(target, { network, seconds, cutEveryMs }) {
  log(`${target.label}: ${network} network, ${PAIRS} pairs per receiver kind × ${MESSAGES} messages over ${seconds} s`);
  const proxy = await startLossyProxy({ target: target.url, jitterMs: JITTER });
  const people = await users(target, PAIRS * 4);
  const pairs = [];
  for (const [k, kind] of ["seed", "sync"].entries()) {
    for (let i = 0; i < PAIRS; i++) {
      const senderUser = people[(k * PAIRS + i) * 2];
      const receiverUser = people[(k * PAIRS + i) * 2 + 1];
      pairs.push({
        kind,
        label: `${kind}${i}`,
        sender: new Sender(target.url, senderUser, target.kind === "rc"),
        rx: new Receiver(proxy.url, receiverUser, kind),
        acks: [],
        unacked: 0,
      });
    }
  }
  const everyoneUp = await until(() => pairs.every((p) => p.sender.socket.connected && p.rx.socket.connected), 30_000);
  if (!everyoneUp) throw new Error("not every client connected within 30 s");
  if (cutEveryMs > 0) proxy.startCutting(cutEveryMs, 0.5);

  const pace = (seconds * 1000) / MESSAGES;
  const started = Date.now();
  await Promise.all(
    pairs.map(async (p) => {
      const offset = Math.random() * pace; // spread the pairs over one pace interval
      for (let i = 1; i <= MESSAGES; i++) {
        await sleep(Math.max(0, started + offset + (i - 1) * pace - Date.now()));
        const ack = await p.sender.send(p.rx.user.id, `${p.label} #${i}`);
        if (!ack) {
          p.unacked += 1;
          if (!p.sender.viaAck) break; // message_sent matching is lost after a timeout
          continue;
        }
        p.acks.push({ ...ack, index: i });
        p.rx.conversationId ??= ack.conversation_id;
      }
    }),
  );
  const sendSeconds = (Date.now() - started) / 1000;

  // The end: no more cuts, everyone back, a marker each, and every receiver has it.
  proxy.stopCutting();
  const back = await until(() => pairs.every((p) => p.rx.socket.connected), 60_000);
  for (const p of pairs) p.marker = await p.sender.send(p.rx.user.id, `${p.label} end #0`);
  const hasSeq = pairs.every((p) => p.marker && typeof p.marker.seq === "number");
  const drained = await until(
    () =>
      pairs.every((p) => {
        if (!p.marker) return true;
        if (p.kind === "seed" || !hasSeq) return p.rx.has(p.marker.message_id);
        if (p.rx.contig >= p.marker.seq) return true;
        if (!p.rx.syncing) p.rx.sync();
        return false;
      }),
    60_000,
    250,
  );
  // Receipts are proven by the device: give the markers' receipts time to come back.
  const receiptsIn = await until(
    () => pairs.every((p) => !p.marker || p.sender.receipts.some((r) => r.id === p.marker.message_id)),
    30_000,
  );
  const notes = [];
  if (!back) notes.push("not every receiver reconnected within 60 s");
  if (!drained) notes.push("not every receiver got its marker within 60 s");
  if (!receiptsIn) notes.push("not every marker got its receipt within 30 s");

  const rows = ["seed", "sync"].map((kind) => tally(target, network, kind, pairs.filter((p) => p.kind === kind)));
  rows.forEach((row) => Object.assign(row, { cuts: proxy.stats.cuts, sendSeconds, notes: notes.join("; ") }));
  for (const p of pairs) {
    p.sender.socket.disconnect();
    p.rx.socket.disconnect();
  }
  await proxy.close();
  return rows;
}

function tally(target, network, kind, pairs) {
  const row = { server: target.label, network, kind, acked: 0, unacked: 0, received: 0, copies: 0 };
  Object.assign(row, { receipts: 0, lying: 0, early: 0, reordered: 0, connects: 0, syncCalls: 0, syncAnswers: 0 });
  for (const p of pairs) {
    const acked = new Map(p.acks.map((a) => [a.message_id, a]));
    const firsts = new Map();
    for (const a of p.rx.arrivals) {
      if (!acked.has(a.id)) continue;
      row.copies += 1;
      if (!firsts.has(a.id)) firsts.set(a.id, a);
    }
    const order = [...firsts.values()].sort((x, y) => x.at - y.at).map((a) => a.index);
    row.reordered += order.filter((index, i) => i > 0 && index < order[i - 1]).length;
    row.acked += acked.size;
    row.unacked += p.unacked;
    row.received += firsts.size;
    for (const r of p.sender.receipts) {
      if (!acked.has(r.id)) continue;
      row.receipts += 1;
      const first = firsts.get(r.id);
      if (!first) row.lying += 1;
      else if (first.at > r.at) row.early += 1;
    }
    row.connects += p.rx.connects;
    row.syncCalls += p.rx.syncCalls;
    row.syncAnswers += p.rx.syncAnswers;
  }
  return row;
}

// ---------------------------------------------------------------- main

const pct = (n, d) => (d ? `${((100 * n) / d).toFixed(1)} %` : "–");

function table(rows) {
  const head =
    "| server | network | receivers | acked | reached receiver | missing | duplicate copies | lying receipts | early receipts | receipts | reordered | receiver connections | silent cuts (run) | sync calls (answered) |";
  const lines = [head, `|${head.split("|").slice(1, -1).map(() => "---").join("|")}|`];
  for (const r of rows) {
    lines.push(
      `| ${r.server} | ${r.network} | ${r.kind} | ${r.acked} | ${pct(r.received, r.acked)} | ${r.acked - r.received} | ` +
        `${r.copies - r.received} (${pct(r.copies - r.received, r.acked)}) | ${r.lying} | ${r.early} | ${r.receipts} | ` +
        `${r.kind === "seed" ? r.reordered : "–"} | ${r.connects} | ${r.cuts} | ${r.kind === "sync" ? `${r.syncCalls} (${r.syncAnswers})` : "–"} |`,
    );
  }
  return lines.join("\n");
}

async function main() {
  const args = process.argv.slice(2);
  const urlAt = args.indexOf("--url");
  const targets = [];
  if (urlAt >= 0) {
    const secretAt = args.indexOf("--secret");
    const peer = args.includes("--peer");
    targets.push(async () => ({
      label: `${peer ? "peer" : "realtime-chat"} at ${args[urlAt + 1]}`,
      kind: peer ? "peer" : "rc",
      url: args[urlAt + 1],
      secret: secretAt >= 0 ? args[secretAt + 1] : undefined,
      stop: async () => {},
    }));
  } else {
    const only = args.find((a) => a === "rc" || a === "peer");
    if (!only || only === "rc") targets.push(startRc);
    if (!only || only === "peer") targets.push(startPeer);
  }
  if (RC_BIN && urlAt < 0) log("realtime-chat binary:", RC_BIN);

  const rows = [];
  for (const start of targets) {
    for (const [network, seconds, cutEveryMs] of [
      [`lossy (${JITTER.join("–")} ms jitter, silent cut every ~${CUT_EVERY_MS / 1000} s)`, SECONDS, CUT_EVERY_MS],
      ...(CLEAN ? [[`clean (${JITTER.join("–")} ms jitter, no cuts)`, CLEAN_SECONDS, 0]] : []),
    ]) {
      const target = await start(); // a fresh server and database for each run
      try {
        const result = await run(target, { network, seconds, cutEveryMs });
        for (const row of result) console.error(JSON.stringify(row));
        rows.push(...result);
      } finally {
        await target.stop();
      }
    }
  }
  console.log(table(rows));
  const notes = [...new Set(rows.map((r) => r.notes).filter(Boolean))];
  if (notes.length) console.log(`\nnotes: ${notes.join("; ")}`);
  process.exit(0);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
