// What makes sending trustworthy on a flaky network: acknowledged sends
// (emitWithAck), exactly-once sends with client_msg_id (retries and concurrent
// duplicates), gap-free resync by seq (`sync`), and REST cursor pagination
// (after_seq / before_seq).

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { startServer, ISO_UTC } from "../lib/harness.js";
import { connect, closeAll } from "../lib/client.js";
import { history } from "../lib/api.js";

let server;
before(async () => {
  // Sends bursts of hundreds from one user; the send rate limit has its own tests
  // (hardening.test.js).
  server = await startServer({ env: { RATE_SENDS_PER_SEC: "0" } });
});
after(() => server?.stop());

const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Sends each text from `socket` to `to`, one after another; resolves to the acks. */
async function sendAll(socket, to, texts) {
  const acks = [];
  for (const content of texts) {
    const ack = await socket.request("send_message", { to_user_id: to.id, content });
    assert.equal(ack.status, "sent", `${content}: ${JSON.stringify(ack)}`);
    acks.push(ack);
  }
  return acks;
}

/** The whole conversation, oldest first, as REST history reports it. */
async function fullHistory(user, conversationId) {
  const body = await history(server, user, conversationId, "&limit=100");
  assert.equal(body.has_more, false, "test conversations fit one page");
  return [...body.messages].reverse();
}

/** `sync` as `socket`; asserts the ack has the documented shape. */
async function sync(socket, since) {
  const answer = await socket.request("sync", { since });
  assert.ok(Array.isArray(answer?.messages), `sync answer: ${JSON.stringify(answer)}`);
  assert.equal(typeof answer.has_more, "boolean");
  for (const m of answer.messages) {
    assert.deepEqual(
      Object.keys(m).sort(),
      ["content", "conversation_id", "delivered_at", "from_user_id", "message_id", "read_at", "sent_at", "seq"],
    );
    assert.match(m.sent_at, ISO_UTC);
  }
  return answer;
}

/** A history row and a new_message / sync item, compared on what they share. */
function sameMessage(item, row, what) {
  assert.deepEqual(
    {
      message_id: item.message_id,
      conversation_id: item.conversation_id,
      from_user_id: item.from_user_id,
      content: item.content,
      seq: item.seq,
      sent_at: Date.parse(item.sent_at),
    },
    {
      message_id: row.id,
      conversation_id: row.conversation_id,
      from_user_id: row.sender_id,
      content: row.content,
      seq: row.seq,
      sent_at: Date.parse(row.sent_at),
    },
    what,
  );
}

describe("acknowledged sends", () => {
  test("the ack answers the message_sent payload, and message_sent is still emitted", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const aliceSocket = await connect(server, alice);
    const bobSocket = await connect(server, bob);

    const ack = await aliceSocket.request("send_message", { to_user_id: bob.id, content: "acked" });
    assert.deepEqual(Object.keys(ack).sort(), ["conversation_id", "message_id", "sent_at", "seq", "status"]);
    assert.equal(ack.status, "sent");
    assert.equal(ack.seq, 1);
    assert.match(ack.sent_at, ISO_UTC);
    assert.deepEqual(await aliceSocket.expect("message_sent"), ack);

    const received = await bobSocket.expect("new_message");
    assert.equal(received.message_id, ack.message_id);
    assert.equal(received.seq, ack.seq);
    assert.equal(received.conversation_id, ack.conversation_id);
    await closeAll(aliceSocket, bobSocket);
  });

  test("concurrent acknowledged sends from one socket: each ack names its own message, in send order", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const aliceSocket = await connect(server, alice);
    const texts = range(1, 20).map((i) => `burst ${i}`);
    const acks = await Promise.all(
      texts.map((content) => aliceSocket.request("send_message", { to_user_id: bob.id, content })),
    );
    assert.deepEqual(acks.map((a) => a.seq), range(1, 20), "stored in the order sent");
    const rows = await fullHistory(alice, acks[0].conversation_id);
    assert.deepEqual(rows.map((r) => [r.id, r.content]), acks.map((a, i) => [a.message_id, texts[i]]));
    await aliceSocket.close();
  });

  const refusals = [
    ["empty content", (bob) => ({ to_user_id: bob.id, content: "   " }), "empty_content"],
    ["unknown recipient", () => ({ to_user_id: 987654321, content: "hello?" }), "unknown_recipient"],
    ["sending to yourself", (bob, alice) => ({ to_user_id: alice.id, content: "me" }), "invalid_recipient"],
    ["content missing", (bob) => ({ to_user_id: bob.id }), "invalid_payload"],
  ];
  test("a refused send answers { error: { code, message } } and also emits error", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const aliceSocket = await connect(server, alice);
    for (const [what, payload, code] of refusals) {
      const answer = await aliceSocket.request("send_message", payload(bob, alice));
      assert.deepEqual(Object.keys(answer ?? {}), ["error"], `${what}: ${JSON.stringify(answer)}`);
      assert.equal(answer.error.code, code, what);
      assert.equal(typeof answer.error.message, "string");
      assert.ok(answer.error.message.length > 0, what);
      const event = await aliceSocket.expect("error");
      assert.equal(event.code, code, `${what}: error event`);
    }
    await aliceSocket.expectNone("message_sent", { withinMs: 200 });
    await aliceSocket.close();
  });
});

