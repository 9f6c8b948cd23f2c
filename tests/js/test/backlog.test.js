// A backlog larger than one connect hands over (CATCH_UP_LIMIT): the oldest part comes
// at once, live messages flow meanwhile, and the rest comes on the next connect. Nothing
// is lost or repeated, and every message ends up delivered.

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

test("a backlog over the limit arrives over several connects, none lost or repeated", async () => {
  const [alice, bob] = await server.registerMany("alice", "bob");
  const aliceSocket = await connect(server, alice);
  for (let i = 1; i <= 8; i++) aliceSocket.emit("send_message", { to_user_id: bob.id, content: `queued ${i}` });
  const sent = await aliceSocket.expectMany("message_sent", 8);
  const conversationId = sent[0].conversation_id;

  // First connect: the five oldest, then a live message while connected.
  const bobFirst = await connect(server, bob);
  const firstBatch = await bobFirst.expectMany("new_message", 5);
  assert.deepEqual(firstBatch.map((m) => m.content), ["queued 1", "queued 2", "queued 3", "queued 4", "queued 5"]);
  aliceSocket.emit("send_message", { to_user_id: bob.id, content: "live" });
  assert.equal((await bobFirst.expect("new_message")).content, "live");
  await bobFirst.expectNone("new_message");
  await bobFirst.close();

  // Second connect: the rest of the backlog, oldest first, and nothing seen before.
  const bobSecond = await connect(server, bob);
  const rest = await bobSecond.expectMany("new_message", 3);
  assert.deepEqual(rest.map((m) => m.content), ["queued 6", "queued 7", "queued 8"]);
  await bobSecond.expectNone("new_message");

  // Every message was reported delivered to the sender exactly once, and is stored so.
  const receipts = await aliceSocket.expectMany("message_delivered", 9);
  assert.equal(new Set(receipts.map((r) => r.message_id)).size, 9);
  await aliceSocket.expectNone("message_delivered");
  const page = await history(server, alice, conversationId);
  assert.equal(page.total, 9);
  assert.ok(page.messages.every((m) => m.delivered_at !== null), "all delivered");
  await closeAll(aliceSocket, bobSecond);
});
