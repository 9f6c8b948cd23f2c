// Direct messaging over Socket.IO: send, receive on every device, delivery
// receipts, the offline queue, ordering under load, the race-free first
// message, ping/pong, and the error events for invalid sends.

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, ISO_UTC } from "../lib/harness.js";
import { connect, closeAll } from "../lib/client.js";

let server;
before(async () => {
  // Sends bursts of hundreds from one user; the send rate limit has its own tests
  // (hardening.test.js).
  server = await startServer({ env: { RATE_SENDS_PER_SEC: "0" } });
});
after(() => server?.stop());

/** The caller's view of a conversation's history (newest first). */
async function history(user, conversationId, query = "") {
  const res = await server.http("GET", `/api/messages?conversation_id=${conversationId}${query}`, {
    token: user.token,
  });
  assert.equal(res.status, 200, `history of ${conversationId}: ${res.text}`);
  return res.body;
}

/** The caller's conversation list. */
async function conversations(user) {
  const res = await server.http("GET", "/api/conversations", { token: user.token });
  assert.equal(res.status, 200, res.text);
  return res.body.conversations;
}

describe("sending to an online recipient", () => {
  test("sender gets message_sent, recipient new_message, sender message_delivered", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const aliceSocket = await connect(server, alice);
    const bobSocket = await connect(server, bob);

    aliceSocket.emit("send_message", { to_user_id: bob.id, content: "héllo bob 👋" });

    const sent = await aliceSocket.expect("message_sent");
    assert.equal(typeof sent.message_id, "number");
    assert.equal(typeof sent.conversation_id, "number");
    assert.equal(sent.status, "sent");
    assert.match(sent.sent_at, ISO_UTC);
    assert.equal(sent.seq, 1);

    // The seed's fields, plus seq (further fields are allowed by the contract).
    const received = await bobSocket.expect("new_message");
    assert.equal(received.message_id, sent.message_id);
    assert.equal(received.conversation_id, sent.conversation_id);
    assert.equal(received.from_user_id, alice.id);
    assert.equal(received.content, "héllo bob 👋");
    assert.match(received.sent_at, ISO_UTC);
    assert.equal(Date.parse(received.sent_at), Date.parse(sent.sent_at));
    assert.equal(received.seq, 1);

    const delivered = await aliceSocket.expect("message_delivered");
    assert.equal(delivered.message_id, sent.message_id);
    assert.match(delivered.delivered_at, ISO_UTC);

    const { messages } = await history(bob, sent.conversation_id);
    assert.equal(messages.length, 1);
    assert.equal(messages[0].id, sent.message_id);
    assert.equal(messages[0].sender_id, alice.id);
    assert.equal(messages[0].content, "héllo bob 👋");
    assert.match(messages[0].delivered_at, ISO_UTC);
    assert.equal(messages[0].read_at, null);
    await closeAll(aliceSocket, bobSocket);
  });

  test("replies share the conversation and seq counts 1, 2, 3 across both senders", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const aliceSocket = await connect(server, alice);
    const bobSocket = await connect(server, bob);

    aliceSocket.emit("send_message", { to_user_id: bob.id, content: "one" });
    const first = await aliceSocket.expect("message_sent");
    await bobSocket.expect("new_message");
    bobSocket.emit("send_message", { to_user_id: alice.id, content: "two" });
    const second = await bobSocket.expect("message_sent");
    const reply = await aliceSocket.expect("new_message");
    aliceSocket.emit("send_message", { to_user_id: bob.id, content: "three" });
    const third = await aliceSocket.expect("message_sent");

    assert.equal(second.conversation_id, first.conversation_id);
    assert.equal(third.conversation_id, first.conversation_id);
    assert.deepEqual([first.seq, second.seq, third.seq], [1, 2, 3]);
    assert.equal(reply.from_user_id, bob.id);
    assert.equal(reply.seq, 2);
    await closeAll(aliceSocket, bobSocket);
  });

  test("every device of the recipient gets new_message; every device of the sender the receipt", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const alicePhone = await connect(server, alice, { name: "alice phone" });
    const aliceLaptop = await connect(server, alice, { name: "alice laptop" });
    const bobPhone = await connect(server, bob, { name: "bob phone" });
    const bobLaptop = await connect(server, bob, { name: "bob laptop" });
    const bobTablet = await connect(server, bob, { name: "bob tablet", transports: ["polling"] });

    alicePhone.emit("send_message", { to_user_id: bob.id, content: "to all your devices" });
    const sent = await alicePhone.expect("message_sent");

    for (const device of [bobPhone, bobLaptop, bobTablet]) {
      const received = await device.expect("new_message");
      assert.equal(received.message_id, sent.message_id, device.name);
      assert.equal(received.content, "to all your devices", device.name);
    }
    for (const device of [alicePhone, aliceLaptop]) {
      const delivered = await device.expect("message_delivered");
      assert.equal(delivered.message_id, sent.message_id, device.name);
    }
    // One receipt per message, however many devices of bob's have it.
    await alicePhone.expectNone("message_delivered");
    await bobPhone.expectNone("new_message");
    await closeAll(alicePhone, aliceLaptop, bobPhone, bobLaptop, bobTablet);
  });

  test("to_user_id as a numeric string is accepted, as the seed's clients send it", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const aliceSocket = await connect(server, alice);
    const bobSocket = await connect(server, bob);

    aliceSocket.emit("send_message", { to_user_id: String(bob.id), content: "string id" });
    const sent = await aliceSocket.expect("message_sent");
    assert.equal(sent.status, "sent");
    assert.equal((await bobSocket.expect("new_message")).message_id, sent.message_id);
    await closeAll(aliceSocket, bobSocket);
  });
});