describe("client_msg_id", () => {
  test("a retry with the same client_msg_id answers the original message; nothing is stored or delivered twice", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    let aliceSocket = await connect(server, alice);
    const bobSocket = await connect(server, bob);
    const payload = { to_user_id: bob.id, content: "exactly once", client_msg_id: randomUUID() };

    const first = await aliceSocket.request("send_message", payload);
    assert.equal(first.status, "sent");
    assert.equal((await bobSocket.expect("new_message")).message_id, first.message_id);

    // The same socket retries (the ack was "lost"), then a new socket after a reconnect.
    assert.deepEqual(await aliceSocket.request("send_message", payload), first);
    await aliceSocket.close();
    aliceSocket = await connect(server, alice, { name: "alice (reconnected)" });
    assert.deepEqual(await aliceSocket.request("send_message", payload), first);

    await bobSocket.expectNone("new_message", { withinMs: 300 });
    const rows = await fullHistory(bob, first.conversation_id);
    assert.deepEqual(rows.map((r) => r.id), [first.message_id]);

    // Retries used up no seq: the next message is 2.
    const next = await aliceSocket.request("send_message", { to_user_id: bob.id, content: "next" });
    assert.equal(next.seq, 2);
    assert.equal((await bobSocket.expect("new_message")).seq, 2);
    await closeAll(aliceSocket, bobSocket);
  });

  test("concurrent duplicates (10 on one socket, 5 on another device) store exactly one message", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    // No conversation exists yet: the duplicates also race to create it.
    const alicePhone = await connect(server, alice, { name: "alice phone" });
    const aliceLaptop = await connect(server, alice, { name: "alice laptop" });
    const bobSocket = await connect(server, bob);
    const payload = { to_user_id: bob.id, content: "sent in a panic", client_msg_id: randomUUID() };

    const acks = await Promise.all([
      ...range(1, 10).map(() => alicePhone.request("send_message", payload)),
      ...range(1, 5).map(() => aliceLaptop.request("send_message", payload)),
    ]);
    for (const ack of acks) {
      assert.equal(ack.status, "sent", JSON.stringify(ack));
      assert.deepEqual(ack, acks[0], "every duplicate answers the same message");
    }
    assert.equal(acks[0].seq, 1);

    assert.equal((await bobSocket.expect("new_message")).message_id, acks[0].message_id);
    await bobSocket.expectNone("new_message", { withinMs: 500 });
    const rows = await fullHistory(bob, acks[0].conversation_id);
    assert.equal(rows.length, 1, `one stored message, got ${rows.length}`);
    assert.deepEqual(alicePhone.collect("error"), []);
    assert.deepEqual(aliceLaptop.collect("error"), []);
    await closeAll(alicePhone, aliceLaptop, bobSocket);
  });

  test("concurrent duplicates to an offline recipient are queued once", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const aliceSocket = await connect(server, alice);
    const payload = { to_user_id: bob.id, content: "while you were away", client_msg_id: randomUUID() };
    const acks = await Promise.all(range(1, 10).map(() => aliceSocket.request("send_message", payload)));
    assert.equal(new Set(acks.map((a) => a.message_id)).size, 1, JSON.stringify(acks));

    const bobSocket = await connect(server, bob);
    assert.equal((await bobSocket.expect("new_message")).message_id, acks[0].message_id);
    await bobSocket.expectNone("new_message", { withinMs: 400 });
    await closeAll(aliceSocket, bobSocket);
  });

  test("the same client_msg_id from two different senders is two messages", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const aliceSocket = await connect(server, alice);
    const bobSocket = await connect(server, bob);
    const clientMsgId = randomUUID();

    const fromAlice = await aliceSocket.request("send_message", {
      to_user_id: bob.id,
      content: "from alice",
      client_msg_id: clientMsgId,
    });
    const fromBob = await bobSocket.request("send_message", {
      to_user_id: alice.id,
      content: "from bob",
      client_msg_id: clientMsgId,
    });
    assert.notEqual(fromBob.message_id, fromAlice.message_id);
    assert.deepEqual([fromAlice.seq, fromBob.seq], [1, 2]);
    assert.equal((await bobSocket.expect("new_message")).content, "from alice");
    assert.equal((await aliceSocket.expect("new_message")).content, "from bob");
    const rows = await fullHistory(alice, fromAlice.conversation_id);
    assert.deepEqual(rows.map((r) => r.content), ["from alice", "from bob"]);
    await closeAll(aliceSocket, bobSocket);
  });

  test("an invalid client_msg_id is refused with invalid_payload; 64 characters are accepted", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const aliceSocket = await connect(server, alice);
    const bobSocket = await connect(server, bob);
    for (const [what, clientMsgId] of [
      ["empty", ""],
      ["65 characters", "a".repeat(65)],
      ["with a space", "not ok"],
      ["a number", 42],
    ]) {
      const answer = await aliceSocket.request("send_message", {
        to_user_id: bob.id,
        content: `client_msg_id ${what}`,
        client_msg_id: clientMsgId,
      });
      assert.equal(answer?.error?.code, "invalid_payload", `${what}: ${JSON.stringify(answer)}`);
      assert.equal((await aliceSocket.expect("error")).code, "invalid_payload", what);
    }
    await bobSocket.expectNone("new_message", { withinMs: 200 });

    const longest = "k".repeat(64);
    const ok = await aliceSocket.request("send_message", {
      to_user_id: bob.id,
      content: "64 is fine",
      client_msg_id: longest,
    });
    assert.equal(ok.status, "sent", JSON.stringify(ok));
    assert.equal(ok.seq, 1, "none of the refused sends was stored");
    assert.equal((await bobSocket.expect("new_message")).content, "64 is fine");
    await closeAll(aliceSocket, bobSocket);
  });
});

