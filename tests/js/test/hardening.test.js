// What a hostile or careless client must not be able to do to the server or to other
// users: text the database cannot store, send floods, too many sockets, sockets that
// never say CONNECT, binary attachments and oversized frames before login, login
// floods that would exhaust memory, handshakes from a foreign origin, requests that
// make the database work without bound, tokens that are not valid yet or have expired,
// and a secret file others could read or plant.

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import jwt from "jsonwebtoken";
import { spawnSync } from "node:child_process";
import { chmod, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { startServer, serverBinary } from "../lib/harness.js";
import { connect, open, closeAll } from "../lib/client.js";
import { eventually, presenceOf, conversationsOf } from "../lib/api.js";

/** A raw Engine.IO websocket (no Socket.IO client): resolves once the server's open packet arrived. */
function rawSocket(server, headers = {}) {
  const ws = new WebSocket(`${server.url.replace("http", "ws")}/socket.io/?EIO=4&transport=websocket`, {
    headers,
  });
  const closed = new Promise((resolve) => ws.once("close", (code) => resolve(code)));
  const opened = new Promise((resolve, reject) => {
    ws.once("message", (data) => resolve(String(data)));
    ws.once("error", reject);
  });
  return { ws, opened, closed };
}

describe("text the database cannot store", () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(() => server?.stop());

  test("NUL in a message, an email, a display name or a group name is refused alike", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const a = await connect(server, alice);
    const ack = await a.request("send_message", { to_user_id: bob.id, content: "a\u0000b" });
    assert.equal(ack.error.code, "invalid_payload");
    assert.match(ack.error.message, /NUL/);
    assert.equal((await a.expect("error")).code, "invalid_payload");

    for (const body of [
      { email: "nul\u0000@x.example", password: "long enough" },
      { email: "nul@x.example", password: "long enough", display_name: "n\u0000l" },
    ]) {
      const res = await server.http("POST", "/api/auth/register", { json: body });
      assert.equal(res.status, 422, JSON.stringify(res.body));
      assert.equal(typeof res.body.error, "string");
    }
    const login = await server.http("POST", "/api/auth/login", {
      json: { email: "nul\u0000@x.example", password: "long enough" },
    });
    assert.equal(login.status, 401);
    const group = await server.http("POST", "/api/groups", {
      token: alice.token,
      json: { name: "g\u0000", member_ids: [bob.id] },
    });
    assert.equal(group.status, 422);
    await a.close();
  });

  test("a NUL sender beside honest senders fails nobody else", async () => {
    const [mallory, alice, carol, bob] = await server.registerMany("mallory", "alice", "carol", "bob");
    const [m, a, c] = await Promise.all([mallory, alice, carol].map((u) => connect(server, u)));
    const PER_SENDER = 60;
    const acks = [];
    for (let i = 0; i < PER_SENDER; i++) {
      acks.push(a.request("send_message", { to_user_id: bob.id, content: `alice ${i}` }, { timeoutMs: 30_000 }));
      acks.push(m.request("send_message", { to_user_id: bob.id, content: `bad\u0000${i}` }, { timeoutMs: 30_000 }));
      acks.push(c.request("send_message", { to_user_id: bob.id, content: `carol ${i}` }, { timeoutMs: 30_000 }));
    }
    const answers = await Promise.all(acks);
    const honest = answers.filter((_, i) => i % 3 !== 1);
    const bad = answers.filter((_, i) => i % 3 === 1);
    assert.ok(honest.every((r) => Number.isInteger(r.message_id)), JSON.stringify(honest.find((r) => r.error)));
    assert.ok(bad.every((r) => r.error?.code === "invalid_payload"));
    await closeAll(m, a, c);
  });
});

