// Figures for the hardening work (BENCHMARKS.md, "Hardening"): memory under a login
// flood, server CPU per message with thousands queued on one socket, and another user's
// latency while one user floods. Starts the release binary on a fresh SQLite database
// per part. Not a test: numbers only.
//
//   cargo build --release -p realtime-chat && (cd tests/js && npm ci) && node bench/hardening.mjs
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir, homedir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { createRequire } from "node:module";

const require = createRequire(path.resolve("tests/js/package.json"));
const { io } = require("socket.io-client");
const BIN = process.env.RC_BIN ?? path.join(homedir(), ".cache/realtime-chat-target/release/realtime-chat");
const TICK = 100; // clock ticks per second in /proc/<pid>/stat

async function start(env = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), "rc-hard-"));
  const child = spawn(BIN, ["serve"], {
    cwd: dir,
    env: { PATH: process.env.PATH, PORT: "0", RUST_LOG: "error", JWT_SECRET: "x".repeat(40), ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const port = await new Promise((resolve) =>
    createInterface({ input: child.stdout }).on("line", (l) => {
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(l);
      if (m) resolve(m[1]);
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    pid: child.pid,
    stop: async () => {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const rssKiB = async (pid) => Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, "utf8"))[1]);
const cpuSeconds = async (pid) => {
  const f = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) / TICK;
};
async function post(url, p, body, token) {
  const res = await fetch(url + p, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}
async function register(url, name) {
  const r = await post(url, "/api/auth/register", { email: `${name}-${Math.random()}@x.example`, password: "password one" });
  return { id: r.body.user.id, token: r.body.token };
}
function connect(url, user) {
  const s = io(url, { auth: { token: user.token }, transports: ["websocket"], forceNew: true, reconnection: false });
  return new Promise((resolve) => s.once("authenticated", () => resolve(s)));
}

async function loginFlood(env, label) {
  const srv = await start(env);
  await register(srv.url, "victim");
  const before = await rssKiB(srv.pid);
  let peak = before;
  const sampler = setInterval(async () => (peak = Math.max(peak, await rssKiB(srv.pid))), 20);
  const statuses = await Promise.all(
    Array.from({ length: 64 }, () => post(srv.url, "/api/auth/login", { email: "nobody@x.example", password: "wrong password" })),
  );
  clearInterval(sampler);
  const after = await rssKiB(srv.pid);
  const count = (s) => statuses.filter((r) => r.status === s).length;
  console.log(JSON.stringify({ part: "login flood (64 concurrent)", label, rss_before_mib: +(before / 1024).toFixed(1), rss_peak_mib: +(peak / 1024).toFixed(1), rss_after_mib: +(after / 1024).toFixed(1), answered_401: count(401), answered_503: count(503) }));
  await srv.stop();
}

async function queuedCpu(n) {
  const srv = await start({ RATE_SENDS_PER_SEC: "0" });
  const [a, b] = [await register(srv.url, "a"), await register(srv.url, "b")];
  const s = await connect(srv.url, a);
  const cpu0 = await cpuSeconds(srv.pid);
  const t0 = Date.now();
  await Promise.all(
    Array.from({ length: n }, (_, i) => s.timeout(120_000).emitWithAck("send_message", { to_user_id: b.id, content: `m${i}` })),
  );
  const cpu = (await cpuSeconds(srv.pid)) - cpu0;
  console.log(JSON.stringify({ part: "queued on one socket", messages: n, server_cpu_s: +cpu.toFixed(2), cpu_us_per_message: Math.round((cpu / n) * 1e6), wall_s: (Date.now() - t0) / 1000 }));
  s.disconnect();
  await srv.stop();
}

async function neighbourLatency(env, label) {
  const srv = await start(env);
  const [flooder, victim, other, peer] = [await register(srv.url, "f"), await register(srv.url, "v"), await register(srv.url, "o"), await register(srv.url, "p")];
  const f = await connect(srv.url, flooder);
  const v = await connect(srv.url, victim);
  f.on("error", () => {});
  for (let i = 0; i < 20_000; i++) f.emit("send_message", { to_user_id: other.id, content: `flood ${i}` });
  const rtts = [];
  for (let i = 0; i < 200; i++) {
    const t = process.hrtime.bigint();
    await v.timeout(60_000).emitWithAck("send_message", { to_user_id: peer.id, content: `hello ${i}` });
    rtts.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  rtts.sort((x, y) => x - y);
  console.log(JSON.stringify({ part: "neighbour p99 while one user floods 20k sends", label, p50_ms: +rtts[99].toFixed(1), p99_ms: +rtts[197].toFixed(1), flooder_connected: f.connected }));
  f.disconnect();
  v.disconnect();
  await srv.stop();
}

await loginFlood({}, "default (HASH_CONCURRENCY = cores, HASH_QUEUE 32)");
await loginFlood({ HASH_CONCURRENCY: "0" }, "limit off (HASH_CONCURRENCY=0)");
await queuedCpu(5_000);
await queuedCpu(20_000);
await neighbourLatency({}, "default limits (20/s, burst 100)");
await neighbourLatency({ RATE_SENDS_PER_SEC: "0" }, "send limit off");
process.exit(0);
