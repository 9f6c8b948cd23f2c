// The REST API: health, registration, login, /api/me, the conversation list,
// message history with pagination, marking read, and the error rules.
// Messages are sent over Socket.IO, as REST has no send endpoint.

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, nowSeconds, unsignedToken, ISO_UTC } from "../lib/harness.js";
import { connect, closeAll, sleep } from "../lib/client.js";

let server;
before(async () => {
  // Sends bursts of hundreds from one user; the send rate limit has its own tests
  // (hardening.test.js).
  server = await startServer({ env: { RATE_SENDS_PER_SEC: "0" } });
});
after(() => server?.stop());

/** Sends `contents` from one user to another over a socket, waiting for each message_sent. */
async function sendMessages(from, to, ...contents) {
  const socket = await connect(server, from);
  const sent = [];
  for (const content of contents) {
    socket.emit("send_message", { to_user_id: to.id, content });
    sent.push(await socket.expect("message_sent"));
  }
  await socket.close();
  return sent;
}

function assertUserShape(user) {
  assert.deepEqual(Object.keys(user).sort(), ["created_at", "display_name", "email", "id"]);
  assert.equal(typeof user.id, "number");
  assert.match(user.created_at, ISO_UTC);
}

function assertErrorBody(res, status) {
  assert.equal(res.status, status, res.text);
  assert.equal(typeof res.body?.error, "string", `an { error } body: ${res.text}`);
  assert.ok(res.body.error.length > 0);
}

test("GET /health says the server and database are up", async () => {
  const res = await server.http("GET", "/health");
  assert.equal(res.status, 200);
  const { node, ...rest } = res.body;
  assert.deepEqual(rest, { status: "ok", database: "connected", redis: "unused" });
  assert.match(node, /^\S+$/, "the node names itself");
});

describe("POST /api/auth/register", () => {
  test("creates the user and returns 201 with a token that works", async () => {
    const res = await server.http("POST", "/api/auth/register", {
      json: { email: "reg-alice@example.com", password: "correct horse", display_name: "Alice" },
    });
    assert.equal(res.status, 201, res.text);
    assertUserShape(res.body.user);
    assert.equal(res.body.user.email, "reg-alice@example.com");
    assert.equal(res.body.user.display_name, "Alice");
    assert.equal(typeof res.body.token, "string");

    const me = await server.http("GET", "/api/me", { token: res.body.token });
    assert.equal(me.status, 200);
    assert.deepEqual(me.body, res.body.user);
  });

  test("display_name defaults to the e-mail's local part", async () => {
    const res = await server.http("POST", "/api/auth/register", {
      json: { email: "reg-nameless@example.com", password: "password1" },
    });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.user.display_name, "reg-nameless");
  });

  test("the e-mail is stored lower-cased, so a differently-cased duplicate is 409", async () => {
    const first = await server.http("POST", "/api/auth/register", {
      json: { email: "Reg-Foo@Example.COM", password: "password1" },
    });
    assert.equal(first.status, 201, first.text);
    assert.equal(first.body.user.email, "reg-foo@example.com");

    const again = await server.http("POST", "/api/auth/register", {
      json: { email: "reg-foo@example.com", password: "password2" },
    });
    assertErrorBody(again, 409);
  });

  test("a taken e-mail is 409", async () => {
    const json = { email: "reg-taken@example.com", password: "password1" };
    assert.equal((await server.http("POST", "/api/auth/register", { json })).status, 201);
    assertErrorBody(await server.http("POST", "/api/auth/register", { json }), 409);
  });

  test("an invalid e-mail is 422", async () => {
    for (const email of ["not-an-email", "", "two@@example.com"]) {
      const res = await server.http("POST", "/api/auth/register", {
        json: { email, password: "password1" },
      });
      assertErrorBody(res, 422);
    }
  });

  test("a password under 8 characters is 422; exactly 8 is accepted", async () => {
    const short = await server.http("POST", "/api/auth/register", {
      json: { email: "reg-short@example.com", password: "1234567" },
    });
    assertErrorBody(short, 422);
    const eight = await server.http("POST", "/api/auth/register", {
      json: { email: "reg-short@example.com", password: "12345678" },
    });
    assert.equal(eight.status, 201, eight.text);
  });

  test("a body that is not JSON is 400", async () => {
    const res = await server.http("POST", "/api/auth/register", {
      body: "email=a@example.com&password=password1",
      headers: { "content-type": "application/json" },
    });
    assertErrorBody(res, 400);
  });

  test("a body missing fields is 400", async () => {
    const noPassword = await server.http("POST", "/api/auth/register", {
      json: { email: "reg-nopassword@example.com" },
    });
    assertErrorBody(noPassword, 400);
    const noEmail = await server.http("POST", "/api/auth/register", {
      json: { password: "password1" },
    });
    assertErrorBody(noEmail, 400);
  });
});