describe("offline queue", () => {
  test("messages for an offline user arrive oldest first when they connect, with receipts", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const aliceSocket = await connect(server, alice);
    const texts = ["first", "second", "third", "fourth", "fifth"];
    for (const content of texts) {
      aliceSocket.emit("send_message", { to_user_id: bob.id, content });
    }
    const sent = await aliceSocket.expectMany("message_sent", texts.length);
    await aliceSocket.expectNone("message_delivered");

    const conversationId = sent[0].conversation_id;
    const before = await history(alice, conversationId);
    assert.equal(before.total, texts.length);
    assert.ok(before.messages.every((m) => m.delivered_at === null), "nothing delivered yet");

    const bobSocket = await connect(server, bob);
    const received = await bobSocket.expectMany("new_message", texts.length);
    assert.deepEqual(received.map((m) => m.content), texts);
    assert.deepEqual(received.map((m) => m.message_id), sent.map((m) => m.message_id));
    assert.deepEqual(received.map((m) => m.seq), [1, 2, 3, 4, 5]);
    assert.ok(received.every((m) => m.from_user_id === alice.id));

    const receipts = await aliceSocket.expectMany("message_delivered", texts.length);
    assert.deepEqual(
      receipts.map((r) => r.message_id).sort((a, b) => a - b),
      sent.map((m) => m.message_id).sort((a, b) => a - b),
    );
    assert.ok(receipts.every((r) => ISO_UTC.test(r.delivered_at)));

    const after = await history(alice, conversationId);
    assert.ok(after.messages.every((m) => ISO_UTC.test(m.delivered_at)), "all marked delivered");
    await closeAll(aliceSocket, bobSocket);
  });

  test("queued messages are delivered once: the next connect brings no repeats", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const aliceSocket = await connect(server, alice);
    aliceSocket.emit("send_message", { to_user_id: bob.id, content: "only once" });
    await aliceSocket.expect("message_sent");

    const bobFirst = await connect(server, bob);
    assert.equal((await bobFirst.expect("new_message")).content, "only once");
    await bobFirst.close();

    const bobAgain = await connect(server, bob);
    await bobAgain.expectNone("new_message");
    await aliceSocket.expect("message_delivered");
    await aliceSocket.expectNone("message_delivered");
    await closeAll(aliceSocket, bobAgain);
  });

  test("the queue is delivered even when the sender has gone offline", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const aliceSocket = await connect(server, alice);
    aliceSocket.emit("send_message", { to_user_id: bob.id, content: "left before you came" });
    const sent = await aliceSocket.expect("message_sent");
    await aliceSocket.close();

    const bobSocket = await connect(server, bob);
    const received = await bobSocket.expect("new_message");
    assert.equal(received.message_id, sent.message_id);
    assert.equal(received.content, "left before you came");

    // Delivery is recorded once bob has it (poll briefly: the write may trail the emit).
    let message;
    for (let attempt = 0; attempt < 20; attempt++) {
      [message] = (await history(alice, sent.conversation_id)).messages;
      if (message.delivered_at !== null) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.match(message.delivered_at, ISO_UTC);
    await bobSocket.close();
  });
});

