// Losing a node of a Redis cluster (issue 14): SIGKILL mid-traffic, SIGTERM drain.
//
// - SIGKILL: three nodes, senders and receivers on all of them, node C killed while
//   every sender has sends in flight. Clients of C go to a survivor, as a load
//   balancer would send them, and senders resend what got no answer with the same
//   client_msg_id. Counted sent against received: every acknowledged message is stored
//   and reaches every recipient device (live, offline queue or `sync`), each send is
//   stored once, each sender's messages keep their order, and a message handed twice
//   is the same message_id and seq handed again after the failover (reported, not
//   bounded). A resend to a survivor of a message C acknowledged answers the original.
// - Presence: with PRESENCE_NODE_TTL_MS=3000 a killed node's users are announced
//   offline by a survivor within TTL + TTL/3 (one heartbeat period after the TTL; the
//   grace is not added on top: the user did not leave, the node died) plus a second of
//   slack; users of the survivors are not, nor a user whose app reconnected to a
//   survivor at once; and a restarted node (same NODE_ID) serves again.
// - SIGTERM on a node of a Redis cluster with sends in flight: accepted sends are
//   answered, stored and delivered to the recipient on the other node, later ones
//   refused with `unavailable`, the process exits 0 within DRAIN_TIMEOUT_MS, and
//   resends to the survivor land once.
//
// Receivers follow docs/PROTOCOL.md's client recipe 2 (lib/devices.js Device: `sync`
// on every connect and on a seq gap); each scenario ends with a marker message per
// sender, sent after everything else, whose arrival closes any gap, so "everything
// arrived" is awaited, never slept for.
//
// Backends: PostgreSQL only (several nodes share storage through it). On SQLite the
// tests are reported SKIPPED with that reason (one node's drain is shutdown.test.js);
// a missing redis-server skips them too, except under CI=true, where it fails.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { backend } from "../lib/harness.js";
import { connect, closeAll } from "../lib/client.js";
import { eventually, presenceOf } from "../lib/api.js";
import { Device, Sender, stamp } from "../lib/devices.js";
import { requireRedis, startRedisCluster } from "../lib/redis.js";

const TTL_MS = 3_000;
const GRACE_MS = 1_000;
const ENV = {
  RATE_SENDS_PER_SEC: "0",
  RATE_SYNC_PER_SEC: "0",
  PRESENCE_NODE_TTL_MS: String(TTL_MS),
  PRESENCE_GRACE_MS: String(GRACE_MS),
};

const missing = requireRedis(); // throws under CI=true when redis-server is missing
const skip = backend !== "postgres"
  ? "several nodes share one PostgreSQL database: set TEST_DATABASE_URL (one node's drain is shutdown.test.js)"
  : missing ?? false;
/** Where it cannot run: one test reported SKIPPED with the reason (counted as skipped, never passed). */
const suite = skip ? (name) => test(name, { skip }, () => {}) : describe;

/** The whole history of a conversation, oldest first (REST, paged by seq). */
async function historyOf(node, user, conversationId) {
  const rows = [];
  for (let after = 0; ; ) {
    const res = await node.http("GET", `/api/messages?conversation_id=${conversationId}&after_seq=${after}&limit=100`, {
      token: user.token,
    });
    assert.equal(res.status, 200, `history of ${conversationId}: ${res.status} ${res.text}`);
    rows.push(...res.body.messages);
    if (!res.body.has_more) return rows;
    after = res.body.messages.at(-1).seq;
  }
}

/**
 * Checks what a sender's conversation holds against what the sender was told: seq is
 * 1..N without gaps, every acknowledged message is stored as acknowledged, every send
 * is stored exactly once, and the sender's messages are numbered in sending order.
 */