describe("send rate limit", () => {
  let server;
  before(async () => {
    server = await startServer({ env: { RATE_SENDS_PER_SEC: "5", RATE_SENDS_BURST: "10" } });
  });
  after(() => server?.stop());

  test("past the burst a sender is told when to retry; other users are unaffected", async () => {
    const [alice, bob, carol] = await server.registerMany("alice", "bob", "carol");
    const a = await connect(server, alice);
    const c = await connect(server, carol);
    const started = Date.now();
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => a.request("send_message", { to_user_id: bob.id, content: `m${i}` })),
    );
    // The burst, plus what the bucket refilled (5 a second) while the sends were read.
    const refilled = Math.ceil(((Date.now() - started) / 1000) * 5);
    const accepted = answers.filter((r) => r.message_id !== undefined);
    const limited = answers.filter((r) => r.error?.code === "rate_limited");
    assert.ok(accepted.length >= 10 && accepted.length <= 10 + refilled + 1, `accepted ${accepted.length}`);
    assert.ok(limited.length > 0, "some sends were refused");
    assert.equal(accepted.length + limited.length, 20);
    assert.ok(limited.every((r) => r.error.retry_after_ms > 0 && r.error.retry_after_ms <= 1_000));
    const event = await a.expect("error");
    assert.equal(event.code, "rate_limited");
    assert.ok(event.retry_after_ms > 0);

    const other = await c.request("send_message", { to_user_id: bob.id, content: "carol is fine" });
    assert.ok(Number.isInteger(other.message_id), JSON.stringify(other));

    // After the hinted wait, the next send goes through.
    await new Promise((r) => setTimeout(r, limited.at(-1).error.retry_after_ms + 50));
    const later = await a.request("send_message", { to_user_id: bob.id, content: "after waiting" });
    assert.ok(Number.isInteger(later.message_id), JSON.stringify(later));
    await closeAll(a, c);
  });

  test("a client that ignores the limit is disconnected", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const a = await connect(server, alice);
    const gone = new Promise((resolve) => a.socket.once("disconnect", resolve));
    for (let i = 0; i < 400; i++) a.emit("send_message", { to_user_id: bob.id, content: `flood ${i}` });
    assert.equal(await gone, "io server disconnect");
  });
});

describe("connection limits", () => {
  let server;
  before(async () => {
    server = await startServer({ env: { MAX_SOCKETS_PER_USER: "2", CONNECT_TIMEOUT_MS: "500" } });
  });
  after(() => server?.stop());

  test("a user's sockets beyond MAX_SOCKETS_PER_USER are refused until one closes", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const first = await connect(server, alice);
    const second = await connect(server, alice);
    const third = open(server, { auth: { token: alice.token } });
    assert.equal((await third.refusal()).message, "too many connections for this user");
    const bobs = await connect(server, bob);
    await first.close();
    const again = await eventually(async () => {
      const attempt = open(server, { auth: { token: alice.token } });
      try {
        await attempt.ready();
        return attempt;
      } catch {
        attempt.socket.disconnect();
        return null;
      }
    }, { what: "a slot freed by the closed socket" });
    await closeAll(second, again, bobs);
  });

  test("a session that never sends CONNECT is closed", async () => {
    const raw = rawSocket(server);
    assert.match(await raw.opened, /^0\{/);
    const started = Date.now();
    await raw.closed;
    assert.ok(Date.now() - started < 5_000, "closed within the connect timeout");
  });

  test("a binary attachment closes the socket, before or after login", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const a = await connect(server, alice);
    const gone = new Promise((resolve) => a.socket.once("disconnect", resolve));
    a.emit("send_message", { to_user_id: bob.id, content: "x", blob: Buffer.alloc(1024) });
    await gone;

    const raw = rawSocket(server);
    await raw.opened;
    // A CONNECT announcing 1 attachment, never authenticated.
    raw.ws.send('451-["x",{"_placeholder":true,"num":0}]');
    await raw.closed;
  });

  test("a frame larger than any accepted message is refused before it is read", async () => {
    const raw = rawSocket(server);
    await raw.opened;
    raw.ws.send("4" + "x".repeat(1024 * 1024));
    const code = await raw.closed;
    assert.notEqual(code, 1000, "not a normal close");
  });
});