describe("ordering under load", () => {
  test("three senders each emitting 200 messages back-to-back: each arrives in order, once", async () => {
    const PER_SENDER = 200;
    const [bob, ...senders] = await server.registerMany("bob", "s1", "s2", "s3");
    const bobSocket = await connect(server, bob);
    const senderSockets = await Promise.all(senders.map((sender) => connect(server, sender)));

    // Fire everything without waiting for any acknowledgement.
    for (let i = 0; i < PER_SENDER; i++) {
      senderSockets.forEach((socket, s) => {
        socket.emit("send_message", { to_user_id: bob.id, content: `s${s}-${i}` });
      });
    }

    const received = await bobSocket.expectMany("new_message", PER_SENDER * senders.length, {
      timeoutMs: 60_000,
    });
    const sentBySender = await Promise.all(
      senderSockets.map((socket) => socket.expectMany("message_sent", PER_SENDER, { timeoutMs: 60_000 })),
    );

    senders.forEach((sender, s) => {
      const fromSender = received.filter((m) => m.from_user_id === sender.id);
      const expected = Array.from({ length: PER_SENDER }, (_, i) => `s${s}-${i}`);
      assert.deepEqual(fromSender.map((m) => m.content), expected, `order from sender ${s}`);
      assert.deepEqual(
        fromSender.map((m) => m.seq),
        Array.from({ length: PER_SENDER }, (_, i) => i + 1),
        `seq from sender ${s}`,
      );
      const ids = fromSender.map((m) => m.message_id);
      assert.equal(new Set(ids).size, PER_SENDER, `no duplicate ids from sender ${s}`);
      // The sender's acknowledgements name the same messages with the same seq.
      const sent = sentBySender[s];
      assert.deepEqual(
        [...sent].sort((a, b) => a.seq - b.seq).map((m) => m.message_id),
        ids,
        `message_sent ids from sender ${s} match what bob received`,
      );
    });
    await bobSocket.expectNone("new_message");

    const total = (await history(bob, received[0].conversation_id)).total;
    assert.equal(total, PER_SENDER);
    await closeAll(bobSocket, senderSockets);
  });

  test("one sender's burst to an offline recipient is replayed in order on connect", async () => {
    const COUNT = 100;
    const [alice, bob] = await server.registerMany("alice", "bob");
    const aliceSocket = await connect(server, alice);
    for (let i = 0; i < COUNT; i++) {
      aliceSocket.emit("send_message", { to_user_id: bob.id, content: `m${i}` });
    }
    await aliceSocket.expectMany("message_sent", COUNT, { timeoutMs: 30_000 });

    const bobSocket = await connect(server, bob);
    const received = await bobSocket.expectMany("new_message", COUNT, { timeoutMs: 30_000 });
    assert.deepEqual(
      received.map((m) => m.content),
      Array.from({ length: COUNT }, (_, i) => `m${i}`),
    );
    assert.deepEqual(
      received.map((m) => m.seq),
      Array.from({ length: COUNT }, (_, i) => i + 1),
    );
    await bobSocket.expectNone("new_message");
    await closeAll(aliceSocket, bobSocket);
  });
});

describe("race-free first message", () => {
  test("20 fresh pairs messaging each other at the same instant each share one conversation", async () => {
    const PAIRS = 20;
    const users = await server.registerMany(
      ...Array.from({ length: PAIRS * 2 }, (_, i) => `racer${i}`),
    );
    const pairs = Array.from({ length: PAIRS }, (_, p) => [users[2 * p], users[2 * p + 1]]);
    const sockets = await Promise.all(
      pairs.map(async ([a, b]) => [await connect(server, a), await connect(server, b)]),
    );

    // All first messages go out in the same tick.
    pairs.forEach(([a, b], p) => {
      const [aSocket, bSocket] = sockets[p];
      aSocket.emit("send_message", { to_user_id: b.id, content: `hi ${b.id}` });
      bSocket.emit("send_message", { to_user_id: a.id, content: `hi ${a.id}` });
    });

    for (const [p, [a, b]] of pairs.entries()) {
      const [aSocket, bSocket] = sockets[p];
      const [aSent, bSent] = await Promise.all([
        aSocket.expect("message_sent"),
        bSocket.expect("message_sent"),
      ]);
      assert.equal(aSent.conversation_id, bSent.conversation_id, `pair ${p} shares one conversation`);
      assert.deepEqual([aSent.seq, bSent.seq].sort(), [1, 2], `pair ${p} seq`);
      assert.equal((await aSocket.expect("new_message")).content, `hi ${a.id}`);
      assert.equal((await bSocket.expect("new_message")).content, `hi ${b.id}`);
      assert.deepEqual(aSocket.collect("error"), [], `pair ${p}: no error for ${a.email}`);
      assert.deepEqual(bSocket.collect("error"), [], `pair ${p}: no error for ${b.email}`);

      const list = await conversations(a);
      assert.equal(list.length, 1, `pair ${p}: one conversation`);
      assert.equal(list[0].conversation_id, aSent.conversation_id);
      assert.equal((await history(a, aSent.conversation_id)).total, 2, `pair ${p}: both stored`);
    }
    await closeAll(sockets.flat());
  });
});

