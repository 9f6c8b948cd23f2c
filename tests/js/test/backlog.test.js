// A backlog larger than one page of the offline queue (CATCH_UP_LIMIT) is handed over
// page after page on the same connect, in order; live messages follow it, and nothing
// is lost or repeated. Every message ends up delivered, and a later connect starts
// with nothing old.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "../lib/harness.js";
import { connect, closeAll } from "../lib/client.js";
import { history } from "../lib/api.js";

let server;
before(async () => {
  server = await startServer({ env: { CATCH_UP_LIMIT: "5" } });
});
after(() => server?.stop());

test("a backlog over one page arrives whole and in order, then live messages", async () => {
  const [alice, bob] = await server.registerMany("alice", "bob");
  const aliceSocket = await connect(server, alice);
  for (let i = 1; i <= 12; i++) aliceSocket.emit("send_message", { to_user_id: bob.id, content: `queued ${i}` });
  const sent = await aliceSocket.expectMany("message_sent", 12);
  const conversationId = sent[0].conversation_id;

  // Three pages (5 + 5 + 2) on one connect, oldest first, then a live message.
  const bobFirst = await connect(server, bob);
  const backlog = await bobFirst.expectMany("new_message", 12);
  assert.deepEqual(
    backlog.map((m) => m.content),
    Array.from({ length: 12 }, (_, i) => `queued ${i + 1}`),
  );
  assert.deepEqual(backlog.map((m) => m.seq), Array.from({ length: 12 }, (_, i) => i + 1));
  aliceSocket.emit("send_message", { to_user_id: bob.id, content: "live" });
  assert.equal((await bobFirst.expect("new_message")).content, "live");
  await bobFirst.expectNone("new_message");

  // Every message was reported delivered to the sender exactly once, and is stored so.
  const receipts = await aliceSocket.expectMany("message_delivered", 13);
  assert.equal(new Set(receipts.map((r) => r.message_id)).size, 13);
  await aliceSocket.expectNone("message_delivered");
  const page = await history(server, alice, conversationId);
  assert.equal(page.total, 13);
  assert.ok(page.messages.every((m) => m.delivered_at !== null), "all delivered");
  await bobFirst.close();

  // The next connect hands over nothing old: the first message it gets is a new one.
  const bobSecond = await connect(server, bob);
  aliceSocket.emit("send_message", { to_user_id: bob.id, content: "after" });
  assert.equal((await bobSecond.expect("new_message")).content, "after");
  await bobSecond.expectNone("new_message");
  await closeAll(aliceSocket, bobSecond);
});