describe("connections in total", () => {
  let server;
  before(async () => {
    server = await startServer({ env: { MAX_CONNECTIONS: "3", CONNECT_TIMEOUT_MS: "3000" } });
  });
  after(() => server?.stop());

  test("MAX_CONNECTIONS counts sessions that never authenticate, and frees a slot when one closes", async () => {
    const held = [rawSocket(server), rawSocket(server), rawSocket(server)];
    for (const raw of held) assert.match(await raw.opened, /^0\{/);
    await assert.rejects(rawSocket(server).opened, /503/, "a fourth session is refused");
    const [alice] = await server.registerMany("alice");
    const refused = open(server, { auth: { token: alice.token }, reconnection: false });
    assert.match((await refused.refusal()).message, /websocket error|xhr poll error/);

    held[0].ws.close();
    await held[0].closed;
    const again = await eventually(async () => {
      const raw = rawSocket(server);
      try {
        await raw.opened;
        return raw;
      } catch {
        return null;
      }
    }, { what: "the slot of the closed session (freed once the server lets go of it: at most CONNECT_TIMEOUT_MS for a session that never connected)", timeoutMs: 8_000 });
    for (const raw of [...held.slice(1), again]) raw.ws.close();
  });
});

describe("a device that stops reading", () => {
  let server;
  before(async () => {
    server = await startServer({ env: { SOCKET_BUFFER_BYTES: "65536" } });
  });
  after(() => server?.stop());

  test("is cut off past its byte budget; nothing it did not get is reported delivered, and it gets it all on reconnect", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const aliceSocket = await connect(server, alice);
    const bobSocket = await connect(server, bob, { reconnection: true, reconnectionDelay: 100 });
    const cuts = [];
    bobSocket.socket.on("disconnect", (reason) => cuts.push(reason));
    // One log of what each side saw, in the order this process saw it.
    const bobGot = new Set();
    const lies = [];
    bobSocket.socket.on("new_message", (m) => bobGot.add(m.message_id));
    aliceSocket.socket.on("message_delivered", (r) => {
      if (!bobGot.has(r.message_id)) lies.push(r.message_id);
    });

    // Bob's app hangs: its connection stays open but nothing is read from it.
    const tcp = bobSocket.socket.io.engine.transport.ws._socket;
    tcp.pause();
    const content = "x".repeat(4096);
    const sent = [];
    for (let i = 0; i < 60; i++) {
      aliceSocket.emit("send_message", { to_user_id: bob.id, content: `${i} ${content}` });
      sent.push(await aliceSocket.expect("message_sent"));
    }
    // Past 64 KiB unshown the server drops the socket; bob's client learns it when it
    // reads again, reconnects, and is handed what it had not shown.
    tcp.resume();
    const last = sent.at(-1).message_id;
    await aliceSocket.until("message_delivered", (r) => r.message_id === last, { timeoutMs: 15_000 });
    assert.deepEqual(lies, [], "message_delivered for messages bob had not received");
    const firsts = [];
    for (const m of bobSocket.collect("new_message")) if (!firsts.some((f) => f.message_id === m.message_id)) firsts.push(m);
    assert.deepEqual(firsts.map((m) => m.message_id), sent.map((m) => m.message_id), "every message, in order");
    // Cut off as a dropped connection (which clients reconnect after), not told to go.
    assert.deepEqual(cuts, ["transport close"]);
    await closeAll(aliceSocket, bobSocket);
  });
});