function assertStored(rows, sender) {
  rows.forEach((row, k) => assert.equal(row.seq, k + 1, `${sender.label}: seq ${row.seq} at position ${k + 1}`));
  const byId = new Map(rows.map((row) => [row.id, row]));
  for (const { i, ack } of sender.acked) {
    const row = byId.get(ack.message_id);
    assert.ok(row, `${sender.label} #${i}: acknowledged message ${ack.message_id} is not stored`);
    assert.deepEqual([row.seq, row.content], [ack.seq, `${sender.label} #${i}`], `${sender.label} #${i} stored as acknowledged`);
  }
  const mine = rows.filter((row) => row.sender_id === sender.user.id);
  const indexes = mine.map((row) => Number(row.content.split("#")[1]));
  assert.equal(new Set(indexes).size, indexes.length, `${sender.label}: a send stored twice`);
  assert.equal(mine.length, sender.sends.length, `${sender.label}: ${mine.length} stored, ${sender.sends.length} sent`);
  const reordered = indexes.findIndex((n, k) => k > 0 && n < indexes[k - 1]);
  assert.equal(reordered, -1, `${sender.label}: #${indexes[reordered]} stored after #${indexes[reordered - 1]}`);
}

/**
 * Checks a receiving device against storage: it has every message from others in
 * `rows`, no seq names two messages, a copy is the same id and seq again and came only
 * after `killedAt`, and before it live messages came in seq order. Returns the copies.
 */
function assertReceived(device, rows, killedAt) {
  const expected = rows.filter((row) => row.sender_id !== device.user.id);
  const ids = new Set(device.arrivals.map((a) => a.id));
  const missing = expected.filter((row) => !ids.has(row.id));
  assert.deepEqual(missing.map((row) => row.content).slice(0, 5), [], `${device.name}: ${missing.length} messages never arrived`);
  assert.deepEqual(device.conflicts, [], `${device.name}: one seq, two messages`);
  const seqOf = new Map(rows.map((row) => [row.id, row.seq]));
  for (const a of device.arrivals) assert.equal(a.seq, seqOf.get(a.id), `${device.name}: message ${a.id} with seq ${a.seq}`);
  const copies = device.copies().filter((a) => rows.some((row) => row.id === a.id));
  const early = copies.filter((a) => killedAt === null || a.at < killedAt);
  assert.deepEqual(early.map((a) => a.content), [], `${device.name}: handed twice before any node failed`);
  const live = device.arrivals.filter((a) => a.via === "live" && (killedAt === null || a.at < killedAt) && seqOf.has(a.id));
  const outOfOrder = live.findIndex((a, k) => k > 0 && a.seq <= live[k - 1].seq);
  assert.equal(outOfOrder, -1, `${device.name}: live seq ${live[outOfOrder]?.seq} after ${live[outOfOrder - 1]?.seq}`);
  return copies;
}