describe("POST /api/auth/login", () => {
  let alice;
  before(async () => {
    alice = await server.register("alice");
  });

  test("the right password returns 200 with the user and a working token", async () => {
    const res = await server.http("POST", "/api/auth/login", {
      json: { email: alice.email, password: alice.password },
    });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body.user, {
      id: alice.id,
      email: alice.email,
      display_name: alice.display_name,
      created_at: alice.created_at,
    });
    const me = await server.http("GET", "/api/me", { token: res.body.token });
    assert.equal(me.body.id, alice.id);
  });

  test("unknown e-mail and wrong password get the same 401 body", async () => {
    const wrongPassword = await server.http("POST", "/api/auth/login", {
      json: { email: alice.email, password: "not-her-password" },
    });
    const unknownEmail = await server.http("POST", "/api/auth/login", {
      json: { email: "nobody-at-all@example.com", password: alice.password },
    });
    assert.equal(wrongPassword.status, 401);
    assert.equal(unknownEmail.status, 401);
    assert.deepEqual(wrongPassword.body, { error: "invalid email or password" });
    assert.deepEqual(unknownEmail.body, wrongPassword.body);
  });
});

describe("GET /api/me", () => {
  let alice;
  before(async () => {
    alice = await server.register("alice");
  });

  test("returns the caller's user", async () => {
    const res = await server.http("GET", "/api/me", { token: alice.token });
    assert.equal(res.status, 200);
    assertUserShape(res.body);
    assert.deepEqual(res.body, {
      id: alice.id,
      email: alice.email,
      display_name: alice.display_name,
      created_at: alice.created_at,
    });
  });

  test("a seed-style user_id token works too", async () => {
    const res = await server.http("GET", "/api/me", { token: server.token({ user_id: alice.id }) });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.id, alice.id);
  });

  test("no token is 401", async () => {
    assertErrorBody(await server.http("GET", "/api/me"), 401);
  });

  test("malformed, forged, expired and alg:none tokens are 401", async () => {
    const sub = String(alice.id);
    const tokens = {
      malformed: "not-a-jwt",
      forged: server.token({ sub }, { secret: "z".repeat(40) }),
      expired: server.token({ sub, exp: nowSeconds() - 3600 }),
      unsigned: unsignedToken({ sub, exp: nowSeconds() + 3600 }),
      "unknown user": server.token({ sub: "987654321" }),
    };
    for (const [kind, token] of Object.entries(tokens)) {
      const res = await server.http("GET", "/api/me", { token });
      assert.equal(res.status, 401, `${kind} token: ${res.text}`);
      assert.equal(typeof res.body?.error, "string", `${kind} token gives an { error } body`);
    }
  });
});