describe("password hashing under a login flood", () => {
  let server;
  before(async () => {
    server = await startServer({ env: { HASH_CONCURRENCY: "1", HASH_QUEUE: "2" } });
  });
  after(() => server?.stop());

  test("past the running and queued hashes, logins get 503 with Retry-After", async () => {
    const statuses = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        server.http("POST", "/api/auth/login", { json: { email: `nobody${i}@x.example`, password: "wrong password" } }),
      ),
    );
    const busy = statuses.filter((r) => r.status === 503);
    assert.ok(busy.length >= 1, `statuses: ${statuses.map((r) => r.status)}`);
    assert.ok(busy.every((r) => r.headers.get("retry-after") === "1" && typeof r.body.error === "string"));
    assert.ok(statuses.every((r) => r.status === 401 || r.status === 503), `statuses: ${statuses.map((r) => r.status)}`);
    // The flood over, logins work again.
    const user = await server.register("survivor");
    const ok = await server.http("POST", "/api/auth/login", { json: { email: user.email, password: user.password } });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
  });
});

describe("origins", () => {
  let server;
  before(async () => {
    server = await startServer({ env: { CORS_ORIGINS: "http://good.example" } });
  });
  after(() => server?.stop());

  test("with CORS_ORIGINS set, a handshake from another origin is refused", async () => {
    const alice = await server.register("alice");
    const evil = open(server, { auth: { token: alice.token }, extraHeaders: { Origin: "http://evil.example" } });
    assert.equal((await evil.refusal()).message, "origin not allowed");
    const good = open(server, { auth: { token: alice.token }, extraHeaders: { Origin: "http://good.example" } });
    await good.ready();
    const native = await connect(server, alice); // no Origin at all: apps and servers
    await closeAll(good, native);
  });
});

describe("work per request", () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(() => server?.stop());

  /** `count` groups owned by `user` (no other members), newest last. */
  async function groupsOf(user, count) {
    const ids = [];
    for (let i = 0; i < count; i++) {
      const res = await server.http("POST", "/api/groups", { token: user.token, json: { name: `g${i}`, member_ids: [] } });
      assert.equal(res.status, 201, res.text);
      ids.push(res.body.group.conversation_id);
    }
    return ids;
  }

  test("sync answers its documented maximum of conversations, and refuses one more", async () => {
    const alice = await server.register("alice");
    const ids = await groupsOf(alice, 401);
    const a = await connect(server, alice);
    const since = ids.map((conversation_id) => ({ conversation_id, after_seq: 0 }));
    const full = await a.request("sync", { since: since.slice(0, 400) });
    assert.deepEqual(full, { messages: [], has_more: false });
    const over = await a.request("sync", { since });
    assert.equal(over.error?.code, "invalid_payload");
    assert.match(over.error.message, /at most 400/);
    await a.close();
  });

  test("the conversation list pages by cursor and the pages add up to the whole list", async () => {
    const alice = await server.register("alice");
    await groupsOf(alice, 5);
    const whole = await server.http("GET", "/api/conversations", { token: alice.token });
    assert.equal(whole.status, 200);
    assert.equal("next_cursor" in whole.body, false, "the seed's unpaginated form is unchanged");
    const seen = [];
    let cursor = null;
    let pages = 0;
    do {
      const res = await server.http(
        "GET",
        `/api/conversations?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
        { token: alice.token },
      );
      assert.equal(res.status, 200, res.text);
      assert.ok(res.body.conversations.length <= 2);
      seen.push(...res.body.conversations.map((c) => c.conversation_id));
      cursor = res.body.next_cursor;
      pages++;
    } while (cursor && pages < 10);
    assert.deepEqual(seen, whole.body.conversations.map((c) => c.conversation_id));
    for (const bad of ["x", "12", "1.y"]) {
      const res = await server.http("GET", `/api/conversations?limit=2&cursor=${bad}`, { token: alice.token });
      assert.equal(res.status, 400, `${bad}: ${res.text}`);
    }
  });

  test("conversations updated by one write share a time, and paging still skips none of them", async () => {
    const [alice, ...others] = await server.registerMany("alice", "b1", "b2", "b3", "b4", "b5", "b6", "b7");
    const aliceSocket = await connect(server, alice);
    // Sent without waiting, so the writer stores them (and opens the chats) together.
    for (const other of others) aliceSocket.emit("send_message", { to_user_id: other.id, content: "hi" });
    await aliceSocket.expectMany("message_sent", others.length);
    const whole = await server.http("GET", "/api/conversations", { token: alice.token });
    const seen = [];
    let cursor = null;
    for (let pages = 0; pages < 10; pages++) {
      const res = await server.http(
        "GET",
        `/api/conversations?limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
        { token: alice.token },
      );
      assert.equal(res.status, 200, res.text);
      seen.push(...res.body.conversations.map((c) => c.conversation_id));
      cursor = res.body.next_cursor;
      if (!cursor) break;
    }
    assert.equal(whole.body.conversations.length, others.length);
    assert.deepEqual(seen, whole.body.conversations.map((c) => c.conversation_id));
    await closeAll(aliceSocket);
  });
});