describe("ping", () => {
  test("ping is answered with pong carrying the server's UTC time", async () => {
    const alice = await server.register("alice");
    const socket = await connect(server, alice);
    socket.emit("ping");
    const pong = await socket.expect("pong");
    assert.match(pong.timestamp, ISO_UTC);
    assert.ok(Math.abs(Date.parse(pong.timestamp) - Date.now()) < 60_000, "a current time");
    await socket.close();
  });
});

describe("invalid send_message", () => {
  let alice;
  let bob;
  let aliceSocket;
  let bobSocket;
  let conversationId;
  before(async () => {
    [alice, bob] = await server.registerMany("alice", "bob");
    aliceSocket = await connect(server, alice);
    bobSocket = await connect(server, bob);
    // One valid message first, so there is a conversation whose history must not grow.
    aliceSocket.emit("send_message", { to_user_id: bob.id, content: "the only stored message" });
    conversationId = (await aliceSocket.expect("message_sent")).conversation_id;
    await bobSocket.expect("new_message");
  });
  after(() => closeAll(aliceSocket, bobSocket));

  /** Sends `payload` as alice; returns the error she gets back and checks nothing moved. */
  async function rejected(payload) {
    aliceSocket.emit("send_message", payload);
    const error = await aliceSocket.expect("error");
    await aliceSocket.expectNone("message_sent", { withinMs: 100 });
    await bobSocket.expectNone("new_message", { withinMs: 100 });
    return error;
  }

  const cases = [
    ["content missing", () => ({ to_user_id: bob.id }), "invalid_payload"],
    ["content not a string", () => ({ to_user_id: bob.id, content: 42 }), "invalid_payload"],
    ["to_user_id missing", () => ({ content: "hello" }), "invalid_payload"],
    ["to_user_id a non-numeric string", () => ({ to_user_id: "bob", content: "hello" }), "invalid_payload"],
    ["payload a string, not an object", () => "hello", "invalid_payload"],
    ["payload null", () => null, "invalid_payload"],
    ["recipient does not exist", () => ({ to_user_id: 987654321, content: "hello?" }), "unknown_recipient"],
    ["recipient is the sender", () => ({ to_user_id: alice.id, content: "note to self" }), "invalid_recipient"],
    ["content empty", () => ({ to_user_id: bob.id, content: "" }), "empty_content"],
    ["content only whitespace", () => ({ to_user_id: bob.id, content: "  \n\t " }), "empty_content"],
    ["content over 16384 bytes", () => ({ to_user_id: bob.id, content: "a".repeat(16385) }), "content_too_long"],
    [
      "content under 16384 characters but over 16384 UTF-8 bytes",
      () => ({ to_user_id: bob.id, content: "€".repeat(5462) }),
      "content_too_long",
    ],
  ];

  for (const [what, payload, code] of cases) {
    test(`${what} → error ${code}`, async () => {
      const error = await rejected(payload());
      assert.equal(error.code, code);
      assert.equal(typeof error.message, "string");
      assert.ok(error.message.length > 0, "the error says why");
    });
  }

  test("nothing from the invalid sends was stored", async () => {
    const { total, messages } = await history(alice, conversationId);
    assert.equal(total, 1);
    assert.deepEqual(messages.map((m) => m.content), ["the only stored message"]);
    // No conversation with a stranger or with herself appeared either.
    assert.deepEqual((await conversations(alice)).map((c) => c.conversation_id), [conversationId]);
  });

  test("content of exactly 16384 UTF-8 bytes is accepted", async () => {
    const ascii = "a".repeat(16384);
    const multibyte = "€".repeat(5461) + "a"; // 5461 × 3 + 1 = 16384 bytes
    for (const content of [ascii, multibyte]) {
      aliceSocket.emit("send_message", { to_user_id: bob.id, content });
      assert.equal((await aliceSocket.expect("message_sent")).status, "sent");
      assert.equal((await bobSocket.expect("new_message")).content, content);
    }
    assert.equal((await history(alice, conversationId)).total, 3);
  });
});

describe("MAX_MESSAGE_BYTES", () => {
  let smallServer;
  before(async () => {
    smallServer = await startServer({ env: { MAX_MESSAGE_BYTES: "32" } });
  });
  after(() => smallServer?.stop());

  test("the configured limit is the one enforced", async () => {
    const [alice, bob] = await smallServer.registerMany("alice", "bob");
    const aliceSocket = await connect(smallServer, alice);

    aliceSocket.emit("send_message", { to_user_id: bob.id, content: "x".repeat(32) });
    assert.equal((await aliceSocket.expect("message_sent")).status, "sent");

    aliceSocket.emit("send_message", { to_user_id: bob.id, content: "x".repeat(33) });
    assert.equal((await aliceSocket.expect("error")).code, "content_too_long");
    await aliceSocket.expectNone("message_sent");
    await aliceSocket.close();
  });
});