describe("GET /api/conversations", () => {
  test("a new user has no conversations", async () => {
    const alice = await server.register("alice");
    const res = await server.http("GET", "/api/conversations", { token: alice.token });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { conversations: [] });
  });

  test("no token is 401", async () => {
    assertErrorBody(await server.http("GET", "/api/conversations"), 401);
  });

  test("lists conversations most recently updated first, with last message and unread count", async () => {
    const [alice, bob, carol] = await server.registerMany("alice", "bob", "carol");
    const [toBob] = await sendMessages(alice, bob, "hi bob");
    await sleep(20);
    const [fromCarol] = await sendMessages(carol, alice, "hi alice, it's carol", "you there?");
    await sleep(20);
    await sendMessages(alice, bob, "bob, again");

    const res = await server.http("GET", "/api/conversations", { token: alice.token });
    assert.equal(res.status, 200);
    const [first, second, ...rest] = res.body.conversations;
    assert.equal(rest.length, 0);

    assert.equal(first.conversation_id, toBob.conversation_id);
    assert.equal(first.other_user_id, bob.id);
    assert.equal(first.kind, "direct");
    assert.equal(first.last_message.content, "bob, again");
    assert.equal(first.last_message.sender_id, alice.id);
    assert.match(first.last_message.sent_at, ISO_UTC);
    assert.equal(first.unread_count, 0, "alice's own messages are not unread for her");
    assert.match(first.updated_at, ISO_UTC);

    assert.equal(second.conversation_id, fromCarol.conversation_id);
    assert.equal(second.other_user_id, carol.id);
    assert.equal(second.last_message.content, "you there?");
    assert.equal(second.last_message.sender_id, carol.id);
    assert.equal(second.unread_count, 2);
    assert.ok(Date.parse(first.updated_at) >= Date.parse(second.updated_at));

    const bobView = await server.http("GET", "/api/conversations", { token: bob.token });
    assert.equal(bobView.body.conversations.length, 1);
    assert.equal(bobView.body.conversations[0].other_user_id, alice.id);
    assert.equal(bobView.body.conversations[0].unread_count, 2);
  });

  test("a new message moves an older conversation back to the top", async () => {
    const [alice, bob, carol] = await server.registerMany("alice", "bob", "carol");
    const [withBob] = await sendMessages(bob, alice, "first");
    await sleep(20);
    const [withCarol] = await sendMessages(carol, alice, "second");
    const order = async () =>
      (await server.http("GET", "/api/conversations", { token: alice.token })).body.conversations.map(
        (c) => c.conversation_id,
      );
    assert.deepEqual(await order(), [withCarol.conversation_id, withBob.conversation_id]);
    await sleep(20);
    await sendMessages(bob, alice, "third");
    assert.deepEqual(await order(), [withBob.conversation_id, withCarol.conversation_id]);
  });

  test("after a burst from both sides the preview is the conversation's newest message", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const [a, b] = await Promise.all([connect(server, alice), connect(server, bob)]);
    const BURST = 40;
    for (let i = 0; i < BURST; i++) {
      a.emit("send_message", { to_user_id: bob.id, content: `from alice ${i}` });
      b.emit("send_message", { to_user_id: alice.id, content: `from bob ${i}` });
    }
    const [sentA, sentB] = await Promise.all([
      a.expectMany("message_sent", BURST, { timeoutMs: 30_000 }),
      b.expectMany("message_sent", BURST, { timeoutMs: 30_000 }),
    ]);
    const conversationId = sentA[0].conversation_id;
    const newest = (
      await server.http("GET", `/api/messages?conversation_id=${conversationId}&limit=1`, { token: alice.token })
    ).body.messages[0];
    assert.ok([...sentA, ...sentB].some((m) => m.message_id === newest.id));
    for (const user of [alice, bob]) {
      const [only] = (await server.http("GET", "/api/conversations", { token: user.token })).body.conversations;
      assert.deepEqual(only.last_message, {
        content: newest.content,
        sent_at: newest.sent_at,
        sender_id: newest.sender_id,
      });
    }
  });
});

