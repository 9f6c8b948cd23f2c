// Several nodes, one database: each conversation's `seq` stays gap-free and ordered
// when two nodes write to it at once (issue 14, "Sequencing across nodes"), and a
// `client_msg_id` resend to another node answers the original message.
//
// Backends:
// - PostgreSQL (TEST_DATABASE_URL set): two server processes ("node A" and "node B") on
//   one shared database with one JWT secret (harness startCluster). Users are
//   registered on one node and connect to the other, so tokens cross nodes too.
//   Without Redis the nodes do not relay live events to each other yet; everything
//   asserted here is what storage answers (acks, REST history, `sync`), which both
//   nodes share already.
// - SQLite (no TEST_DATABASE_URL): several nodes on one database are PostgreSQL's job,
//   so the same checks run on ONE node: "node A" and "node B" are the same server and
//   the concurrent writers are separate sockets writing one conversation at once. The
//   file never skips.
//
// What a user can check: every send is acknowledged `sent` (a deadlock between the
// nodes' batches would answer `internal_error`), history holds exactly the
// acknowledged messages, seq runs 1..N without gaps or repeats, each sender's messages
// are numbered in the order that sender sent them, each acknowledged `message_id` has
// the seq its ack reported, and both nodes (REST and `sync`) answer the same history.

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { backend, startCluster, startServer } from "../lib/harness.js";
import { connect, closeAll } from "../lib/client.js";
import { createGroup } from "../lib/api.js";

/** Sends in flight per socket at once ("as fast as acks allow"). */
const WINDOW = 8;
/** A batch stuck behind another node's lock shows up as a slow ack, not a lost one. */
const ACK_TIMEOUT_MS = 30_000;
const TEST_TIMEOUT_MS = 180_000;
// Bursts of hundreds per user; the send rate limit has its own tests (hardening.test.js).
const ENV = { RATE_SENDS_PER_SEC: "0", RATE_SYNC_PER_SEC: "0" };

let nodeA;
let nodeB;
let nodes;
before(async () => {
  if (backend === "postgres") {
    nodes = await startCluster(2, { env: ENV });
  } else {
    nodes = [await startServer({ env: ENV })];
  }
  [nodeA, nodeB = nodeA] = nodes;
});
after(() => Promise.all((nodes ?? []).map((node) => node.stop())));

const where = (node) => (node === nodeA ? "A" : "B");

/** Registers `label` on the node it will NOT connect to (tokens must cross nodes). */
async function userOn(node, label) {
  const other = node === nodeA ? nodeB : nodeA;
  return { ...(await other.register(label)), node };
}

/** Connects `user` to the node it belongs to. */
function connectUser(user, name = `${user.display_name} (node ${where(user.node)})`) {
  return connect(user.node, user, { name });
}

/**
 * Sends `count` messages to `target` ({ to_user_id } or { conversation_id }, or a
 * function of the message's index giving one) from `client`, keeping WINDOW in
 * flight; every other message carries a client_msg_id. Resolves to
 * [{ payload, ack }] in sending order.
 */
async function sendMany(client, target, count, label) {
  const sent = new Array(count);
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const i = next++;
      const to = typeof target === "function" ? target(i) : target;
      const payload = { ...to, content: `${label} #${i}` };
      if (i % 2 === 0) payload.client_msg_id = `${label}-${i}-${randomUUID()}`.replace(/\s/g, "_");
      // emitWithAck emits synchronously, so the emit order is the order of i.
      const ack = await client.request("send_message", payload, { timeoutMs: ACK_TIMEOUT_MS });
      sent[i] = { payload, ack };
    }
  };
  await Promise.all(Array.from({ length: WINDOW }, lane));
  return sent;
}

/** The whole history of a conversation as `user` reads it from `node`, oldest first. */
async function historyFrom(node, user, conversationId) {
  const rows = [];
  let total;
  for (let after = 0; ; ) {
    const res = await node.http(
      "GET",
      `/api/messages?conversation_id=${conversationId}&after_seq=${after}&limit=100`,
      { token: user.token },
    );
    assert.equal(res.status, 200, `node ${where(node)} history after ${after}: ${res.status} ${res.text}`);
    rows.push(...res.body.messages);
    total = res.body.total;
    if (!res.body.has_more) break;
    assert.ok(res.body.messages.length > 0, "has_more with an empty page");
    after = res.body.messages.at(-1).seq;
  }
  return { rows, total };
}