suite("a Redis cluster losing a node", { timeout: 120_000 }, () => {
  test("SIGKILL mid-traffic: clients move to survivors; every acknowledged message is stored once and reaches every recipient, in each sender's order", async (t) => {
    const cluster = await startRedisCluster(3, { env: ENV });
    const [A, B, C] = cluster.nodes;
    try {
      const [s1, r1, s2, r2, s3, r3, gs, m1, m2] = await A.registerMany("s1", "r1", "s2", "r2", "s3", "r3", "gs", "m1", "m2");
      const group = await A.http("POST", "/api/groups", { token: gs.token, json: { name: "g", member_ids: [m1.id, m2.id] } });
      assert.equal(group.status, 201, group.text);
      const groupId = group.body.group.conversation_id;

      // Who sits where: senders on every node, two of them on C (to be killed) and
      // receivers on C that must move; r3 also keeps a device on A throughout.
      const senders = [
        [new Sender(s1, { to_user_id: r1.id }, "s1", { window: 2 }), C, [r1]],
        [new Sender(s2, { to_user_id: r2.id }, "s2"), A, [r2]],
        [new Sender(s3, { to_user_id: r3.id }, "s3"), B, [r3]],
        [new Sender(gs, { conversation_id: groupId }, "gs", { window: 2 }), C, [m1, m2]],
      ];
      const devices = [
        [new Device(r1, { name: "r1" }), A, null],
        [new Device(r2, { name: "r2" }), C, B],
        [new Device(r3, { name: "r3 moving" }), C, A],
        [new Device(r3, { name: "r3 staying" }), A, null],
        [new Device(m1, { name: "m1" }), A, null],
        [new Device(m2, { name: "m2" }), C, B],
      ];
      for (const [sender, node] of senders) sender.client = await connect(node, sender.user, { name: `${sender.label} sender` });
      for (const [dev, node] of devices) await dev.moveTo(node);

      // Warm-up: cross-node delivery works before anything fails, to every device, even
      // one connected a moment before (redis-cluster's "fresh devices" test in depth).
      const warm = await Promise.all(senders.map(([sender]) => sender.sendCount(3)));
      for (const [k, [sender, , to]] of senders.entries()) {
        const ids = warm[k].map((s) => s.ack?.message_id);
        assert.ok(ids.every(Number.isInteger), `${sender.label} warm-up: ${JSON.stringify(warm[k].map((s) => s.ack ?? s.error))}`);
        for (const [dev] of devices.filter(([dev]) => to.includes(dev.user))) await dev.awaitAll(ids, { timeoutMs: 10_000 });
      }

      let stopped = false;
      // C's senders keep a send in flight on every lane (no pause), so C dies mid-send.
      const runs = senders.map(([sender, node]) => sender.run(() => stopped, { paceMs: node === C ? 0 : 5 }));
      await eventually(() => senders.every(([sender]) => sender.acked.length >= 25), {
        what: "every sender has 25 acknowledged", timeoutMs: 20_000,
      });
      const killedAt = stamp();
      const kill = await C.terminate("SIGKILL");
      assert.equal(kill.signal, "SIGKILL");
      const lastAckedOnC = senders[0][0].acked.at(-1);
      const inFlight = senders.filter(([, node]) => node === C).map(([sender]) => sender.unanswered.length);
      assert.ok(inFlight.some((n) => n > 0), `sends in flight on C when it died: ${inFlight}`);

      // Failover: C's clients go to survivors; senders resend what got no answer.
      const moved = devices.filter(([, , to]) => to).map(([dev, , to]) => dev.moveTo(to));
      const resumed = senders.filter(([, node]) => node === C).map(async ([sender], k) => {
        await runs[senders.findIndex(([s]) => s === sender)]; // its socket is gone: the loop has ended
        sender.client = await connect(k === 0 ? A : B, sender.user, { name: `${sender.label} sender, moved` });
        await sender.resendUnanswered();
        return { running: sender.run(() => stopped, { paceMs: 5 }) };
      });
      await Promise.all(moved);
      const resumedRuns = (await Promise.all(resumed)).map(({ running }) => running);
      const failedOverAt = senders.map(([sender]) => sender.acked.length);
      await eventually(() => senders.every(([sender], k) => sender.acked.length >= failedOverAt[k] + 15), {
        what: "every sender has 15 more acknowledged after the failover", timeoutMs: 30_000,
      });
      stopped = true;
      await Promise.all([...runs, ...resumedRuns]);
      for (const [sender] of senders) {
        if (sender.unanswered.length > 0) await sender.resendUnanswered(); // e.g. timed out on a survivor
        await sender.sendCount(1); // the marker: after everything, it closes any gap
      }

      // A resend to a survivor of a message C acknowledged answers the original.
      const s1Sender = senders[0][0];
      assert.deepEqual(await s1Sender.client.request("send_message", lastAckedOnC.payload), lastAckedOnC.ack,
        "resend to A of a message C acknowledged before it died");

      const conversations = new Map(); // conversation id -> rows
      for (const [sender] of senders) {
        const id = sender.acked[0].ack.conversation_id;
        if (!conversations.has(id)) conversations.set(id, await historyOf(A, sender.user, id));
        assertStored(conversations.get(id), sender);
        assert.deepEqual(sender.refusals, [], `${sender.label}: refused sends`);
      }
      const report = [];
      for (const [dev] of devices) {
        const mine = [...conversations].filter(([, rows]) => rows.some((row) => row.sender_id !== dev.user.id) &&
          dev.arrivals.some((a) => rows.some((row) => row.id === a.id)));
        assert.ok(mine.length > 0, `${dev.name}: has a conversation`);
        for (const [id, rows] of mine) {
          await dev.awaitAll(rows.filter((row) => row.sender_id !== dev.user.id).map((row) => row.id), { timeoutMs: 15_000 });
          const copies = assertReceived(dev, rows, killedAt);
          report.push(`${dev.name}: ${rows.length} in conversation ${id}, ${copies.length} handed twice`);
        }
      }
      const sent = senders.map(([sender]) => `${sender.label} ${sender.sends.length} sent (${sender.sends.filter((s) => s.tries > 1).length} resent)`);
      t.diagnostic(`SIGKILL of C: ${sent.join(", ")}; ${report.join("; ")}`);
      await closeAll(...senders.map(([sender]) => sender.client), ...devices.map(([dev]) => dev.client));
    } finally {
      await cluster.stop();
    }
  });

  test("a killed node's users go offline for contacts on survivors within TTL + TTL/3; survivors' users, and one who moved to a survivor at once, stay online; the node restarted serves again", async (t) => {
    const cluster = await startRedisCluster(3, { env: ENV });
    const [A, B, C] = cluster.nodes;
    try {
      const [kat, lou, max, wes] = await A.registerMany("kat", "lou", "max", "wes");
      // Presence goes to the people one has written to.
      for (const user of [kat, lou, max]) {
        const socket = await connect(A, user, { name: `${user.display_name} (set-up)` });
        assert.equal((await socket.request("send_message", { to_user_id: wes.id, content: "hi" }))?.status, "sent");
        await socket.close();
      }
      await eventually(async () => (await presenceOf(B, wes, [kat.id, lou.id, max.id])).every((p) => !p.online), {
        what: "kat, lou and max offline after set-up", timeoutMs: GRACE_MS + 5_000,
      });
      const wesA = await connect(A, wes, { name: "wes on A" });
      const wesB = await connect(B, wes, { name: "wes on B" });
      const katC = await connect(C, kat, { name: "kat on C" });
      const louB = await connect(B, lou, { name: "lou on B" });
      const maxC = await connect(C, max, { name: "max on C" });
      for (const socket of [wesA, wesB]) {
        for (const user of [kat, lou, max]) await socket.until("user_online", (e) => e.user_id === user.id);
      }

      const killedAt = Date.now();
      await C.terminate("SIGKILL");
      // max's app reconnects at once, to A: he never went offline, whatever C's death.
      const maxA = await connect(A, max, { name: "max on A, after C died" });
      // A survivor notices within TTL + TTL/3 (the heartbeat period); a second of slack.
      const bound = TTL_MS + TTL_MS / 3 + 1_000;
      const offline = await wesA.until("user_offline", (e) => e.user_id === kat.id, { timeoutMs: bound + 5_000 });
      const took = Date.now() - killedAt;
      t.diagnostic(`kat (on the killed node) announced offline ${took} ms after the kill (TTL ${TTL_MS}, grace ${GRACE_MS})`);
      assert.ok(took <= bound, `user_offline after ${took} ms; bound TTL + TTL/3 + 1 s = ${bound} ms`);
      await wesB.until("user_offline", (e) => e.user_id === kat.id, { timeoutMs: 2_000 });
      const lastSeen = Date.parse(offline.last_seen);
      assert.ok(lastSeen >= killedAt - TTL_MS - 1_000 && lastSeen <= Date.now() + 1_000, `last_seen ${offline.last_seen}`);
      // lou (on B, alive) was not taken for dead along with C, nor max, now on A.
      for (const socket of [wesA, wesB]) {
        assert.deepEqual(socket.collect("user_offline").map((e) => e.user_id), [kat.id], `${socket.name}: who went offline`);
      }
      const seen = await presenceOf(A, wes, [kat.id, lou.id, max.id]);
      assert.deepEqual(seen.map((p) => [p.user_id, p.online]).sort(), [[kat.id, false], [lou.id, true], [max.id, true]].sort());
      t.diagnostic(`max (moved from C to A at once) was announced online ${wesA.collect("user_online").filter((e) => e.user_id === max.id).length} time(s)`);

      // C comes back (same NODE_ID): kat connects there and is online again, and her
      // message crosses to wes on A and B live.
      await C.restart();
      const katAgain = await connect(C, kat, { name: "kat on C, restarted" });
      await eventually(() => wesA.collect("user_online").filter((e) => e.user_id === kat.id).length === 2, {
        what: "wes on A hears kat online again",
      });
      const ack = await katAgain.request("send_message", { to_user_id: wes.id, content: "back" });
      for (const socket of [wesA, wesB]) {
        assert.equal((await socket.until("new_message", (m) => m.message_id === ack.message_id)).content, "back");
        // Long after C's users were swept: still only kat ever went offline.
        assert.deepEqual(socket.collect("user_offline").map((e) => e.user_id), [kat.id], `${socket.name}: who went offline, in the end`);
      }
      await closeAll(wesA, wesB, louB, katAgain, katC, maxA, maxC);
    } finally {
      await cluster.stop();
    }
  });

  test("SIGTERM drains a node with sends in flight: accepted sends answered, stored and delivered on the other node; resends land once", async (t) => {
    const cluster = await startRedisCluster(2, { env: ENV });
    const [A, B] = cluster.nodes;
    try {
      const [alice, bob] = await A.registerMany("alice", "bob");
      const sender = new Sender(alice, { to_user_id: bob.id }, "alice", { window: 4 });
      sender.client = await connect(A, alice, { name: "alice on A" });
      const gone = new Promise((resolve) => sender.client.socket.once("disconnect", resolve));
      const bobRecipe = new Device(bob, { name: "bob on B (recipe)" });
      const bobPlain = new Device(bob, { name: "bob on B (new_message only)", recipe: false });
      await bobRecipe.moveTo(B);
      await bobPlain.moveTo(B);
      // Warm-up: one message crosses to both of bob's devices before the drain traffic.
      const hello = (await sender.sendCount(1))[0].ack;
      assert.equal(hello?.status, "sent", JSON.stringify(hello));
      await bobRecipe.awaitAll([hello.message_id], { timeoutMs: 10_000 });
      await bobPlain.awaitAll([hello.message_id], { timeoutMs: 10_000 });

      let stopped = false;
      const running = sender.run(() => stopped, { paceMs: 1 });
      await eventually(() => sender.acked.length >= 20, { what: "20 acknowledged", timeoutMs: 15_000 });
      const exit = await A.terminate("SIGTERM");
      await running;
      assert.equal(exit.code, 0, `exit ${JSON.stringify(exit)}`);
      assert.ok(exit.ms < 10_000, `exited after ${exit.ms} ms (DRAIN_TIMEOUT_MS 10 s)`);
      assert.equal(await gone, "transport close", "dropped to reconnect, not disconnected for good");
      const refusedCodes = sender.refusals.map((r) => r.answer?.error?.code);
      assert.ok(refusedCodes.every((code) => code === "unavailable"), `refusals: ${JSON.stringify(sender.refusals.slice(0, 3))}`);
      const ackedOnA = sender.acked.slice(1).map((s) => s.ack.message_id); // after the warm-up
      t.diagnostic(`drain: ${ackedOnA.length} acknowledged, ${sender.refusals.length} refused, ` +
        `${sender.unanswered.length - sender.refusals.length} cut off; exit after ${exit.ms} ms`);

      // What A acknowledged reached bob's devices on B by itself (no sync needed).
      await bobPlain.awaitAll(ackedOnA, { timeoutMs: 10_000 });

      // alice's app reconnects to B and resends the rest with the same client_msg_id.
      stopped = true;
      sender.client = await connect(B, alice, { name: "alice on B" });
      await sender.resendUnanswered();
      await sender.sendCount(1);
      const rows = await historyOf(B, bob, hello.conversation_id);
      assertStored(rows, sender);
      await bobRecipe.awaitAll(rows.map((row) => row.id), { timeoutMs: 10_000 });
      const copies = assertReceived(bobRecipe, rows, null);
      assert.deepEqual(copies, [], "no copies without a failure");
      const health = await B.http("GET", "/health");
      assert.deepEqual([health.status, health.body?.redis], [200, "connected"], health.text);
      await closeAll(sender.client, bobRecipe.client, bobPlain.client);
    } finally {
      await cluster.stop();
    }
  });
});