describe("tokens", () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(() => server?.stop());
  const now = () => Math.floor(Date.now() / 1000);

  test("a token not valid yet (nbf or iat in the future) is refused on REST and on the handshake", async () => {
    const alice = await server.register("alice");
    for (const token of [
      server.token({ sub: String(alice.id), exp: now() + 7200, nbf: now() + 3600 }),
      // The harness's minting drops iat; sign with it kept.
      jwt.sign({ sub: String(alice.id), exp: now() + 7200, iat: now() + 3600 }, server.secret, { algorithm: "HS256" }),
    ]) {
      const res = await server.http("GET", "/api/me", { token });
      assert.equal(res.status, 401);
      assert.equal(res.body.error, "token not yet valid");
      const socket = open(server, { auth: { token } });
      assert.equal((await socket.refusal()).message, "token not yet valid");
    }
  });

  test("a socket ends when its token expires, unless the client refreshed it", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const short = () => server.token({ sub: String(alice.id), exp: now() + 2 });
    const expiring = await connect(server, alice, { auth: { token: short() } });
    const gone = new Promise((resolve) => expiring.socket.once("disconnect", resolve));
    const told = await expiring.expect("error", { timeoutMs: 8_000 });
    assert.deepEqual(told, { code: "token_expired", message: "token expired: reconnect with a fresh token" });
    assert.equal(await gone, "io server disconnect");

    const refreshed = await connect(server, alice, { auth: { token: short() } });
    const ack = await refreshed.request("auth_refresh", { token: alice.token });
    assert.equal(ack.success, true);
    assert.ok(Date.parse(ack.expires_at) > Date.now() + 3600_000);
    const wrong = await refreshed.request("auth_refresh", { token: bob.token });
    assert.equal(wrong.error.code, "invalid_token");
    // Past the first token's expiry the socket still works.
    await new Promise((r) => setTimeout(r, 3_500));
    const sent = await refreshed.request("send_message", { to_user_id: bob.id, content: "still here" });
    assert.ok(Number.isInteger(sent.message_id), JSON.stringify(sent));
    assert.equal(refreshed.socket.connected, true);
    await refreshed.close();
  });

  test("with JWT_ISSUER and JWT_AUDIENCE set, only tokens naming them are accepted", async () => {
    const strict = await startServer({ env: { JWT_ISSUER: "realtime-chat", JWT_AUDIENCE: "tests" } });
    try {
      const alice = await strict.register("alice"); // tokens it issues carry both
      assert.equal((await strict.http("GET", "/api/me", { token: alice.token })).status, 200);
      const bare = strict.token({ sub: String(alice.id), exp: now() + 600 });
      const res = await strict.http("GET", "/api/me", { token: bare });
      assert.equal(res.status, 401);
      assert.equal(res.body.error, "token issuer or audience not accepted");
      const right = strict.token({ sub: String(alice.id), exp: now() + 600, iss: "realtime-chat", aud: "tests" });
      assert.equal((await strict.http("GET", "/api/me", { token: right })).status, 200);
    } finally {
      strict.stop();
    }
  });
});

