// Three nodes joined over Redis (issue 14): everything a user sees on one node works
// when the people of a conversation sit on different nodes. Direct and group delivery
// to every device (also to devices connected a moment before the message), message_sent / message_delivered / message_read back to the
// sender's devices wherever they are, conversation_read to the reader's other devices,
// the offline queue, typing, presence (cluster-wide, with the grace period working for
// a device that moves between nodes), group membership changes taking effect on every
// node at once, token revocation reaching sockets on other nodes, and a client_msg_id
// resend to another node.
//
// Set-up: lib/redis.js startRedisCluster(3): a private redis-server on a free port,
// three server processes ("A", "B", "C", NODE_ID node-a/b/c) on one PostgreSQL
// database with one JWT secret. Users register on one node and connect wherever the
// test puts them (tokens cross nodes too).
//
// Backends: PostgreSQL only. Several nodes share storage through PostgreSQL, so on
// SQLite (no TEST_DATABASE_URL) this file's tests are reported as SKIPPED with that
// reason, never as passed; what Redis means for ONE node (the /health states, serving
// through an outage) runs on SQLite too, in redis-outage.test.js. A missing
// redis-server skips the file too, except under CI=true, where it fails.

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { backend, ISO_UTC } from "../lib/harness.js";
import { connect, closeAll, sleep } from "../lib/client.js";
import { createGroup, eventually, history, presenceOf } from "../lib/api.js";
import { requireRedis, startRedisCluster } from "../lib/redis.js";

const GRACE_MS = 1_500;
/** How long a user_offline may take beyond the grace before we call it missing. */
const SLACK_MS = 3_000;
const ENV = {
  RATE_SENDS_PER_SEC: "0",
  RATE_SYNC_PER_SEC: "0",
  PRESENCE_GRACE_MS: String(GRACE_MS),
  PRESENCE_NODE_TTL_MS: "3000",
};

const missing = requireRedis(); // throws under CI=true when redis-server is missing
const skip = backend !== "postgres"
  ? "several nodes share one PostgreSQL database: set TEST_DATABASE_URL (one node with Redis runs in redis-outage.test.js)"
  : missing ?? false;
/** Where it cannot run: one test reported SKIPPED with the reason (counted as skipped, never passed). */
const suite = skip ? (name) => test(name, { skip }, () => {}) : describe;