/** Everything `sync` answers for a conversation from seq 0, calling again while has_more. */
async function syncAll(client, conversationId) {
  const items = [];
  for (let after = 0; ; ) {
    const answer = await client.request(
      "sync",
      { since: [{ conversation_id: conversationId, after_seq: after }] },
      { timeoutMs: ACK_TIMEOUT_MS },
    );
    assert.ok(Array.isArray(answer?.messages), `sync answer: ${JSON.stringify(answer)}`);
    items.push(...answer.messages);
    if (!answer.has_more) break;
    after = answer.messages.at(-1).seq;
  }
  return items;
}

/**
 * Checks a conversation against what its senders were told. `senders` is
 * [{ user, sent }] with `sent` from sendMany; `reader` is a member with a socket
 * (`reader.client`) used for `sync`.
 */
async function assertSequenced(conversationId, senders, reader) {
  const acked = senders.flatMap(({ user, sent }) => sent.map((s) => ({ ...s, user })));
  for (const { user, payload, ack } of acked) {
    assert.equal(ack?.status, "sent", `${user.display_name} "${payload.content}": ${JSON.stringify(ack)}`);
    assert.equal(ack.conversation_id, conversationId, `${payload.content}: conversation`);
    assert.ok(Number.isInteger(ack.seq) && ack.seq >= 1, `${payload.content}: seq ${ack.seq}`);
  }
  const n = acked.length;

  // Seqs the acks reported: 1..N, each once.
  const ackedSeqs = acked.map(({ ack }) => ack.seq).sort((x, y) => x - y);
  const repeatedAck = ackedSeqs.find((seq, i) => i > 0 && seq === ackedSeqs[i - 1]);
  assert.equal(repeatedAck, undefined, `two acks reported seq ${repeatedAck}`);
  assert.equal(new Set(acked.map(({ ack }) => ack.message_id)).size, n, "every ack names its own message_id");

  // Each sender's messages are numbered in the order that sender sent them.
  for (const { user, sent } of senders) {
    for (let i = 1; i < sent.length; i++) {
      assert.ok(
        sent[i].ack.seq > sent[i - 1].ack.seq,
        `${user.display_name}: "${sent[i].payload.content}" got seq ${sent[i].ack.seq}, ` +
          `after "${sent[i - 1].payload.content}" got ${sent[i - 1].ack.seq}`,
      );
    }
  }

  // History (REST, from each node) holds exactly the acknowledged messages, seq 1..N.
  const { rows, total } = await historyFrom(nodeA, reader, conversationId);
  assert.equal(total, n, `history total ${total}, ${n} acknowledged`);
  const gaps = [];
  rows.forEach((row, i) => {
    if (row.seq !== i + 1) gaps.push(`#${i + 1} has seq ${row.seq}`);
  });
  assert.deepEqual(gaps.slice(0, 10), [], `seq is not 1..${n} (${gaps.length} misplaced)`);
  assert.equal(rows.length, n, `history holds ${rows.length} messages, ${n} acknowledged`);
  const byId = new Map(rows.map((row) => [row.id, row]));
  for (const { user, payload, ack } of acked) {
    const row = byId.get(ack.message_id);
    assert.ok(row, `${payload.content}: acknowledged message ${ack.message_id} is not in history`);
    assert.deepEqual(
      { seq: row.seq, sender_id: row.sender_id, content: row.content },
      { seq: ack.seq, sender_id: user.id, content: payload.content },
      `message ${ack.message_id}: history and ack disagree`,
    );
  }
  if (nodeB !== nodeA) {
    // Receipts (delivered_at, read_at) may move between the two reads; the rest may not.
    const fixed = (list) => list.map(({ id, seq, sender_id, content, sent_at }) => ({ id, seq, sender_id, content, sent_at }));
    const onB = await historyFrom(nodeB, reader, conversationId);
    assert.equal(onB.total, total, "node B's history total differs");
    assert.deepEqual(fixed(onB.rows), fixed(rows), "node B's history differs");
  }

  // `sync` by seq (over the reader's socket, on its node) answers the same messages.
  const synced = await syncAll(reader.client, conversationId);
  assert.deepEqual(
    synced.map((m) => [m.seq, m.message_id, m.from_user_id, m.content]),
    rows.map((r) => [r.seq, r.id, r.sender_id, r.content]),
    `sync on node ${where(reader.node)} differs from history`,
  );
}