describe("GET /api/messages", () => {
  const COUNT = 105;
  let alice;
  let bob;
  let carol;
  let conversationId;
  before(async () => {
    [alice, bob, carol] = await server.registerMany("alice", "bob", "carol");
    const contents = Array.from({ length: COUNT }, (_, i) => `message ${i + 1}`);
    const socket = await connect(server, alice);
    for (const content of contents) socket.emit("send_message", { to_user_id: bob.id, content });
    const sent = await socket.expectMany("message_sent", COUNT, { timeoutMs: 30_000 });
    conversationId = sent[0].conversation_id;
    await socket.close();
  });

  const page = (query, user = alice) =>
    server.http("GET", `/api/messages?conversation_id=${conversationId}${query}`, {
      token: user.token,
    });

  test("newest first, 50 by default, with total and has_more", async () => {
    const res = await page("");
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.total, COUNT);
    assert.equal(res.body.has_more, true);
    assert.equal(res.body.messages.length, 50);
    assert.deepEqual(
      res.body.messages.map((m) => m.seq),
      Array.from({ length: 50 }, (_, i) => COUNT - i),
    );
    const newest = res.body.messages[0];
    for (const field of ["id", "conversation_id", "sender_id", "content", "sent_at", "delivered_at", "read_at", "seq"]) {
      assert.ok(field in newest, `history messages carry ${field}`);
    }
    assert.equal(newest.content, `message ${COUNT}`);
    assert.equal(newest.conversation_id, conversationId);
    assert.equal(newest.sender_id, alice.id);
    assert.match(newest.sent_at, ISO_UTC);
    assert.equal(newest.delivered_at, null, "bob never connected");
    assert.equal(newest.read_at, null);
  });

  test("the recipient sees the same history", async () => {
    const mine = await page("&limit=10");
    const theirs = await page("&limit=10", bob);
    assert.equal(theirs.status, 200);
    assert.deepEqual(theirs.body, mine.body);
  });

  test("limit and offset page through the history", async () => {
    const first = await page("&limit=2&offset=0");
    assert.equal(first.status, 200, first.text);
    assert.deepEqual(first.body.messages.map((m) => m.content), [`message ${COUNT}`, `message ${COUNT - 1}`]);
    assert.equal(first.body.has_more, true);
    assert.equal(first.body.total, COUNT);

    const second = await page("&limit=2&offset=2");
    assert.deepEqual(second.body.messages.map((m) => m.seq), [COUNT - 2, COUNT - 3]);

    const last = await page(`&limit=10&offset=${COUNT - 3}`);
    assert.deepEqual(last.body.messages.map((m) => m.seq), [3, 2, 1]);
    assert.equal(last.body.has_more, false);

    const exact = await page(`&limit=5&offset=${COUNT - 5}`);
    assert.equal(exact.body.messages.length, 5);
    assert.equal(exact.body.has_more, false, "nothing beyond the last message");

    const beyond = await page(`&offset=${COUNT + 10}`);
    assert.equal(beyond.status, 200);
    assert.deepEqual(beyond.body.messages, []);
    assert.equal(beyond.body.has_more, false);
    assert.equal(beyond.body.total, COUNT);
  });

  test("limit above 100 is capped to 100", async () => {
    const res = await page("&limit=1000");
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.messages.length, 100);
    assert.equal(res.body.has_more, true);
    const rest = await page("&limit=100&offset=100");
    assert.equal(rest.body.messages.length, COUNT - 100);
    assert.equal(rest.body.has_more, false);
  });

  test("missing or invalid parameters are 400", async () => {
    const bad = [
      "/api/messages",
      "/api/messages?limit=10",
      "/api/messages?conversation_id=abc",
      `/api/messages?conversation_id=${conversationId}&limit=abc`,
      `/api/messages?conversation_id=${conversationId}&offset=abc`,
      `/api/messages?conversation_id=${conversationId}&limit=0`,
      `/api/messages?conversation_id=${conversationId}&limit=-5`,
      `/api/messages?conversation_id=${conversationId}&offset=-1`,
    ];
    for (const url of bad) {
      const res = await server.http("GET", url, { token: alice.token });
      assert.equal(res.status, 400, `${url}: ${res.text}`);
      assert.equal(typeof res.body?.error, "string", `${url} gives an { error } body`);
    }
  });

  test("no token is 401", async () => {
    const res = await server.http("GET", `/api/messages?conversation_id=${conversationId}`);
    assertErrorBody(res, 401);
  });

  test("a non-member and a nonexistent conversation get the identical 404", async () => {
    const notMine = await page("", carol);
    const missing = await server.http("GET", "/api/messages?conversation_id=987654321", {
      token: carol.token,
    });
    assertErrorBody(notMine, 404);
    assertErrorBody(missing, 404);
    assert.deepEqual(notMine.body, missing.body);
  });
});