suite("three nodes over Redis", { timeout: 120_000 }, () => {
  let cluster;
  let A;
  let B;
  let C;
  before(async () => {
    cluster = await startRedisCluster(3, { env: ENV });
    [A, B, C] = cluster.nodes;
  });
  after(() => cluster?.stop());

  const label = (node) => ({ [A.port]: "A", [B.port]: "B", [C.port]: "C" })[node.port];
  /** A device of `user` on `node`, named after both. */
  const device = (node, user, name = user.display_name) => connect(node, user, { name: `${name} on ${label(node)}` });

  /** `from` writes once to `to` (from node A) and disconnects: `to` may now see `from`'s presence. */
  async function writeTo(from, to) {
    const socket = await device(A, from, `${from.display_name} (set-up)`);
    const ack = await socket.request("send_message", { to_user_id: to.id, content: "hello" });
    assert.equal(ack?.status, "sent", `set-up message: ${JSON.stringify(ack)}`);
    await socket.close();
    return ack;
  }

  test("/health on every node: 200, redis connected, its own node id", async () => {
    const seen = [];
    for (const [i, node] of cluster.nodes.entries()) {
      // The adapter connects at start; give it a moment rather than a fixed sleep.
      const res = await eventually(async () => {
        const r = await node.http("GET", "/health");
        return r.body?.redis === "connected" ? r : null;
      }, { what: `node ${label(node)} reports redis connected`, timeoutMs: 10_000 });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.status, "ok", res.text);
      assert.equal(res.body.database, "connected", res.text);
      assert.equal(res.body.node, `node-${"abc"[i]}`, res.text);
      seen.push(res.body.node);
    }
    assert.equal(new Set(seen).size, 3);
  });

  test("a direct message from A reaches the recipient's devices on B and C; sent, delivered and read come back to the sender's devices on A and C", async () => {
    const [alice, bob] = await A.registerMany("alice", "bob");
    const aliceA = await device(A, alice);
    const aliceC = await device(C, alice);
    const bobB = await device(B, bob);
    const bobC = await device(C, bob);

    const ack = await aliceA.request("send_message", { to_user_id: bob.id, content: "across nodes" });
    assert.equal(ack?.status, "sent", JSON.stringify(ack));
    assert.deepEqual(await aliceA.expect("message_sent"), ack);
    const expected = {
      message_id: ack.message_id,
      conversation_id: ack.conversation_id,
      from_user_id: alice.id,
      content: "across nodes",
      sent_at: ack.sent_at,
      seq: 1,
    };
    // The protocol's fields as sent (later additions, e.g. `version`, are not this test's subject).
    const known = (m) => Object.fromEntries(Object.keys(expected).map((key) => [key, m[key]]));
    for (const bobDevice of [bobB, bobC]) {
      assert.deepEqual(known(await bobDevice.expect("new_message")), expected, bobDevice.name);
    }
    // Delivered: to every device of the sender, the one on another node included.
    for (const aliceDevice of [aliceA, aliceC]) {
      const delivered = await aliceDevice.expect("message_delivered");
      assert.equal(delivered.message_id, ack.message_id, aliceDevice.name);
      assert.equal(delivered.conversation_id, ack.conversation_id, aliceDevice.name);
      assert.match(delivered.delivered_at, ISO_UTC);
    }
    // The sender's own other device never gets her message as new_message.
    await aliceC.expectNone("new_message", { withinMs: 100 });

    const marked = await bobB.request("mark_read", { conversation_id: ack.conversation_id });
    assert.deepEqual(marked, { success: true, messages_marked: 1 });
    for (const aliceDevice of [aliceA, aliceC]) {
      const read = await aliceDevice.expect("message_read");
      assert.deepEqual(
        { ...read, read_at: undefined },
        { conversation_id: ack.conversation_id, message_id: ack.message_id, reader_id: bob.id, read_at: undefined },
        aliceDevice.name,
      );
      assert.match(read.read_at, ISO_UTC);
    }
    assert.deepEqual(await bobC.expect("conversation_read"), {
      conversation_id: ack.conversation_id,
      up_to_message_id: ack.message_id,
    });
    // The reading device itself is not told (bobC's copy has arrived by now).
    await bobB.expectNone("conversation_read", { withinMs: 100 });
    for (const socket of [aliceA, aliceC, bobB, bobC]) assert.deepEqual(socket.collect("error"), [], socket.name);
    await closeAll(aliceA, aliceC, bobB, bobC);
  });

  test("fresh devices on every node, rounds of them: each gets what is sent to its user right after it connects, wherever the sender is", async () => {
    // Round after round, new users: senders on every node, receivers with one or two
    // devices on other nodes, a group; everything sent at once as soon as all are
    // connected. Every device must get every message meant for it, live: no later
    // message comes to reveal a gap, and a user's other device having it leaves
    // nothing in the offline queue.
    const missed = [];
    for (let round = 0; round < 12; round++) {
      const [s1, r1, s2, r2, s3, r3, gs, m1, m2] = await A.registerMany("s1", "r1", "s2", "r2", "s3", "r3", "gs", "m1", "m2");
      const group = await createGroup(A, gs, [m1, m2], { name: `round ${round}` });
      const sends = [
        [s1, C, { to_user_id: r1.id }, [[r1, A]]],
        [s2, A, { to_user_id: r2.id }, [[r2, C]]],
        [s3, B, { to_user_id: r3.id }, [[r3, C], [r3, A]]],
        [gs, C, { conversation_id: group.conversation_id }, [[m1, A], [m2, B], [m2, C]]],
      ];
      const senders = [];
      const receivers = [];
      for (const [user, node, target, to] of sends) {
        senders.push(await device(node, user));
        for (const [member, at] of to) receivers.push({ socket: await device(at, member), from: senders.length - 1 });
      }
      const acks = await Promise.all(sends.map(([, , target], k) =>
        Promise.all([0, 1, 2].map((i) => senders[k].request("send_message", { ...target, content: `round ${round} #${i}` })))));
      for (const { socket, from } of receivers) {
        const ids = acks[from].map((ack) => ack?.message_id);
        const got = await socket.expectMany("new_message", 3, { timeoutMs: 3_000 }).catch(() => socket.collect("new_message"));
        const gotIds = got.map((m) => m.message_id);
        if (!ids.every((id) => gotIds.includes(id))) {
          missed.push(`round ${round}: ${socket.name} got ${gotIds.length} of ${ids.length} from ${sends[from][0].display_name} on ${label(sends[from][1])}`);
        }
      }
      await closeAll(senders, receivers.map(({ socket }) => socket));
    }
    assert.deepEqual(missed, [], "connected devices that never got a message meant for them");
  });

  test("the offline queue across nodes: delivered is reported only once the recipient's device connects, on another node", async () => {
    const [alice, bob, carol] = await A.registerMany("alice", "bob", "carol");
    const aliceA = await device(A, alice);
    const carolB = await device(B, carol);
    const queued = await aliceA.request("send_message", { to_user_id: bob.id, content: "while you were away" });
    assert.equal(queued?.status, "sent", JSON.stringify(queued));
    // Something that must arrive later: carol (online on B) gets hers and alice her
    // receipt for it; bob's message, with no device of bob's anywhere, is not delivered.
    const live = await aliceA.request("send_message", { to_user_id: carol.id, content: "you are here" });
    assert.equal((await carolB.expect("new_message")).message_id, live.message_id);
    assert.equal((await aliceA.expect("message_delivered")).message_id, live.message_id);
    await aliceA.expectNone("message_delivered", { withinMs: 200 });
    const [before] = (await history(C, alice, queued.conversation_id)).messages;
    assert.equal(before.delivered_at, null, "not delivered while bob has no device");

    const bobC = await device(C, bob);
    const got = await bobC.expect("new_message");
    assert.equal(got.message_id, queued.message_id);
    assert.equal(got.content, "while you were away");
    const delivered = await aliceA.expect("message_delivered");
    assert.equal(delivered.message_id, queued.message_id);
    const [row] = (await history(B, bob, queued.conversation_id)).messages;
    assert.equal(row.id, queued.message_id);
    assert.match(row.delivered_at ?? "", ISO_UTC, "history on B says delivered");
    await closeAll(aliceA, carolB, bobC);
  });

  test("two nodes writing one direct chat at once: each side receives the other's messages live, in order, once", async () => {
    const [alice, bob] = await A.registerMany("alice", "bob");
    const aliceA = await device(A, alice);
    const bobB = await device(B, bob);
    const first = await aliceA.request("send_message", { to_user_id: bob.id, content: "opening" });
    await bobB.expect("new_message");
    const N = 80;
    const burst = (socket, to, who) =>
      Promise.all(Array.from({ length: N }, (_, i) =>
        socket.request("send_message", { to_user_id: to.id, content: `${who} #${i}` }, { timeoutMs: 20_000 })));
    const [fromAlice, fromBob] = await Promise.all([burst(aliceA, bob, "alice"), burst(bobB, alice, "bob")]);
    for (const ack of [...fromAlice, ...fromBob]) assert.equal(ack?.status, "sent", JSON.stringify(ack));

    const gotByBob = await bobB.expectMany("new_message", N, { timeoutMs: 15_000 });
    const gotByAlice = await aliceA.expectMany("new_message", N, { timeoutMs: 15_000 });
    assert.deepEqual(gotByBob.map((m) => [m.message_id, m.seq, m.content]), fromAlice.map((a, i) => [a.message_id, a.seq, `alice #${i}`]));
    assert.deepEqual(gotByAlice.map((m) => [m.message_id, m.seq, m.content]), fromBob.map((a, i) => [a.message_id, a.seq, `bob #${i}`]));
    // seq is 1..2N+1, shared by both writers.
    const seqs = [first.seq, ...fromAlice.map((a) => a.seq), ...fromBob.map((a) => a.seq)].sort((x, y) => x - y);
    assert.deepEqual(seqs, Array.from({ length: 2 * N + 1 }, (_, i) => i + 1));
    // No copies: after a last message that must arrive, nothing more came.
    const last = await aliceA.request("send_message", { to_user_id: bob.id, content: "last" });
    assert.equal((await bobB.expect("new_message")).message_id, last.message_id);
    await bobB.expectNone("new_message", { withinMs: 0 });
    await aliceA.expectNone("new_message", { withinMs: 0 });
    await closeAll(aliceA, bobB);
  });

  test("a group spread over three nodes: group_created, every message to every other member's devices, receipts across nodes", async () => {
    const [ann, ben, cat, dan] = await A.registerMany("ann", "ben", "cat", "dan");
    const annA = await device(A, ann);
    const benB = await device(B, ben);
    const benC = await device(C, ben);
    const catC = await device(C, cat);
    const danA = await device(A, dan);
    const danB = await device(B, dan);
    const all = [annA, benB, benC, catC, danA, danB];
    const group = await createGroup(B, ann, [ben, cat, dan], { name: "spread" });
    const id = group.conversation_id;
    for (const socket of all) {
      assert.deepEqual(await socket.expect("group_created"), { conversation_id: id, actor_id: ann.id, name: "spread" }, socket.name);
    }

    const fromAnn = await annA.request("send_message", { conversation_id: id, content: "from A" });
    assert.equal(fromAnn?.status, "sent", JSON.stringify(fromAnn));
    for (const socket of [benB, benC, catC, danA, danB]) {
      const got = await socket.expect("new_message");
      assert.deepEqual([got.message_id, got.from_user_id, got.seq], [fromAnn.message_id, ann.id, 1], socket.name);
    }
    // Delivered once every other member has it on some device.
    assert.equal((await annA.expect("message_delivered")).message_id, fromAnn.message_id);

    const fromCat = await catC.request("send_message", { conversation_id: id, content: "from C" });
    for (const socket of [annA, benB, benC, danA, danB]) {
      assert.equal((await socket.expect("new_message")).message_id, fromCat.message_id, socket.name);
    }
    assert.equal((await catC.expect("message_delivered")).message_id, fromCat.message_id);
    // Neither sender got their own message back.
    await annA.expectNone("new_message", { withinMs: 0 });
    await catC.expectNone("new_message", { withinMs: 0 });

    // ben reads on B: both senders (on A and C) hear it, ben's device on C is told.
    assert.deepEqual(await benB.request("mark_read", { conversation_id: id }), { success: true, messages_marked: 2 });
    const readByBen = (read) => read.reader_id === ben.id;
    const annRead = await annA.until("message_read", readByBen);
    // Each sender hears of their own newest message read.
    assert.deepEqual([annRead.conversation_id, annRead.message_id], [id, fromAnn.message_id]);
    const catRead = await catC.until("message_read", readByBen);
    assert.deepEqual([catRead.conversation_id, catRead.message_id], [id, fromCat.message_id]);
    assert.deepEqual(await benC.expect("conversation_read"), { conversation_id: id, up_to_message_id: fromCat.message_id });

    // Group events from a REST call on one node reach every member's devices on all three.
    const renamed = await C.http("PATCH", `/api/groups/${id}`, { token: ann.token, json: { name: "renamed" } });
    assert.equal(renamed.status, 200, renamed.text);
    const promoted = await B.http("PATCH", `/api/groups/${id}/members/${ben.id}`, { token: ann.token, json: { role: "admin" } });
    assert.equal(promoted.status, 200, promoted.text);
    for (const socket of all) {
      assert.deepEqual(await socket.expect("group_updated"), { conversation_id: id, actor_id: ann.id, name: "renamed" }, socket.name);
      assert.deepEqual(await socket.expect("role_changed"), { conversation_id: id, actor_id: ann.id, user_id: ben.id, role: "admin" }, socket.name);
    }
    await closeAll(all);
  });

  test("typing crosses nodes, in a direct chat and a group, never to the typer's own devices", async () => {
    const [alice, bob, cat] = await A.registerMany("alice", "bob", "cat");
    const ack = await writeTo(alice, bob);
    const aliceA = await device(A, alice);
    const bobB = await device(B, bob);
    const bobC = await device(C, bob);
    bobB.emit("typing", { to_user_id: alice.id, is_typing: true });
    assert.deepEqual(await aliceA.expect("typing"), { conversation_id: ack.conversation_id, user_id: bob.id, is_typing: true });
    bobB.emit("typing", { conversation_id: ack.conversation_id, is_typing: false });
    assert.deepEqual(await aliceA.expect("typing"), { conversation_id: ack.conversation_id, user_id: bob.id, is_typing: false });

    const catC = await device(C, cat);
    const group = await createGroup(A, alice, [bob, cat], { name: "typists" });
    // Devices join a group's room before they hear group_created: wait for it everywhere.
    for (const socket of [aliceA, bobB, bobC, catC]) await socket.expect("group_created");
    catC.emit("typing", { conversation_id: group.conversation_id, is_typing: true });
    const typingCat = { conversation_id: group.conversation_id, user_id: cat.id, is_typing: true };
    for (const socket of [aliceA, bobB, bobC]) {
      assert.deepEqual(await socket.until("typing", (t) => t.user_id === cat.id), typingCat, socket.name);
    }
    await catC.expectNone("typing", { withinMs: 0 });
    // bob's own typing (from B) reached neither of his devices.
    for (const socket of [bobB, bobC]) {
      assert.deepEqual(socket.collect("typing").filter((t) => t.user_id === bob.id), [], socket.name);
    }
    await closeAll(aliceA, bobB, bobC, catC);
  });

  test("presence is cluster-wide: online on C is seen from B and A; offline only after the last device on any node leaves, after the grace", async () => {
    const [alice, bob] = await A.registerMany("alice", "bob");
    await writeTo(alice, bob);
    await eventually(async () => (await presenceOf(B, bob, [alice.id]))[0]?.online === false, {
      what: "alice offline after set-up", timeoutMs: GRACE_MS + SLACK_MS,
    });
    const bobB = await device(B, bob);
    const aliceC = await device(C, alice);
    assert.deepEqual(await bobB.expect("user_online"), { user_id: alice.id });
    // Node A has no device of alice's, yet knows she is online.
    assert.equal((await presenceOf(A, bob, [alice.id]))[0]?.online, true, "presence on A");

    const aliceA = await device(A, alice); // a second device, on another node: no second announcement
    await aliceC.close(); // the first device leaves; alice is still online on A
    await sleep(GRACE_MS + 300); // the window in which a wrong user_offline would come
    assert.equal((await presenceOf(B, bob, [alice.id]))[0]?.online, true, "alice still online (device on A)");

    const leftAt = Date.now();
    await aliceA.close();
    const offline = await bobB.expect("user_offline", { timeoutMs: GRACE_MS + SLACK_MS });
    const heardAfter = Date.now() - leftAt;
    assert.equal(offline.user_id, alice.id);
    assert.ok(heardAfter >= GRACE_MS - 100, `user_offline came ${heardAfter} ms after the last device left (grace ${GRACE_MS})`);
    assert.deepEqual(bobB.collect("user_online"), [{ user_id: alice.id }], "one user_online only");
    assert.deepEqual(bobB.collect("user_offline"), [offline], "one user_offline only");
    const [onC] = await presenceOf(C, bob, [alice.id]);
    assert.equal(onC.online, false);
    assert.equal(Date.parse(onC.last_seen), Date.parse(offline.last_seen), "last_seen as announced");
    await bobB.close();
  });

  test("the grace works across nodes: a device moving from A to B within the grace causes no user_offline/user_online flap", async () => {
    const [alice, bob] = await A.registerMany("alice", "bob");
    await writeTo(alice, bob);
    await eventually(async () => (await presenceOf(C, bob, [alice.id]))[0]?.online === false, {
      what: "alice offline after set-up", timeoutMs: GRACE_MS + SLACK_MS,
    });
    const bobC = await device(C, bob);
    const onA = await device(A, alice);
    assert.deepEqual(await bobC.expect("user_online"), { user_id: alice.id });

    // The phone loses node A and comes back through node B well within the grace.
    await onA.close();
    const onB = await device(B, alice);
    // Stay there past the grace: a flap (offline announced by A, online by B) would come now.
    await sleep(GRACE_MS + 500);
    const leftAt = Date.now();
    await onB.close();
    // Something that must arrive: the real offline, one grace after leaving B.
    const offline = await bobC.expect("user_offline", { timeoutMs: GRACE_MS + SLACK_MS });
    assert.equal(offline.user_id, alice.id);
    assert.ok(Date.now() - leftAt >= GRACE_MS - 100, "the only user_offline is the one after leaving B");
    assert.ok(Date.parse(offline.last_seen) >= leftAt - 1_000, `last_seen ${offline.last_seen} is when alice left B`);
    assert.deepEqual(bobC.collect("user_online"), [{ user_id: alice.id }], "no second user_online: no flap");
    assert.deepEqual(bobC.collect("user_offline"), [offline], "no user_offline while moving: no flap");
    await bobC.close();
  });

  test("membership changes on A take effect on every node at once: an added member's devices on B and C get the next message; a removed one gets nothing more", async () => {
    const [ann, ben, eve] = await A.registerMany("ann", "ben", "eve");
    const annA = await device(A, ann);
    const benB = await device(B, ben);
    const eveB = await device(B, eve);
    const eveC = await device(C, eve);
    const group = await createGroup(A, ann, [ben], { name: "club" });
    const id = group.conversation_id;
    const path = `/api/groups/${id}`;

    const added = await A.http("POST", `${path}/members`, { token: ann.token, json: { user_ids: [eve.id] } });
    assert.equal(added.status, 200, added.text);
    // At once: the very next message, sent right after the answer, reaches eve on B and C.
    const welcome = await annA.request("send_message", { conversation_id: id, content: "welcome eve" });
    for (const socket of [eveB, eveC]) {
      assert.deepEqual(await socket.until("member_added", (e) => e.user_id === eve.id),
        { conversation_id: id, actor_id: ann.id, user_id: eve.id, role: "member" }, socket.name);
      const got = await socket.until("new_message", (m) => m.conversation_id === id);
      assert.equal(got.message_id, welcome.message_id, socket.name);
    }

    const removed = await C.http("DELETE", `${path}/members/${eve.id}`, { token: ann.token });
    assert.equal(removed.status, 200, removed.text);
    const afterRemoval = await benB.request("send_message", { conversation_id: id, content: "eve is gone" });
    assert.equal(afterRemoval?.status, "sent", JSON.stringify(afterRemoval));
    // Must arrive: the remaining member gets it, and eve gets a later direct message
    // from the same sender on both devices. Only then: eve never got the group message.
    assert.equal((await annA.until("new_message", (m) => m.message_id === afterRemoval.message_id)).content, "eve is gone");
    const direct = await benB.request("send_message", { to_user_id: eve.id, content: "just us" });
    for (const socket of [eveB, eveC]) {
      await socket.until("new_message", (m) => m.message_id === direct.message_id);
      assert.deepEqual(await socket.until("member_removed", (e) => e.user_id === eve.id),
        { conversation_id: id, actor_id: ann.id, user_id: eve.id }, socket.name);
      const fromGroup = socket.collect("new_message").filter((m) => m.conversation_id === id).map((m) => m.content);
      assert.deepEqual(fromGroup, ["welcome eve"], `${socket.name}: group messages after removal`);
    }
    // And her devices on every node are refused in the group, as is her REST reading.
    for (const node of [A, B, C]) {
      const read = await node.http("GET", `/api/messages?conversation_id=${id}`, { token: eve.token });
      assert.equal(read.status, 404, `history on node ${label(node)}: ${read.text}`);
    }
    for (const socket of [eveB, eveC]) {
      const refused = await socket.request("send_message", { conversation_id: id, content: "still here?" });
      assert.equal(refused?.error?.code, "conversation_not_found", `${socket.name}: ${JSON.stringify(refused)}`);
      socket.emit("typing", { conversation_id: id, is_typing: true });
    }
    await annA.expectNone("typing", { withinMs: 300 });
    await closeAll(annA, benB, eveB, eveC);
  });

  test("logout on node B ends the sockets of that token on C, not the user's other sessions", async () => {
    const [alice] = await A.registerMany("alice");
    const login = await A.http("POST", "/api/auth/login", { json: { email: alice.email, password: alice.password } });
    assert.equal(login.status, 200, login.text);
    const laptop = { ...alice, token: login.body.token };
    const laptopC = await device(C, laptop, "alice laptop");
    const phoneA = await device(A, alice, "alice phone");
    const gone = new Promise((resolve) => laptopC.socket.once("disconnect", resolve));
    const res = await B.http("POST", "/api/auth/logout", { token: laptop.token });
    assert.equal(res.status, 200, res.text);
    assert.equal((await laptopC.expect("error")).code, "token_revoked");
    await gone;
    // The phone's session (another token) goes on, on its node.
    const [bob] = await A.registerMany("bob");
    const ack = await phoneA.request("send_message", { to_user_id: bob.id, content: "still here" });
    assert.equal(ack?.status, "sent", JSON.stringify(ack));
    await phoneA.expectNone("error", { withinMs: 0 });
    await phoneA.close();
  });

  test("logout-all on node A ends the user's sockets on B and C; the token is refused everywhere", async () => {
    const [alice] = await A.registerMany("alice");
    const onB = await device(B, alice);
    const onC = await device(C, alice);
    const gone = [onB, onC].map((socket) => new Promise((resolve) => socket.socket.once("disconnect", resolve)));
    const res = await A.http("POST", "/api/auth/logout-all", { token: alice.token });
    assert.equal(res.status, 200, res.text);
    for (const socket of [onB, onC]) assert.equal((await socket.expect("error")).code, "token_revoked", socket.name);
    await Promise.all(gone);
    for (const node of [A, B, C]) {
      const refused = await connect(node, alice, { name: `alice again on ${label(node)}` }).then(
        (socket) => (socket.close(), "connected"),
        (err) => err.message,
      );
      assert.match(refused, /token revoked/, `node ${label(node)}`);
    }
  });

  test("a resend with the same client_msg_id to another node answers the original; the recipient sees the message once", async () => {
    const [alice, bob] = await A.registerMany("alice", "bob");
    const aliceA = await device(A, alice);
    const aliceB = await device(B, alice);
    const bobC = await device(C, bob);
    const payload = { to_user_id: bob.id, content: "exactly once", client_msg_id: randomUUID() };
    const original = await aliceA.request("send_message", payload);
    assert.equal(original?.status, "sent", JSON.stringify(original));
    assert.deepEqual(await aliceB.request("send_message", payload), original, "node B answers the original");
    assert.deepEqual(await aliceA.request("send_message", payload), original, "node A again");
    const next = await aliceB.request("send_message", { to_user_id: bob.id, content: "next" });
    assert.equal(next.seq, original.seq + 1, "the resends used up no seq");
    const got = await bobC.expectMany("new_message", 2);
    assert.deepEqual(got.map((m) => m.message_id), [original.message_id, next.message_id]);
    await bobC.expectNone("new_message", { withinMs: 200 });
    await closeAll(aliceA, aliceB, bobC);
  });
});