describe("sync", () => {
  test("a device that was away while another device got the messages catches up by seq, gap-free", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const aliceSocket = await connect(server, alice);
    const bobPhone = await connect(server, bob, { name: "bob phone" });
    let bobLaptop = await connect(server, bob, { name: "bob laptop" });

    // The laptop's client keeps what it has seen, by seq.
    const known = new Map();
    const learn = (messages) => {
      for (const m of messages) {
        assert.ok(!known.has(m.seq) || known.get(m.seq).message_id === m.message_id, `seq ${m.seq} reused`);
        known.set(m.seq, m);
      }
    };

    const early = await sendAll(aliceSocket, bob, ["a1", "a2", "a3"]);
    const conversationId = early[0].conversation_id;
    learn(await bobLaptop.expectMany("new_message", 3));
    await bobPhone.expectMany("new_message", 3);
    const lastSeqBeforeDrop = Math.max(...known.keys());
    assert.equal(lastSeqBeforeDrop, 3);

    // The laptop drops; the conversation goes on (bob answers from his phone).
    await bobLaptop.close();
    await sendAll(aliceSocket, bob, ["a4", "a5"]);
    await sendAll(bobPhone, alice, ["b6 from the phone"]);
    await sendAll(aliceSocket, bob, ["a7"]);
    await bobPhone.expectMany("new_message", 3);

    bobLaptop = await connect(server, bob, { name: "bob laptop (back)" });
    learn(bobLaptop.collect("new_message")); // whatever reached it on connect, if anything

    const { messages, has_more } = await sync(bobLaptop, [
      { conversation_id: conversationId, after_seq: lastSeqBeforeDrop },
    ]);
    assert.equal(has_more, false);
    assert.deepEqual(messages.map((m) => m.seq), [4, 5, 6, 7], "exactly what came after seq 3, in order");
    assert.deepEqual(messages.map((m) => m.content), ["a4", "a5", "b6 from the phone", "a7"]);
    learn(messages);

    // Everything the laptop now has is the whole conversation: no gap, no duplicate.
    const rows = await fullHistory(bob, conversationId);
    assert.deepEqual([...known.keys()].sort((a, b) => a - b), range(1, rows.length));
    rows.forEach((row) => sameMessage(known.get(row.seq), row, `seq ${row.seq}`));

    // Nothing after the newest seq; and live messages continue the numbering.
    assert.deepEqual((await sync(bobLaptop, [{ conversation_id: conversationId, after_seq: 7 }])).messages, []);
    await sendAll(aliceSocket, bob, ["a8"]);
    const live = await bobLaptop.expect("new_message");
    assert.equal(live.seq, 8);
    assert.equal(live.content, "a8");
    await closeAll(aliceSocket, bobPhone, bobLaptop);
  });

  test("a recipient offline mid-conversation gets the queue on reconnect; sync agrees with it", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const aliceSocket = await connect(server, alice);
    let bobSocket = await connect(server, bob);
    const seen = [];

    const early = await sendAll(aliceSocket, bob, ["m1", "m2", "m3"]);
    const conversationId = early[0].conversation_id;
    seen.push(...(await bobSocket.expectMany("new_message", 3)));
    await bobSocket.close();

    await sendAll(aliceSocket, bob, ["m4", "m5", "m6"]);
    bobSocket = await connect(server, bob, { name: "bob (back)" });
    const queued = await bobSocket.expectMany("new_message", 3);
    assert.deepEqual(queued.map((m) => m.seq), [4, 5, 6]);
    seen.push(...queued);
    // Delivered once bob's device has shown it received them: alice is told.
    const last = queued.at(-1).message_id;
    await aliceSocket.until("message_delivered", (r) => r.message_id === last);

    const { messages, has_more } = await sync(bobSocket, [{ conversation_id: conversationId, after_seq: 3 }]);
    assert.equal(has_more, false);
    assert.deepEqual(
      messages.map((m) => [m.message_id, m.seq, m.content]),
      queued.map((m) => [m.message_id, m.seq, m.content]),
    );
    assert.ok(messages.every((m) => ISO_UTC.test(m.delivered_at ?? "")), "synced messages show delivery");
    assert.deepEqual((await sync(bobSocket, [{ conversation_id: conversationId, after_seq: 6 }])).messages, []);

    const rows = await fullHistory(bob, conversationId);
    assert.equal(seen.length, rows.length);
    rows.forEach((row, i) => sameMessage(seen[i], row, `seq ${row.seq}`));
    await closeAll(aliceSocket, bobSocket);
  });

  test("several conversations in one call: only those named, each after its own seq, oldest first", async () => {
    const [alice, bob, carol, dave] = await server.registerMany("alice", "bob", "carol", "dave");
    const [aliceSocket, carolSocket, daveSocket] = await Promise.all(
      [alice, carol, dave].map((user) => connect(server, user)),
    );
    const withAlice = await sendAll(aliceSocket, bob, ["a1", "a2", "a3"]);
    const withCarol = await sendAll(carolSocket, bob, ["c1", "c2"]);
    await sendAll(daveSocket, bob, ["d1"]);
    const bobSocket = await connect(server, bob);
    await bobSocket.expectMany("new_message", 6);

    const { messages, has_more } = await sync(bobSocket, [
      { conversation_id: withAlice[0].conversation_id, after_seq: 1 },
      { conversation_id: withCarol[0].conversation_id, after_seq: 0 },
    ]);
    assert.equal(has_more, false);
    const of = (conversationId) =>
      messages.filter((m) => m.conversation_id === conversationId).map((m) => [m.seq, m.content]);
    assert.deepEqual(of(withAlice[0].conversation_id), [[2, "a2"], [3, "a3"]]);
    assert.deepEqual(of(withCarol[0].conversation_id), [[1, "c1"], [2, "c2"]]);
    assert.equal(messages.length, 4, "nothing from the conversation with dave");
    await closeAll(aliceSocket, carolSocket, daveSocket, bobSocket);
  });

  test("more than 500 missed messages: has_more, then the rest", async () => {
    const COUNT = 520;
    const [alice, bob] = await server.registerMany("alice", "bob");
    const aliceSocket = await connect(server, alice);
    for (let i = 1; i <= COUNT; i++) {
      aliceSocket.emit("send_message", { to_user_id: bob.id, content: `m${i}` });
    }
    const sent = await aliceSocket.expectMany("message_sent", COUNT, { timeoutMs: 30_000 });
    const conversationId = sent[0].conversation_id;

    // Any member may sync; alice, a fresh device, starts from nothing.
    const page1 = await sync(aliceSocket, [{ conversation_id: conversationId, after_seq: 0 }]);
    assert.equal(page1.has_more, true);
    assert.ok(page1.messages.length > 0 && page1.messages.length <= 500, `${page1.messages.length}`);
    assert.deepEqual(page1.messages.map((m) => m.seq), range(1, page1.messages.length));
    const last = page1.messages.at(-1).seq;
    const page2 = await sync(aliceSocket, [{ conversation_id: conversationId, after_seq: last }]);
    assert.equal(page2.has_more, false);
    assert.deepEqual(page2.messages.map((m) => m.seq), range(last + 1, COUNT));
    assert.deepEqual(
      [...page1.messages, ...page2.messages].map((m) => m.content),
      range(1, COUNT).map((i) => `m${i}`),
    );
    await aliceSocket.close();
  });

  test("refusals: a conversation you are not in, malformed requests", async () => {
    const [alice, bob, carol] = await server.registerMany("alice", "bob", "carol");
    const aliceSocket = await connect(server, alice);
    const [ack] = await sendAll(aliceSocket, bob, ["private"]);
    const carolSocket = await connect(server, carol);

    const refused = await carolSocket.request("sync", {
      since: [{ conversation_id: ack.conversation_id, after_seq: 0 }],
    });
    assert.equal(refused?.error?.code, "conversation_not_found", JSON.stringify(refused));
    assert.equal((await carolSocket.expect("error")).code, "conversation_not_found");

    for (const payload of [{}, { since: "all" }, { since: [{ conversation_id: ack.conversation_id }] }, null]) {
      const answer = await aliceSocket.request("sync", payload);
      assert.equal(answer?.error?.code, "invalid_payload", `${JSON.stringify(payload)}: ${JSON.stringify(answer)}`);
      assert.equal((await aliceSocket.expect("error")).code, "invalid_payload");
    }
    await closeAll(aliceSocket, carolSocket);
  });
});

