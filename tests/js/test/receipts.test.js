// Read receipts: mark_read over the socket (everything, or up to a message) and
// POST /api/messages/read; message_read to the sender's devices,
// conversation_read to the reader's other devices, and what history shows.

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, ISO_UTC } from "../lib/harness.js";
import { connect, closeAll } from "../lib/client.js";
import { history, conversationsOf } from "../lib/api.js";

let server;
before(async () => {
  server = await startServer();
});
after(() => server?.stop());

/**
 * alice (2 devices) and bob (2 devices), connected; alice sends `texts` to bob
 * and both of bob's devices have received them. Resolves to everything a test
 * needs, with `sent` the acknowledgements in order.
 */
async function conversationWith(texts) {
  const [alice, bob] = await server.registerMany("alice", "bob");
  const alicePhone = await connect(server, alice, { name: "alice phone" });
  const aliceLaptop = await connect(server, alice, { name: "alice laptop" });
  const bobPhone = await connect(server, bob, { name: "bob phone" });
  const bobLaptop = await connect(server, bob, { name: "bob laptop" });
  const sent = [];
  for (const content of texts) {
    const ack = await alicePhone.request("send_message", { to_user_id: bob.id, content });
    assert.equal(ack.status, "sent", JSON.stringify(ack));
    sent.push(ack);
  }
  for (const device of [bobPhone, bobLaptop]) await device.expectMany("new_message", texts.length);
  const conversationId = sent[0].conversation_id;
  const devices = { alicePhone, aliceLaptop, bobPhone, bobLaptop };
  return { alice, bob, ...devices, sent, conversationId, all: Object.values(devices) };
}

function unreadCount(list, conversationId) {
  const item = list.find((c) => c.conversation_id === conversationId);
  assert.ok(item, `conversation ${conversationId} listed`);
  return item.unread_count;
}

