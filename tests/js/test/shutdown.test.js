// SIGTERM drains a node: sends already accepted are committed and answered, those that
// arrive while it drains are refused with `unavailable`, every connection is dropped as a lost link drops (so
// socket.io-client reconnects by itself), and the process exits within DRAIN_TIMEOUT_MS.
// On PostgreSQL a second node on the same database then shows that every acknowledged
// message is stored, and that resending the rest with their client_msg_id to the
// surviving node leaves each message stored exactly once.

import { test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { backend, startCluster, startServer } from "../lib/harness.js";
import { connect, closeAll } from "../lib/client.js";

const UNLIMITED = { RATE_SENDS_PER_SEC: "0" };

/** Fires every send at once (each with its client_msg_id); resolves each to its answer or to null if none came. */
function fire(client, to, ids) {
  return ids.map((client_msg_id, i) =>
    client
      .request("send_message", { to_user_id: to.id, content: `m${i}`, client_msg_id }, { timeoutMs: 8_000 })
      .catch(() => null),
  );
}

async function drainOnce(node, other) {
  const [alice, bob] = await node.registerMany("alice", "bob");
  const aliceSocket = await connect(node, alice, { reconnection: false });
  const gone = new Promise((resolve) => aliceSocket.socket.once("disconnect", resolve));
  // Alice keeps sending, a message every millisecond, until her connection goes; the
  // signal comes once the first few are stored, so sends are in flight when it does.
  const ids = [];
  const answers = [];
  let sentAfterSignal = 0;
  let signalled = false;
  const sending = (async () => {
    while (aliceSocket.socket.connected) {
      const id = randomUUID();
      ids.push(id);
      answers.push(...fire(aliceSocket, bob, [id]));
      if (signalled) sentAfterSignal++;
      await new Promise((r) => setTimeout(r, 1));
    }
  })();
  await aliceSocket.until("message_sent", () => ids.length >= 20);
  signalled = true;
  const exit = await node.terminate("SIGTERM");
  await sending;
  const settled = await Promise.all(answers);
  const SENDS = ids.length;

  assert.equal(exit.code, 0, `exit ${JSON.stringify(exit)}`);
  assert.ok(exit.ms < 10_000, `exited after ${exit.ms} ms (DRAIN_TIMEOUT_MS 10 s)`);
  // A dropped link, which clients reconnect after, not a Socket.IO disconnect.
  assert.equal(await gone, "transport close");
  const acked = settled.filter((a) => Number.isInteger(a?.message_id));
  const refused = settled.filter((a) => a?.error);
  assert.ok(acked.length > 0, "sends accepted before the signal were answered");
  assert.ok(sentAfterSignal > 0, "sends went on after the signal");
  console.log(`drain: ${acked.length} acknowledged, ${refused.length} refused, ${settled.length - acked.length - refused.length} unanswered; exit after ${exit.ms} ms`);
  // Sends that reach the node while it drains are refused, and say why (how many do
  // depends on how long the drain takes); the others were cut off unanswered.
  for (const a of refused) assert.equal(a.error.code, "unavailable", JSON.stringify(a));
  if (!other) return;

  // The surviving node sees every acknowledged message.
  const history = async () =>
    (await other.http("GET", `/api/messages?conversation_id=${acked[0].conversation_id}&limit=100&after_seq=0`, {
      token: alice.token,
    })).body.messages;
  const stored = [];
  for (let page = await history(); ; ) {
    stored.push(...page);
    if (page.length < 100) break;
    page = (await other.http("GET", `/api/messages?conversation_id=${acked[0].conversation_id}&limit=100&after_seq=${page.at(-1).seq}`, {
      token: alice.token,
    })).body.messages;
  }
  const storedIds = new Set(stored.map((m) => m.id));
  for (const a of acked) assert.ok(storedIds.has(a.message_id), `acknowledged message ${a.message_id} is stored`);

  // The client resends what it has no answer for, with the same client_msg_id, to the
  // other node: each message ends up stored once.
  const back = await connect(other, alice);
  const missing = ids.filter((_, i) => !Number.isInteger(settled[i]?.message_id));
  const resent = await Promise.all(fire(back, bob, missing));
  assert.ok(resent.every((a) => Number.isInteger(a?.message_id)), JSON.stringify(resent.find((a) => !a?.message_id)));
  const total = (await other.http("GET", `/api/messages?conversation_id=${acked[0].conversation_id}&limit=1`, {
    token: alice.token,
  })).body.total;
  assert.equal(total, SENDS, "each message stored exactly once");
  await closeAll(back);
}

if (backend === "postgres") {
  test("SIGTERM drains a node; the other node has every acknowledged message, and resends land once", async () => {
    const [a, b] = await startCluster(2, { env: UNLIMITED });
    try {
      await drainOnce(a, b);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });
} else {
  test("SIGTERM drains the node: accepted sends answered, later ones refused or cut off, clients dropped to reconnect", async () => {
    const node = await startServer({ env: UNLIMITED });
    try {
      await drainOnce(node, null);
    } finally {
      await node.stop();
    }
  });
}
