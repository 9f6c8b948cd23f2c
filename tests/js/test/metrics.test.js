// Operability: GET /metrics in Prometheus text format (messages stored and delivered,
// sockets, handshakes, REST requests by route template, the writer, the pool, the
// configured limits), METRICS_ADDR moving /metrics to a listener of its own, and
// LOG_FORMAT=json logs that name users but never carry a token or a password.

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { startServer, serverBinary } from "../lib/harness.js";
import { connect, open, closeAll } from "../lib/client.js";
import { createGroup, eventually, groupOf } from "../lib/api.js";

/** Parses Prometheus text into samples: [{ name, labels: { … }, value }]. */
function parseMetrics(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(match, `not a Prometheus sample line: ${line}`);
    const labels = {};
    for (const [, key, value] of (match[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key] = value;
    }
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

/** The value of the one sample named `name` whose labels include `labels` (undefined if none). */
function valueOf(samples, name, labels = {}) {
  const found = samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  assert.ok(found.length <= 1, `${name} ${JSON.stringify(labels)} matches ${found.length} series`);
  return found[0]?.value;
}

/** Scrapes `url` (a server's or the metrics listener's) and parses the answer. */
async function scrape(url) {
  const res = await fetch(`${url}/metrics`);
  assert.equal(res.status, 200, `GET ${url}/metrics`);
  assert.match(res.headers.get("content-type"), /^text\/plain; version=0\.0\.4/);
  return parseMetrics(await res.text());
}

/** A TCP port nothing listens on right now. */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

describe("GET /metrics on the public port", () => {
  let server;
  before(async () => {
    server = await startServer({ env: { RATE_SENDS_PER_SEC: "37", MAX_SOCKETS_PER_USER: "9" } });
  });
  after(() => server?.stop());

  test("after an exchange, counters, the socket gauge and the REST series match what happened", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const aliceSocket = await connect(server, alice);
    const bobPhone = await connect(server, bob);
    const bobLaptop = await connect(server, bob);

    const sent = 5;
    for (let i = 0; i < sent; i++) {
      aliceSocket.emit("send_message", { to_user_id: bob.id, content: `hello ${i}` });
    }
    await aliceSocket.expectMany("message_sent", sent);
    await bobPhone.expectMany("new_message", sent);
    await bobLaptop.expectMany("new_message", sent);
    const group = await createGroup(server, alice, [bob]);
    await groupOf(server, bob, group.conversation_id);

    const samples = await eventually(
      async () => {
        const s = await scrape(server.url);
        return valueOf(s, "realtime_chat_sockets_connected") === 3 && s;
      },
      { what: "realtime_chat_sockets_connected == 3" },
    );
    // Engine.IO connections count each socket too (and any session not yet closed).
    assert.ok(valueOf(samples, "realtime_chat_connections_open") >= 3);
    assert.ok(valueOf(samples, "realtime_chat_messages_stored_total") >= sent);
    // Each of bob's two devices got each message live.
    assert.ok(valueOf(samples, "realtime_chat_messages_delivered_total") >= 2 * sent);
    assert.ok(valueOf(samples, "realtime_chat_delivery_latency_seconds_count") >= 2 * sent);
    assert.ok(valueOf(samples, "realtime_chat_delivery_latency_seconds_bucket", { le: "+Inf" }) >= 2 * sent);
    assert.ok(valueOf(samples, "realtime_chat_writer_batch_messages_sum") >= sent);
    assert.ok(valueOf(samples, "realtime_chat_writer_commit_duration_seconds_count") >= 1);
    assert.ok(valueOf(samples, "realtime_chat_writer_queue_depth") >= 0);
    assert.ok(valueOf(samples, "realtime_chat_handshakes_authenticated_total") >= 3);

    // REST series carry the route template, never the raw path.
    assert.ok(
      valueOf(samples, "realtime_chat_http_requests_total", {
        method: "GET",
        route: "/api/groups/{id}",
        status: "200",
      }) >= 1,
    );
    assert.ok(
      valueOf(samples, "realtime_chat_http_request_duration_seconds_count", {
        method: "POST",
        route: "/api/auth/register",
        status: "201",
      }) >= 2,
    );
    const routes = new Set(samples.filter((s) => s.name === "realtime_chat_http_requests_total").map((s) => s.labels.route));
    assert.ok(!routes.has(`/api/groups/${group.conversation_id}`), `raw paths as labels: ${[...routes]}`);

    // The configured limits, read from the configuration.
    assert.equal(valueOf(samples, "realtime_chat_limit", { name: "rate_sends_per_sec" }), 37);
    assert.equal(valueOf(samples, "realtime_chat_limit", { name: "max_sockets_per_user" }), 9);
    assert.equal(valueOf(samples, "realtime_chat_limit", { name: "group_max_members" }), 1000);

    // The pool, sampled at scrape time.
    const idle = valueOf(samples, "realtime_chat_db_pool_connections", { state: "idle" });
    const inUse = valueOf(samples, "realtime_chat_db_pool_connections", { state: "in_use" });
    const max = valueOf(samples, "realtime_chat_db_pool_max_connections");
    assert.ok(idle >= 0 && inUse >= 0 && max >= 1 && idle + inUse <= max, `${inUse} + ${idle} of ${max}`);

    await closeAll(bobLaptop);
    await eventually(async () => valueOf(await scrape(server.url), "realtime_chat_sockets_connected") === 2, {
      what: "realtime_chat_sockets_connected == 2 after one socket left",
    });
    await closeAll(aliceSocket, bobPhone);
  });

  test("refused handshakes are counted by reason", async () => {
    const before = await scrape(server.url);
    const refused = (samples, reason) =>
      valueOf(samples, "realtime_chat_handshakes_refused_total", { reason }) ?? 0;
    await open(server, { auth: { token: "not-a-jwt" } }).refusal();
    await open(server, {}).refusal();
    const after = await scrape(server.url);
    assert.equal(refused(after, "token_invalid"), refused(before, "token_invalid") + 1);
    assert.equal(refused(after, "token_missing"), refused(before, "token_missing") + 1);
  });
});

test("with METRICS_ADDR, /metrics is served there and not on the public port", async () => {
  const port = await freePort();
  const server = await startServer({ env: { METRICS_ADDR: `127.0.0.1:${port}` } });
  try {
    const publicRes = await server.http("GET", "/metrics");
    assert.equal(publicRes.status, 404);
    const samples = await scrape(`http://127.0.0.1:${port}`);
    assert.equal(valueOf(samples, "realtime_chat_limit", { name: "rate_sends_per_sec" }), 20);
    // The refused scrape on the public port is an ordinary unmatched request.
    assert.ok(
      valueOf(samples, "realtime_chat_http_requests_total", { route: "unmatched", status: "404" }) >= 1,
    );
  } finally {
    await server.stop();
  }
});

describe("LOG_FORMAT=json", () => {
  let server;
  before(async () => {
    server = await startServer({ env: { LOG_FORMAT: "json", RUST_LOG: "info" } });
  });
  after(() => server?.stop());

  test("every line is a JSON object; connects, disconnects and requests are logged without secrets", async () => {
    const alice = await server.register("alice");
    const socket = await connect(server, alice);
    const login = await server.http("POST", "/api/auth/login", {
      json: { email: alice.email, password: alice.password },
    });
    assert.equal(login.status, 200);
    const me = await server.http("GET", "/api/me", { token: login.body.token });
    assert.equal(me.status, 200);
    await closeAll(socket);

    const lines = await eventually(
      () => {
        const lines = server.log.split("\n").filter(Boolean);
        return lines.some((l) => l.includes("socket disconnected")) && lines;
      },
      { what: "a socket disconnected line" },
    );
    const events = lines.map((line) => {
      try {
        return JSON.parse(line);
      } catch {
        assert.fail(`not JSON: ${line}`);
      }
    });
    for (const secret of [alice.token, login.body.token, alice.password]) {
      // A token's signature alone would do as much harm as the whole token.
      const tail = secret.split(".").pop();
      for (const line of lines) assert.ok(!line.includes(tail), `a secret was logged: ${line}`);
    }
    for (const line of lines) assert.doesNotMatch(line, /bearer|authorization/i);

    const connected = events.find((e) => e.message === "socket connected");
    assert.ok(connected, "a socket connected line");
    assert.equal(connected.user_id, alice.id);
    assert.equal(connected.transport, "websocket");
    assert.equal(typeof connected.sid, "string");
    const disconnected = events.find((e) => e.message === "socket disconnected");
    assert.equal(disconnected.user_id, alice.id);
    assert.equal(disconnected.sid, connected.sid);

    const request = events.find((e) => e.message === "http request" && e.route === "/api/me");
    assert.ok(request, "a line for GET /api/me");
    assert.equal(request.method, "GET");
    assert.equal(request.status, 200);
    assert.equal(request.user_id, alice.id);
    assert.equal(typeof request.latency_ms, "number");
    assert.equal(typeof request.timestamp, "string");
    assert.equal(request.level, "INFO");
    assert.ok(events.some((e) => e.message === "http request" && e.route === "/api/auth/login" && e.status === 200));
  });
});

describe("configuration errors", () => {
  for (const [env, message] of [
    [{ METRICS_ADDR: "localhost" }, /^configuration error: METRICS_ADDR: `localhost` is not an address/],
    [{ LOG_FORMAT: "xml" }, /^configuration error: LOG_FORMAT: `xml` is not `text` or `json`/],
  ]) {
    test(`${Object.keys(env)[0]}=${Object.values(env)[0]} stops start-up with one line`, async () => {
      const dir = await mkdtemp(path.join(tmpdir(), "rc-metrics-"));
      try {
        const res = spawnSync(serverBinary, ["serve"], {
          cwd: dir,
          env: {
            PATH: process.env.PATH,
            HOME: process.env.HOME,
            RUST_LOG: "error",
            DATABASE_URL: `sqlite://${dir}/x.db?mode=rwc`,
            ...env,
          },
          encoding: "utf8",
          timeout: 60_000,
        });
        assert.equal(res.status, 2, res.stderr);
        const lines = res.stderr.trim().split("\n");
        assert.equal(lines.length, 1, `one line: ${res.stderr}`);
        assert.match(lines[0], message);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});