describe("the generated secret file", () => {
  /** Runs `serve` on the embedded default in `dir` with no JWT_SECRET; it must refuse to start. */
  function serveIn(dir) {
    return spawnSync(serverBinary, ["serve"], {
      cwd: dir,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, RUST_LOG: "error", PORT: "0" },
      encoding: "utf8",
      timeout: 30_000,
    });
  }

  test("a secret file others can read, or a link in its place, stops start-up with a clear message", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "rc-secret-"));
    const file = path.join(dir, "realtime-chat.db.jwt-secret");
    try {
      await writeFile(file, "s".repeat(64), { mode: 0o644 });
      await chmod(file, 0o644);
      const open = serveIn(dir);
      assert.notEqual(open.status, 0);
      assert.match(open.stderr, /JWT_SECRET: unset, and .*jwt-secret: has permissions 644; it must be readable by its owner only/);

      await rm(file);
      await writeFile(path.join(dir, "elsewhere"), "s".repeat(64), { mode: 0o600 });
      await symlink(path.join(dir, "elsewhere"), file);
      const linked = serveIn(dir);
      assert.notEqual(linked.status, 0);
      assert.match(linked.stderr, /is a symbolic link, which is never followed/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("ending tokens", () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(() => server?.stop());

  async function login(user, password = user.password) {
    const res = await server.http("POST", "/api/auth/login", { json: { email: user.email, password } });
    return res;
  }

  test("logout ends that token and its sockets, not the user's other tokens", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const phone = { ...alice, token: (await login(alice)).body.token };
    const laptop = { ...alice, token: (await login(alice)).body.token };
    const phoneSocket = await connect(server, phone);
    const laptopSocket = await connect(server, laptop);
    const gone = new Promise((resolve) => phoneSocket.socket.once("disconnect", resolve));

    const out = await server.http("POST", "/api/auth/logout", { token: phone.token });
    assert.deepEqual(out.body, { success: true });
    assert.deepEqual(await phoneSocket.expect("error"), { code: "token_revoked", message: "token revoked: log in again" });
    assert.equal(await gone, "io server disconnect");
    const me = await server.http("GET", "/api/me", { token: phone.token });
    assert.deepEqual([me.status, me.body.error], [401, "token revoked"]);
    assert.equal((await open(server, { auth: { token: phone.token } }).refusal()).message, "token revoked");

    assert.equal((await server.http("GET", "/api/me", { token: laptop.token })).status, 200);
    const sent = await laptopSocket.request("send_message", { to_user_id: bob.id, content: "laptop still on" });
    assert.ok(Number.isInteger(sent.message_id), JSON.stringify(sent));
    await laptopSocket.close();
  });

  test("logout everywhere and a password change end every token and socket", async () => {
    const alice = await server.register("alice");
    const other = { ...alice, token: (await login(alice)).body.token };
    const socket = await connect(server, other);
    const gone = new Promise((resolve) => socket.socket.once("disconnect", resolve));
    assert.equal((await server.http("POST", "/api/auth/logout-all", { token: alice.token })).status, 200);
    assert.equal((await socket.expect("error")).code, "token_revoked");
    await gone;
    for (const token of [alice.token, other.token]) {
      assert.equal((await server.http("GET", "/api/me", { token })).status, 401);
    }

    const fresh = { ...alice, token: (await login(alice)).body.token };
    const freshSocket = await connect(server, fresh);
    const freshGone = new Promise((resolve) => freshSocket.socket.once("disconnect", resolve));
    const wrong = await server.http("POST", "/api/auth/password", {
      token: fresh.token,
      json: { current_password: "not my password", new_password: "a new password" },
    });
    assert.equal(wrong.status, 401);
    const changed = await server.http("POST", "/api/auth/password", {
      token: fresh.token,
      json: { current_password: alice.password, new_password: "a new password" },
    });
    assert.equal(changed.status, 200, changed.text);
    assert.equal(typeof changed.body.token, "string");
    await freshGone;
    assert.equal((await server.http("GET", "/api/me", { token: fresh.token })).status, 401);
    assert.equal((await server.http("GET", "/api/me", { token: changed.body.token })).status, 200);
    assert.equal((await login(alice)).status, 401, "the old password no longer works");
    assert.equal((await login(alice, "a new password")).status, 200);
  });
});