/**
 * Asserts the senders' writes really overlapped: along the seqs, the sender changes
 * more than once (else the test would have checked writers taking turns).
 */
function assertInterleaved(senders) {
  const bySeq = senders
    .flatMap(({ user, sent }) => sent.map(({ ack }) => [ack.seq, user.id]))
    .sort((x, y) => x[0] - y[0]);
  const switches = bySeq.filter(([, id], i) => i > 0 && id !== bySeq[i - 1][1]).length;
  assert.ok(switches > senders.length, `the senders' messages barely interleave (${switches} switches)`);
}

/** Asserts no socket was sent an `error` event (e.g. internal_error). */
function assertNoErrors(users) {
  for (const user of users) {
    assert.deepEqual(user.client.collect("error"), [], `${user.client.name} got error events`);
  }
}

describe(`concurrent writers on one conversation (${backend === "postgres" ? "two nodes, one PostgreSQL database" : "SQLite: one node, concurrent sockets"})`, { timeout: TEST_TIMEOUT_MS }, () => {
  test("a direct chat: alice (node A) and bob (node B) each send 200 at once, several in flight", async () => {
    const alice = await userOn(nodeA, "alice");
    const bob = await userOn(nodeB, "bob");
    alice.client = await connectUser(alice);
    bob.client = await connectUser(bob);

    // No conversation exists yet: the first sends from both nodes also race to create it.
    const [fromAlice, fromBob] = await Promise.all([
      sendMany(alice.client, { to_user_id: bob.id }, 200, "alice"),
      sendMany(bob.client, { to_user_id: alice.id }, 200, "bob"),
    ]);
    const conversationId = fromAlice[0].ack?.conversation_id;
    assert.ok(conversationId, `first ack: ${JSON.stringify(fromAlice[0].ack)}`);
    const senders = [
      { user: alice, sent: fromAlice },
      { user: bob, sent: fromBob },
    ];
    await assertSequenced(conversationId, senders, bob);
    assertInterleaved(senders);
    assertNoErrors([alice, bob]);
    await closeAll(alice.client, bob.client);
  });

  test("a group of 6 spread over both nodes: each member sends 100 at once", async () => {
    const members = await Promise.all(
      ["ann", "ben", "cat", "dan", "eve", "fay"].map((label, i) => userOn(i % 2 === 0 ? nodeA : nodeB, label)),
    );
    await Promise.all(members.map(async (member) => {
      member.client = await connectUser(member);
    }));
    const [owner, ...others] = members;
    const group = await createGroup(owner.node, owner, others, { name: "cluster" });
    const target = { conversation_id: group.conversation_id };

    const sent = await Promise.all(
      members.map((member) => sendMany(member.client, target, 100, member.display_name)),
    );
    const senders = members.map((user, i) => ({ user, sent: sent[i] }));
    await assertSequenced(group.conversation_id, senders, members[1]);
    assertInterleaved(senders);
    assertNoErrors(members);
    await closeAll(members.map((member) => member.client));
  });

  test("batches spanning several conversations: 4 users, a device on each node, writing to a group and every direct chat at once", async () => {
    const users = await Promise.all(
      ["gus", "hal", "ivy", "jo"].map((label, i) => userOn(i % 2 === 0 ? nodeA : nodeB, label)),
    );
    const group = await createGroup(users[0].node, users[0], users.slice(1), { name: "criss-cross" });
    // Every user has a device on each node; a device's conversations are its user's
    // group and direct chats, visited in an order of its own (node B's devices in
    // reverse), so the batches of both nodes name the same conversations in different
    // orders. The direct chats are opened first, one by one (racing to create them is
    // the next test's subject): here batches only lock and bump existing counters.
    const opening = [];
    for (const [u, user] of users.entries()) {
      const client = await connect(user.node, user, { name: `${user.display_name} (opening)` });
      for (const other of users.slice(u + 1)) {
        const payload = { to_user_id: other.id, content: `${user.display_name} opens` };
        opening.push({ user, device: { user, node: user.node, client }, item: { payload, ack: await client.request("send_message", payload) } });
      }
      await client.close();
    }
    const devices = [];
    for (const [u, user] of users.entries()) {
      const partners = users.filter((other) => other !== user).map((other) => ({ to_user_id: other.id }));
      const targets = [{ conversation_id: group.conversation_id }, ...partners];
      for (const [d, node] of [nodeA, nodeB].entries()) {
        const order = targets.map((_, k) => targets[(k + u) % targets.length]);
        if (d === 1) order.reverse();
        const label = `${user.display_name} ${where(node)}${d}`;
        const client = await connect(node, user, { name: label });
        devices.push({ user, node, client, label, order });
      }
    }

    const sent = await Promise.all(
      devices.map((device) => sendMany(device.client, (i) => device.order[i % device.order.length], 60, device.label)),
    );
    for (const [k, device] of devices.entries()) {
      for (const { payload, ack } of sent[k]) {
        assert.equal(ack?.status, "sent", `${device.label} "${payload.content}": ${JSON.stringify(ack)}`);
      }
    }

    // One conversation per pair (both directions and all four devices converge on it).
    const conversations = new Map(); // pair or group -> { ids, senders: device -> items }
    const record = (device, item) => {
      const key = item.payload.conversation_id ?? [device.user.id, item.payload.to_user_id].sort().join("-");
      const entry = conversations.get(key) ?? { ids: new Set(), senders: new Map() };
      entry.ids.add(item.ack?.conversation_id);
      const own = entry.senders.get(device) ?? [];
      own.push(item);
      entry.senders.set(device, own);
      conversations.set(key, entry);
    };
    for (const { device, item } of opening) record(device, item);
    for (const [k, device] of devices.entries()) {
      for (const item of sent[k]) record(device, item);
    }
    assert.equal(conversations.size, 1 + 6, "the group and six direct chats");
    for (const [key, { ids, senders }] of conversations) {
      assert.equal(ids.size, 1, `${key}: sends landed in conversations ${[...ids]}`);
      const [conversationId] = ids;
      const reader = [...senders.keys()].at(-1);
      await assertSequenced(
        conversationId,
        [...senders].map(([device, items]) => ({ user: device.user, sent: items })),
        { ...reader.user, client: reader.client, node: reader.node },
      );
    }
    for (const device of devices) {
      assert.deepEqual(device.client.collect("error"), [], `${device.label} got error events`);
    }
    await closeAll(devices.map((device) => device.client));
  });
});