describe("REST cursor pagination", () => {
  let alice;
  let carol;
  let conversationId;
  let sent;
  before(async () => {
    [alice, carol] = await server.registerMany("alice", "carol");
    const bob = await server.register("bob");
    const aliceSocket = await connect(server, alice);
    sent = await sendAll(aliceSocket, bob, range(1, 12).map((i) => `p${i}`));
    conversationId = sent[0].conversation_id;
    await aliceSocket.close();
  });

  const page = async (query) => history(server, alice, conversationId, query);
  const seqs = (body) => body.messages.map((m) => m.seq);

  test("after_seq pages forward, oldest first, until has_more is false", async () => {
    const pages = [];
    let after = 0;
    for (;;) {
      const body = await page(`&after_seq=${after}&limit=5`);
      pages.push(seqs(body));
      if (!body.has_more) break;
      after = body.messages.at(-1).seq;
      assert.ok(pages.length < 10, "paging terminates");
    }
    assert.deepEqual(pages, [range(1, 5), range(6, 10), [11, 12]]);

    const first = await page("&after_seq=0&limit=5");
    first.messages.forEach((m, i) => {
      assert.equal(m.id, sent[i].message_id);
      assert.equal(m.content, `p${i + 1}`);
    });
    const end = await page("&after_seq=12&limit=5");
    assert.deepEqual(end.messages, []);
    assert.equal(end.has_more, false);
  });

  test("before_seq pages backward, newest first, until has_more is false", async () => {
    const pages = [];
    let before = 13;
    for (;;) {
      const body = await page(`&before_seq=${before}&limit=5`);
      pages.push(seqs(body));
      if (!body.has_more) break;
      before = body.messages.at(-1).seq;
      assert.ok(pages.length < 10, "paging terminates");
    }
    assert.deepEqual(pages, [range(8, 12).reverse(), range(3, 7).reverse(), [2, 1]]);
    const start = await page("&before_seq=1&limit=5");
    assert.deepEqual(start.messages, []);
    assert.equal(start.has_more, false);
  });

  // Combining them is a range and/or a skip (rest-accepted.test.js).
  test("a non-numeric or negative cursor is a 400", async () => {
    for (const query of ["&after_seq=abc", "&before_seq=5x", "&after_seq=-1", "&after_seq=1&before_seq=x"]) {
      const res = await server.http("GET", `/api/messages?conversation_id=${conversationId}${query}`, {
        token: alice.token,
      });
      assert.equal(res.status, 400, `${query}: ${res.status} ${res.text}`);
      assert.equal(typeof res.body?.error, "string");
    }
  });

  test("a non-member paging by cursor gets 404", async () => {
    for (const query of ["&after_seq=0", "&before_seq=100"]) {
      const res = await server.http("GET", `/api/messages?conversation_id=${conversationId}${query}`, {
        token: carol.token,
      });
      assert.equal(res.status, 404, `${query}: ${res.text}`);
    }
  });
});