describe("POST /api/messages/read", () => {
  test("marks the other party's messages read, once; unread_count drops to 0", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const [first] = await sendMessages(alice, bob, "one", "two", "three");
    await sendMessages(bob, alice, "bob's own");
    const conversationId = first.conversation_id;
    const unread = async (user) =>
      (await server.http("GET", "/api/conversations", { token: user.token })).body.conversations[0]
        .unread_count;
    assert.equal(await unread(bob), 3);

    const read = () =>
      server.http("POST", `/api/messages/read?conversation_id=${conversationId}`, { token: bob.token });
    const res = await read();
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body, { success: true, messages_marked: 3 });
    assert.deepEqual((await read()).body, { success: true, messages_marked: 0 });

    assert.equal(await unread(bob), 0);
    assert.equal(await unread(alice), 1, "bob reading does not read alice's inbox");

    const history = await server.http("GET", `/api/messages?conversation_id=${conversationId}`, {
      token: alice.token,
    });
    for (const message of history.body.messages) {
      if (message.sender_id === alice.id) {
        assert.match(message.read_at, ISO_UTC, `"${message.content}" is read`);
      } else {
        assert.equal(message.read_at, null, `"${message.content}" is not read by alice yet`);
      }
    }
  });

  test("messages arriving after a read are unread again", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const [first] = await sendMessages(alice, bob, "one");
    const url = `/api/messages/read?conversation_id=${first.conversation_id}`;
    assert.equal((await server.http("POST", url, { token: bob.token })).body.messages_marked, 1);
    await sendMessages(alice, bob, "two", "three");
    const list = await server.http("GET", "/api/conversations", { token: bob.token });
    assert.equal(list.body.conversations[0].unread_count, 2);
    assert.equal((await server.http("POST", url, { token: bob.token })).body.messages_marked, 2);
  });

  test("the same 400, 401 and 404 rules apply", async () => {
    const [alice, bob, carol] = await server.registerMany("alice", "bob", "carol");
    const [sent] = await sendMessages(alice, bob, "private");
    const id = sent.conversation_id;

    for (const url of ["/api/messages/read", "/api/messages/read?conversation_id=abc"]) {
      assertErrorBody(await server.http("POST", url, { token: bob.token }), 400);
    }
    assertErrorBody(await server.http("POST", `/api/messages/read?conversation_id=${id}`), 401);

    const notMine = await server.http("POST", `/api/messages/read?conversation_id=${id}`, {
      token: carol.token,
    });
    const missing = await server.http("POST", "/api/messages/read?conversation_id=987654321", {
      token: carol.token,
    });
    assertErrorBody(notMine, 404);
    assertErrorBody(missing, 404);
    assert.deepEqual(notMine.body, missing.body);

    // Carol's attempt marked nothing: bob still has it unread.
    const bobList = await server.http("GET", "/api/conversations", { token: bob.token });
    assert.equal(bobList.body.conversations[0].unread_count, 1);
  });
});

test("error responses never carry SQL or panic text", async () => {
  const alice = await server.register("alice");
  const requests = [
    ["GET", "/api/messages?conversation_id=99999999999999999999999"],
    ["GET", "/api/messages?conversation_id=1%27%20OR%201=1--"],
    ["GET", "/api/messages?conversation_id=1&limit=99999999999999999999999"],
    ["GET", "/api/messages?conversation_id=1&offset=99999999999999999999999"],
    ["GET", "/api/messages?conversation_id=-1"],
    ["POST", "/api/messages/read?conversation_id=99999999999999999999999"],
    ["POST", "/api/messages/read?conversation_id=-1"],
  ];
  const leaks = /select |insert |update |delete from|sqlx|sqlite|postgres|syntax error|constraint|panicked|unwrap|RUST_BACKTRACE/i;
  for (const [method, url] of requests) {
    const res = await server.http(method, url, { token: alice.token });
    assert.ok([400, 404].includes(res.status), `${method} ${url}: ${res.status} ${res.text}`);
    assert.equal(typeof res.body?.error, "string", `${method} ${url} gives an { error } body`);
    assert.doesNotMatch(res.text, leaks, `${method} ${url}`);
  }
  for (const json of [{ email: "x".repeat(5000) + "@example.com", password: "password1" }, { email: 5, password: [] }]) {
    const res = await server.http("POST", "/api/auth/register", { json });
    assert.ok(res.status >= 400 && res.status < 500, `register ${res.status} ${res.text}`);
    assert.doesNotMatch(res.text, leaks);
  }
});

test("an oversized body is refused with 413 and a non-JSON body with 415, both as { error }", async () => {
  const big = await server.http("POST", "/api/auth/register", {
    json: { email: "big@example.com", password: "p".repeat(100 * 1024) },
  });
  assertErrorBody(big, 413);
  assert.equal((await server.http("POST", "/api/auth/login", { json: { email: "big@example.com", password: "password1" } })).status, 401,
    "nothing was registered");

  const form = await server.http("POST", "/api/auth/login", {
    body: "email=a@example.com&password=password1",
    headers: { "content-type": "application/x-www-form-urlencoded" },
  });
  assertErrorBody(form, 415);
});