describe("privacy", () => {
  let server;
  before(async () => {
    server = await startServer({ env: { PRESENCE_GRACE_MS: "200" } });
  });
  after(() => server?.stop());

  test("a stranger's message does not reveal the recipient's presence; the recipient's reply does", async () => {
    const [mallory, bob] = await server.registerMany("mallory", "bob");
    const m = await connect(server, mallory);
    const hi = await m.request("send_message", { to_user_id: bob.id, content: "hi, stranger here" });
    const b = await connect(server, bob);
    await b.expect("new_message");
    assert.deepEqual(await presenceOf(server, mallory, [bob.id]), [], "bob has not written to mallory");
    const [item] = (await conversationsOf(server, mallory)).filter((c) => c.conversation_id === hi.conversation_id);
    assert.deepEqual([item.online, item.last_seen], [null, null]);

    await b.request("send_message", { to_user_id: mallory.id, content: "who is this?" });
    await m.expect("new_message");
    await m.expectNone("user_online", { withinMs: 0 }); // bob came online before he wrote
    const [seen] = await presenceOf(server, mallory, [bob.id]);
    assert.deepEqual([seen?.user_id, seen?.online], [bob.id, true]);
    await b.close();
    assert.equal((await m.expect("user_offline", { timeoutMs: 5_000 })).user_id, bob.id);
    await m.close();
  });

  test("a block refuses direct messages both ways and hides presence, until lifted", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const a = await connect(server, alice);
    const b = await connect(server, bob);
    await a.request("send_message", { to_user_id: bob.id, content: "hi" });
    const reply = await b.request("send_message", { to_user_id: alice.id, content: "hi back" });
    assert.equal((await presenceOf(server, alice, [bob.id])).length, 1);

    const blocked = await server.http("POST", "/api/blocks", { token: bob.token, json: { user_id: alice.id } });
    assert.equal(blocked.status, 200, blocked.text);
    assert.deepEqual(blocked.body.users.map((u) => u.user_id), [alice.id]);
    for (const [socket, ack] of [
      [a, await a.request("send_message", { to_user_id: bob.id, content: "are you there?" })],
      [b, await b.request("send_message", { conversation_id: reply.conversation_id, content: "by conversation id" })],
    ]) {
      assert.equal(ack.error?.code, "blocked", JSON.stringify(ack));
      assert.equal((await socket.expect("error")).code, "blocked");
    }
    assert.deepEqual(await presenceOf(server, alice, [bob.id]), []);
    assert.deepEqual(await presenceOf(server, bob, [alice.id]), []);

    for (const [body, status] of [[{ user_id: bob.id }, 422], [{ user_id: 987654321 }, 404]]) {
      const res = await server.http("POST", "/api/blocks", { token: bob.token, json: body });
      assert.equal(res.status, status, res.text);
    }
    const lifted = await server.http("DELETE", `/api/blocks/${alice.id}`, { token: bob.token });
    assert.deepEqual(lifted.body, { users: [] });
    const again = await a.request("send_message", { to_user_id: bob.id, content: "better now?" });
    assert.ok(Number.isInteger(again.message_id), JSON.stringify(again));
    const received = await b.expectMany("new_message", 2);
    assert.deepEqual(received.map((m) => m.content), ["hi", "better now?"]);
    await closeAll(a, b);
  });
});