describe(`first messages (${backend === "postgres" ? "two nodes" : "SQLite: one node"})`, { timeout: TEST_TIMEOUT_MS }, () => {
  test("first messages of several new direct chats, sent from both nodes at once, are all stored", async () => {
    // On node A each of 8 users writes to a partner for the first time while, at the
    // same moment, each partner on node B writes back: both nodes' batches create the
    // same set of direct conversations. 8 rounds, new pairs each round.
    const size = 8;
    const left = await Promise.all(Array.from({ length: size }, (_, i) => userOn(nodeA, `kim${i}`)));
    const right = await Promise.all(Array.from({ length: size }, (_, i) => userOn(nodeB, `lee${i}`)));
    await Promise.all([...left, ...right].map(async (user) => {
      user.client = await connectUser(user);
    }));
    const refused = [];
    const landed = new Map(); // pair -> conversation ids its acks named
    for (let round = 0; round < size; round++) {
      const pairs = left.map((user, i) => [user, right[(i + round) % size]]);
      const acks = await Promise.all(
        pairs.flatMap(([x, y]) => [
          x.client.request("send_message", { to_user_id: y.id, content: `round ${round}` }),
          y.client.request("send_message", { to_user_id: x.id, content: `round ${round}` }),
        ]),
      );
      acks.forEach((ack, k) => {
        const [x, y] = pairs[Math.floor(k / 2)];
        if (ack?.status !== "sent") refused.push(`round ${round}: ${JSON.stringify(ack)}`);
        else landed.set(`${x.id}-${y.id}`, [...(landed.get(`${x.id}-${y.id}`) ?? []), ack]);
      });
    }
    assert.deepEqual(refused.slice(0, 5), [], `${refused.length} of ${size * size * 2} first messages refused`);
    for (const [pair, acks] of landed) {
      assert.equal(acks.length, 2, pair);
      assert.equal(acks[0].conversation_id, acks[1].conversation_id, `${pair}: two conversations`);
      assert.deepEqual(acks.map((ack) => ack.seq).sort(), [1, 2], `${pair}: seqs`);
    }
    assert.equal(new Set([...landed.values()].map(([ack]) => ack.conversation_id)).size, size * size);
    assertNoErrors([...left, ...right]);
    await closeAll([...left, ...right].map((user) => user.client));
  });
});