describe("mark_read over the socket", () => {
  test("marks everything; the sender's devices get message_read, the reader's other devices conversation_read", async () => {
    const c = await conversationWith(["one", "two", "three"]);
    const newest = c.sent[2].message_id;

    const ack = await c.bobPhone.request("mark_read", { conversation_id: c.conversationId });
    assert.deepEqual(ack, { success: true, messages_marked: 3 });

    const receipts = [];
    for (const device of [c.alicePhone, c.aliceLaptop]) {
      const read = await device.expect("message_read");
      assert.deepEqual(Object.keys(read).sort(), ["conversation_id", "message_id", "read_at", "reader_id"]);
      assert.equal(read.conversation_id, c.conversationId, device.name);
      assert.equal(read.message_id, newest, `${device.name}: the newest message read`);
      assert.equal(read.reader_id, c.bob.id, device.name);
      assert.match(read.read_at, ISO_UTC);
      receipts.push(read);
    }
    assert.equal(receipts[0].read_at, receipts[1].read_at);

    assert.deepEqual(await c.bobLaptop.expect("conversation_read"), {
      conversation_id: c.conversationId,
      up_to_message_id: newest,
    });
    // The device that read it already knows; nobody else is told anything.
    await c.bobPhone.expectNone("conversation_read", { withinMs: 300 });
    for (const device of c.all) {
      await device.expectNone(device.name.startsWith("alice") ? "conversation_read" : "message_read", {
        withinMs: 0,
      });
    }
    await c.alicePhone.expectNone("message_read", { withinMs: 0 });

    // The sender's history shows every message read at the announced time.
    const { messages } = await history(server, c.alice, c.conversationId);
    assert.equal(messages.length, 3);
    for (const message of messages) {
      assert.match(message.read_at ?? "", ISO_UTC, `message ${message.id} read`);
      assert.equal(Date.parse(message.read_at), Date.parse(receipts[0].read_at), `message ${message.id} read_at`);
    }
    assert.equal(unreadCount(await conversationsOf(server, c.bob), c.conversationId), 0);

    // Marking again changes nothing and announces nothing.
    assert.deepEqual(await c.bobLaptop.request("mark_read", { conversation_id: c.conversationId }), {
      success: true,
      messages_marked: 0,
    });
    await c.alicePhone.expectNone("message_read", { withinMs: 300 });
    await c.bobPhone.expectNone("conversation_read", { withinMs: 0 });
    await closeAll(c.all);
  });

  test("up_to_message_id marks only up to that message", async () => {
    const c = await conversationWith(["one", "two", "three"]);
    const [first, second, third] = c.sent.map((s) => s.message_id);

    const ack = await c.bobPhone.request("mark_read", {
      conversation_id: c.conversationId,
      up_to_message_id: second,
    });
    assert.deepEqual(ack, { success: true, messages_marked: 2 });
    const read = await c.alicePhone.expect("message_read");
    assert.equal(read.message_id, second);
    assert.equal(read.reader_id, c.bob.id);
    assert.deepEqual(await c.bobLaptop.expect("conversation_read"), {
      conversation_id: c.conversationId,
      up_to_message_id: second,
    });

    const readAt = Object.fromEntries(
      (await history(server, c.bob, c.conversationId)).messages.map((m) => [m.id, m.read_at]),
    );
    assert.match(readAt[first] ?? "", ISO_UTC, "first read");
    assert.match(readAt[second] ?? "", ISO_UTC, "second read");
    assert.equal(readAt[third], null, "third still unread");
    assert.equal(unreadCount(await conversationsOf(server, c.bob), c.conversationId), 1);

    // The rest, without an acknowledgement callback (a plain emit works too).
    c.bobLaptop.emit("mark_read", { conversation_id: c.conversationId });
    assert.equal((await c.alicePhone.expect("message_read")).message_id, third);
    assert.deepEqual(await c.bobPhone.expect("conversation_read"), {
      conversation_id: c.conversationId,
      up_to_message_id: third,
    });
    await c.bobLaptop.expectNone("conversation_read", { withinMs: 200 });
    const after = (await history(server, c.bob, c.conversationId)).messages;
    assert.ok(after.every((m) => ISO_UTC.test(m.read_at ?? "")), "all read now");
    // The earlier read_at is kept, not overwritten by the second mark_read.
    assert.equal(after.find((m) => m.id === first).read_at, readAt[first]);
    await closeAll(c.all);
  });

  test("only the other member's messages are marked; message_read names the newest of them", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const aliceSocket = await connect(server, alice);
    const bobSocket = await connect(server, bob);
    const a1 = await aliceSocket.request("send_message", { to_user_id: bob.id, content: "a1" });
    const b1 = await bobSocket.request("send_message", { to_user_id: alice.id, content: "b1" });
    const a2 = await aliceSocket.request("send_message", { to_user_id: bob.id, content: "a2" });
    const b2 = await bobSocket.request("send_message", { to_user_id: alice.id, content: "b2" });
    await bobSocket.expectMany("new_message", 2);

    const ack = await bobSocket.request("mark_read", { conversation_id: a1.conversation_id });
    assert.deepEqual(ack, { success: true, messages_marked: 2 });
    const read = await aliceSocket.expect("message_read");
    assert.equal(read.message_id, a2.message_id, "alice's newest message, not bob's own");
    assert.equal(read.reader_id, bob.id);
    // bob's own messages were not read by bob's reading: he gets no message_read.
    await bobSocket.expectNone("message_read", { withinMs: 200 });

    const byId = Object.fromEntries(
      (await history(server, alice, a1.conversation_id)).messages.map((m) => [m.id, m.read_at]),
    );
    assert.match(byId[a1.message_id] ?? "", ISO_UTC);
    assert.match(byId[a2.message_id] ?? "", ISO_UTC);
    assert.equal(byId[b1.message_id], null, "alice has not read b1");
    assert.equal(byId[b2.message_id], null, "alice has not read b2");
    await closeAll(aliceSocket, bobSocket);
  });

  test("refusals: not a member, a message of another conversation, malformed payloads", async () => {
    const c = await conversationWith(["private"]);
    const carol = await server.register("carol");
    const carolSocket = await connect(server, carol);
    const other = await carolSocket.request("send_message", { to_user_id: c.alice.id, content: "x" });
    await c.alicePhone.expect("new_message");

    // carol is no member of alice and bob's conversation.
    const refused = await carolSocket.request("mark_read", { conversation_id: c.conversationId });
    assert.equal(refused?.error?.code, "conversation_not_found", JSON.stringify(refused));
    assert.equal(typeof refused.error.message, "string");
    assert.equal((await carolSocket.expect("error")).code, "conversation_not_found");

    // A message id from another conversation.
    const wrong = await c.bobPhone.request("mark_read", {
      conversation_id: c.conversationId,
      up_to_message_id: other.message_id,
    });
    assert.equal(wrong?.error?.code, "invalid_payload", JSON.stringify(wrong));
    assert.equal((await c.bobPhone.expect("error")).code, "invalid_payload");

    for (const payload of [{}, { conversation_id: "abc" }, "mark it", { conversation_id: c.conversationId, up_to_message_id: "x" }]) {
      const answer = await c.bobPhone.request("mark_read", payload);
      assert.equal(answer?.error?.code, "invalid_payload", `${JSON.stringify(payload)}: ${JSON.stringify(answer)}`);
      assert.equal((await c.bobPhone.expect("error")).code, "invalid_payload");
    }

    // Nothing was marked or announced.
    const { messages } = await history(server, c.alice, c.conversationId);
    assert.equal(messages[0].read_at, null);
    await c.alicePhone.expectNone("message_read", { withinMs: 200 });
    await c.bobLaptop.expectNone("conversation_read", { withinMs: 0 });
    await closeAll(c.all, carolSocket);
  });
});

describe("POST /api/messages/read", () => {
  test("announces message_read to the sender and conversation_read to all the reader's devices", async () => {
    const c = await conversationWith(["one", "two"]);
    const res = await server.http("POST", `/api/messages/read?conversation_id=${c.conversationId}`, {
      token: c.bob.token,
    });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body, { success: true, messages_marked: 2 });

    for (const device of [c.alicePhone, c.aliceLaptop]) {
      const read = await device.expect("message_read");
      assert.equal(read.conversation_id, c.conversationId);
      assert.equal(read.message_id, c.sent[1].message_id, device.name);
      assert.equal(read.reader_id, c.bob.id);
      assert.match(read.read_at, ISO_UTC);
    }
    // No device did the reading, so every device of bob's is told.
    for (const device of [c.bobPhone, c.bobLaptop]) {
      assert.deepEqual(await device.expect("conversation_read"), {
        conversation_id: c.conversationId,
        up_to_message_id: c.sent[1].message_id,
      }, device.name);
    }
    await c.alicePhone.expectNone("message_read", { withinMs: 200 });
    await closeAll(c.all);
  });
});