describe(`client_msg_id across ${backend === "postgres" ? "nodes" : "sockets (SQLite: one node)"}`, { timeout: TEST_TIMEOUT_MS }, () => {
  test("a resend with the same client_msg_id to the other node answers the original message", async () => {
    const alice = await userOn(nodeA, "alice");
    const bob = await userOn(nodeB, "bob");
    alice.client = await connectUser(alice);
    bob.client = await connectUser(bob);
    // Alice's second device, on the other node.
    const aliceElsewhere = await connect(nodeB, alice, { name: "alice (node B)" });

    const payload = { to_user_id: bob.id, content: "exactly once", client_msg_id: randomUUID() };
    const original = await alice.client.request("send_message", payload);
    assert.equal(original.status, "sent", JSON.stringify(original));
    assert.deepEqual(await aliceElsewhere.request("send_message", payload), original);
    // And back on the first node again.
    assert.deepEqual(await alice.client.request("send_message", payload), original);

    const { rows } = await historyFrom(nodeB, bob, original.conversation_id);
    assert.deepEqual(rows.map((r) => [r.id, r.seq]), [[original.message_id, 1]]);
    // The retries used up no seq.
    const next = await aliceElsewhere.request("send_message", { to_user_id: bob.id, content: "next" });
    assert.equal(next.seq, 2, JSON.stringify(next));
    assertNoErrors([alice, bob]);
    assert.deepEqual(aliceElsewhere.collect("error"), []);
    await closeAll(alice.client, bob.client, aliceElsewhere);
  });

  test("the same client_msg_id sent to both nodes at once, amid other writers, is stored once", async () => {
    const alice = await userOn(nodeA, "alice");
    const bob = await userOn(nodeB, "bob");
    alice.client = await connectUser(alice);
    bob.client = await connectUser(bob);
    const aliceElsewhere = { ...alice, node: nodeB };
    aliceElsewhere.client = await connect(nodeB, alice, { name: "alice (node B)" });

    const rounds = 30;
    const duplicates = [];
    const [fromBob] = await Promise.all([
      // Bob keeps the conversation busy from node B the whole time, so the losing
      // duplicate usually shares its batch with other messages.
      sendMany(bob.client, { to_user_id: alice.id }, 150, "bob"),
      (async () => {
        for (let r = 0; r < rounds; r++) {
          const payload = { to_user_id: bob.id, content: `twice ${r}`, client_msg_id: randomUUID() };
          const [onA, onB] = await Promise.all([
            alice.client.request("send_message", payload, { timeoutMs: ACK_TIMEOUT_MS }),
            aliceElsewhere.client.request("send_message", payload, { timeoutMs: ACK_TIMEOUT_MS }),
          ]);
          duplicates.push({ payload, onA, onB });
        }
      })(),
    ]);

    for (const { payload, onA, onB } of duplicates) {
      assert.equal(onA?.status, "sent", `${payload.content} on node A: ${JSON.stringify(onA)}`);
      assert.deepEqual(onB, onA, `${payload.content}: the two nodes answered different messages`);
    }
    // Each duplicate pair is one message; the checks of the concurrent writers apply.
    await assertSequenced(fromBob[0].ack.conversation_id, [
      { user: bob, sent: fromBob },
      { user: alice, sent: duplicates.map(({ payload, onA }) => ({ payload, ack: onA })) },
    ], alice);
    assertNoErrors([alice, bob, aliceElsewhere]);
    await closeAll(alice.client, bob.client, aliceElsewhere.client);
  });
});
