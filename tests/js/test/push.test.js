// Push hooks (issue 17): a member with no device connected anywhere gets a signed
// webhook per message (PUSH_WEBHOOK_URL), carrying ids and times and, only as far as
// PUSH_INCLUDE allows, the sender and a preview; a member with a device connected gets
// none, nor does one who muted the conversation (PUT /api/conversations/{id}/mute).
// A failing receiver gets the same delivery again after a backoff (Retry-After
// honoured); a hook unanswered after PUSH_MAX_ATTEMPTS is dropped and counted; hooks
// still pending survive a restart. With PUSH_COALESCE_MS, a burst for one offline user
// goes as one hook (the newest message, and how many it stands for). With two nodes over Redis, a device on node B
// suppresses the hook for a message sent on node A, and each hook is posted once.
//
// The receiver (lib/hooks.js) checks every hook's HMAC and timestamp. "No hook" is
// checked after hooks that must come later: two messages, one after the other, to a
// fresh offline user (see settle()).

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { backend, startServer, ISO_UTC } from "../lib/harness.js";
import { connect, closeAll } from "../lib/client.js";
import { createGroup, eventually, presenceOf } from "../lib/api.js";
import { startReceiver } from "../lib/hooks.js";
import { requireRedis, startRedisCluster } from "../lib/redis.js";

const BASE_ENV = {
  RATE_SENDS_PER_SEC: "0",
  PUSH_RETRY_BASE_MS: "300",
  PUSH_RETRY_MAX_MS: "600",
  PUSH_MAX_ATTEMPTS: "3",
};

/** Sends `content` from `socket`; resolves to the ack. */
async function say(socket, target, content) {
  const ack = await socket.request("send_message", { ...target, content });
  assert.equal(ack?.status, "sent", `${socket.name} saying "${content}": ${JSON.stringify(ack)}`);
  return ack;
}

/**
 * Waits until every hook queued before now has been posted: two messages, one after
 * the other, to a fresh offline user, each awaited. The outbox is claimed in due
 * order and a claim is posted whole before the next, so the second marker's hook comes
 * after any hook queued before the first marker was sent.
 */
async function settle(server, receiver, socket) {
  const marker = await server.register("marker");
  for (const text of ["marker one", "marker two"]) {
    const ack = await say(socket, { to_user_id: marker.id }, text);
    await receiver.forMessage(marker.id, ack.message_id);
  }
}

/** `method path` as `user` must answer `status`; resolves to the body. */
async function rest(server, status, user, method, path, json) {
  const res = await server.http(method, path, { token: user?.token, json });
  assert.equal(res.status, status, `${method} ${path}: ${res.status} ${res.text}`);
  if (status >= 400) assert.equal(typeof res.body?.error, "string", `an { error } body: ${res.text}`);
  return res.body;
}

/** A counter's value in /metrics (summed over its label sets that match `labels`). */
async function counter(server, name, labels = {}) {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const match = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = Object.fromEntries([...(match[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(match[3]);
  }
  return sum;
}

describe("push hooks (PUSH_INCLUDE unset)", () => {
  let server;
  let receiver;
  /** user id → (hook) => status, for the receiver to answer that user's hooks. */
  const plans = new Map();
  before(async () => {
    receiver = await startReceiver({ answer: (hook) => plans.get(hook.body.user_id)?.(hook) ?? 200 });
    server = await startServer({ env: receiver.env(BASE_ENV) });
  });
  after(async () => {
    await server?.stop();
    await receiver?.close();
  });

  test("an offline recipient gets one signed hook per message, with ids and times and no content", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const aliceSocket = await connect(server, alice);
    const first = await say(aliceSocket, { to_user_id: bob.id }, "the secret plan");
    const second = await say(aliceSocket, { to_user_id: bob.id }, "more secrets");
    const hooks = [
      await receiver.forMessage(bob.id, first.message_id),
      await receiver.forMessage(bob.id, second.message_id),
    ];
    for (const [hook, ack] of [[hooks[0], first], [hooks[1], second]]) {
      assert.equal(hook.method, "POST");
      assert.match(hook.headers["content-type"], /^application\/json/);
      assert.equal(hook.delivery, hook.body.delivery_id, "X-RC-Delivery is the body's delivery_id");
      assert.equal(hook.attempt, 1);
      assert.deepEqual(Object.keys(hook.body).sort(), [
        "conversation_id", "count", "created_at", "delivery_id", "event", "message_id", "seq", "user_id",
      ]);
      assert.equal(hook.body.count, 1, "one hook per message unless PUSH_COALESCE_MS is set");
      assert.equal(hook.body.event, "message.new");
      assert.equal(hook.body.conversation_id, ack.conversation_id);
      assert.equal(hook.body.seq, ack.seq);
      assert.match(hook.body.created_at, ISO_UTC);
      assert.ok(!hook.raw.includes("secret"), "no content without PUSH_INCLUDE");
    }
    assert.notEqual(hooks[0].delivery, hooks[1].delivery, "each hook has its own delivery id");
    await settle(server, receiver, aliceSocket);
    assert.equal(receiver.for(bob.id).length, 2, "exactly one hook per message");
    assert.equal(receiver.for(alice.id).length, 0, "the sender gets none");
    await closeAll(aliceSocket);
  });

  test("a recipient with a device connected gets none; once it is gone, they do", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const [aliceSocket, bobSocket] = await Promise.all([connect(server, alice), connect(server, bob)]);
    await say(aliceSocket, { to_user_id: bob.id }, "you are here");
    await bobSocket.expect("new_message");
    await settle(server, receiver, aliceSocket);
    assert.equal(receiver.for(bob.id).length, 0, "no hook while bob has a device connected");

    await bobSocket.close();
    const later = await say(aliceSocket, { to_user_id: bob.id }, "you left");
    await receiver.forMessage(bob.id, later.message_id);
    await closeAll(aliceSocket);
  });

  test("group messages hook each offline member, not the online one nor the sender", async () => {
    const [alice, bob, carol, dave] = await server.registerMany("alice", "bob", "carol", "dave");
    const group = await createGroup(server, alice, [bob, carol, dave]);
    const [aliceSocket, daveSocket] = await Promise.all([connect(server, alice), connect(server, dave)]);
    const sent = await say(aliceSocket, { conversation_id: group.conversation_id }, "hello group");
    await daveSocket.expect("new_message");
    const [toBob, toCarol] = [
      await receiver.forMessage(bob.id, sent.message_id),
      await receiver.forMessage(carol.id, sent.message_id),
    ];
    assert.equal(toBob.body.conversation_id, group.conversation_id);
    assert.notEqual(toBob.delivery, toCarol.delivery);
    await settle(server, receiver, aliceSocket);
    assert.equal(receiver.for(dave.id).length, 0, "dave is online");
    assert.equal(receiver.for(alice.id).length, 0, "alice sent it");
    assert.equal(receiver.for(bob.id).length + receiver.for(carol.id).length, 2);
    await closeAll(aliceSocket, daveSocket);
  });

  test("a muted conversation gets no hooks until it is unmuted; GET shows the mute", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const aliceSocket = await connect(server, alice);
    const first = await say(aliceSocket, { to_user_id: bob.id }, "before the mute");
    await receiver.forMessage(bob.id, first.message_id);
    const path = `/api/conversations/${first.conversation_id}/mute`;

    assert.deepEqual(await rest(server, 200, bob, "GET", path), {
      conversation_id: first.conversation_id, muted: false, muted_until: null,
    });
    assert.deepEqual(await rest(server, 200, bob, "PUT", path, { muted: true }), {
      conversation_id: first.conversation_id, muted: true, muted_until: null,
    });
    assert.equal((await rest(server, 200, bob, "GET", path)).muted, true);
    await say(aliceSocket, { to_user_id: bob.id }, "while muted");
    await settle(server, receiver, aliceSocket);
    assert.equal(receiver.for(bob.id).length, 1, "no hook while muted");

    // Muted until a time: muted now, with that time; a time already past unmutes.
    const until = new Date(Date.now() + 3_600_000).toISOString();
    const timed = await rest(server, 200, bob, "PUT", path, { until });
    assert.equal(timed.muted, true);
    assert.equal(Date.parse(timed.muted_until), Date.parse(until));
    await say(aliceSocket, { to_user_id: bob.id }, "still muted");
    await settle(server, receiver, aliceSocket);
    assert.equal(receiver.for(bob.id).length, 1, "no hook while muted until later");

    assert.deepEqual(await rest(server, 200, bob, "PUT", path, { until: "2001-01-01T00:00:00Z" }), {
      conversation_id: first.conversation_id, muted: false, muted_until: null,
    });
    const after = await say(aliceSocket, { to_user_id: bob.id }, "after the mute");
    await receiver.forMessage(bob.id, after.message_id);

    // A mute is the member's own: alice's hooks were never muted by bob's.
    assert.equal((await rest(server, 200, alice, "GET", path)).muted, false);
    await rest(server, 200, bob, "PUT", path, { muted: false });
    await closeAll(aliceSocket);
  });

  test("mute refusals: not a member 404, bad bodies 400, no token 401", async () => {
    const [alice, bob, carol] = await server.registerMany("alice", "bob", "carol");
    const aliceSocket = await connect(server, alice);
    const sent = await say(aliceSocket, { to_user_id: bob.id }, "hi");
    const path = `/api/conversations/${sent.conversation_id}/mute`;
    await rest(server, 404, carol, "GET", path);
    await rest(server, 404, carol, "PUT", path, { muted: true });
    await rest(server, 404, alice, "PUT", "/api/conversations/999999999/mute", { muted: true });
    await rest(server, 400, alice, "PUT", "/api/conversations/abc/mute", { muted: true });
    for (const body of [{}, { muted: "yes" }, { muted: null }, { muted: true, until: "2030-01-01T00:00:00Z" }, { until: "tomorrow" }, [true], { muted: true, extra: 1 }]) {
      await rest(server, 400, alice, "PUT", path, body).catch((e) => { throw new Error(`${JSON.stringify(body)}: ${e.message}`); });
    }
    await rest(server, 401, undefined, "GET", path);
    const res = await server.http("PUT", path, { token: alice.token, body: "muted", headers: { "content-type": "text/plain" } });
    assert.equal(res.status, 415);
    // The refusals changed nothing.
    assert.equal((await rest(server, 200, alice, "GET", path)).muted, false);
    await closeAll(aliceSocket);
  });

  test("a failing receiver gets the same delivery again after a backoff; Retry-After is honoured", async () => {
    const [alice, bob, carol] = await server.registerMany("alice", "bob", "carol");
    plans.set(bob.id, (hook) => (hook.attempt === 1 ? 500 : 200));
    plans.set(carol.id, (hook) => (hook.attempt === 1 ? { status: 429, headers: { "retry-after": "2" } } : 200));
    const aliceSocket = await connect(server, alice);
    const toBob = await say(aliceSocket, { to_user_id: bob.id }, "try again");
    const toCarol = await say(aliceSocket, { to_user_id: carol.id }, "slow down");

    const failed = await receiver.forMessage(bob.id, toBob.message_id);
    const retried = await receiver.nth((h) => h.delivery === failed.delivery, 1, { what: "bob's retry" });
    assert.equal(failed.status, 500);
    assert.equal(retried.attempt, 2);
    assert.equal(retried.body.delivery_id, failed.body.delivery_id);
    assert.equal(retried.body.message_id, toBob.message_id);
    // PUSH_RETRY_BASE_MS=300 with equal jitter: at least half of it.
    assert.ok(retried.at - failed.at >= 150, `retried after ${retried.at - failed.at} ms`);

    const limited = await receiver.forMessage(carol.id, toCarol.message_id);
    const after = await receiver.nth((h) => h.delivery === limited.delivery, 1, { what: "carol's retry" });
    assert.ok(after.at - limited.at >= 1_900, `Retry-After: 2 waited ${after.at - limited.at} ms`);
    await settle(server, receiver, aliceSocket);
    assert.equal(receiver.for(bob.id).length, 2, "answered: not posted again");
    assert.equal(receiver.for(carol.id).length, 2);
    await closeAll(aliceSocket);
  });

  test("a hook still failing after PUSH_MAX_ATTEMPTS is dropped and counted; a 4xx is not retried", async () => {
    const [alice, bob, carol] = await server.registerMany("alice", "bob", "carol");
    plans.set(bob.id, () => 503);
    plans.set(carol.id, () => 410);
    const droppedBefore = await counter(server, "realtime_chat_push_hooks_dropped_total", { reason: "attempts" });
    const refusedBefore = await counter(server, "realtime_chat_push_hooks_dropped_total", { reason: "refused" });
    const aliceSocket = await connect(server, alice);
    const toBob = await say(aliceSocket, { to_user_id: bob.id }, "nobody answers");
    const toCarol = await say(aliceSocket, { to_user_id: carol.id }, "gone");
    const third = await receiver.nth((h) => h.body.message_id === toBob.message_id, 2, { what: "bob's third attempt" });
    assert.equal(third.attempt, 3);
    await receiver.forMessage(carol.id, toCarol.message_id);
    await eventually(
      async () => (await counter(server, "realtime_chat_push_hooks_dropped_total", { reason: "attempts" })) === droppedBefore + 1,
      { what: "the dropped counter" },
    );
    assert.equal(
      await counter(server, "realtime_chat_push_hooks_dropped_total", { reason: "refused" }),
      refusedBefore + 1,
    );
    assert.ok((await counter(server, "realtime_chat_push_attempts_failed_total")) >= 4);
    assert.ok((await counter(server, "realtime_chat_push_hooks_sent_total")) >= 1);
    await settle(server, receiver, aliceSocket);
    assert.equal(receiver.for(bob.id).length, 3, "PUSH_MAX_ATTEMPTS=3, then no more");
    assert.equal(receiver.for(carol.id).length, 1, "410 is final");
    await closeAll(aliceSocket);
  });

  test("a hook whose message was deleted before its retry is not posted again", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    plans.set(bob.id, () => 500);
    const obsoleteBefore = await counter(server, "realtime_chat_push_hooks_dropped_total", { reason: "obsolete" });
    const aliceSocket = await connect(server, alice);
    const sent = await say(aliceSocket, { to_user_id: bob.id }, "oops");
    await receiver.forMessage(bob.id, sent.message_id);
    await rest(server, 200, alice, "DELETE", `/api/messages/${sent.message_id}`);
    await eventually(
      async () => (await counter(server, "realtime_chat_push_hooks_dropped_total", { reason: "obsolete" })) === obsoleteBefore + 1,
      { what: "the deleted message's hook dropped as obsolete" },
    );
    await settle(server, receiver, aliceSocket);
    // The retry may have been on its way as the deletion landed; never all three attempts.
    assert.ok(receiver.for(bob.id).length < 3, `${receiver.for(bob.id).length} attempts`);
    await closeAll(aliceSocket);
  });

  test("a hook pending when the server stops is posted after it restarts, with its delivery id", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    let restarted = false;
    plans.set(bob.id, () => (restarted ? 200 : 503));
    const aliceSocket = await connect(server, alice);
    const sent = await say(aliceSocket, { to_user_id: bob.id }, "survive this");
    const before = await receiver.forMessage(bob.id, sent.message_id);
    await aliceSocket.close();
    await server.terminate("SIGTERM");
    restarted = true;
    await server.restart();
    const again = await receiver.nth((h) => h.delivery === before.delivery && h.status === 200, 0, {
      what: "the pending hook after the restart",
    });
    assert.equal(again.body.message_id, sent.message_id);
  });
});

describe("push hooks with PUSH_INCLUDE=preview", () => {
  let server;
  let receiver;
  before(async () => {
    receiver = await startReceiver();
    server = await startServer({ env: receiver.env({ ...BASE_ENV, PUSH_INCLUDE: "preview" }) });
  });
  after(async () => {
    await server?.stop();
    await receiver?.close();
  });

  test("the hook carries the sender and the start of the text", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const aliceSocket = await connect(server, alice);
    const sent = await say(aliceSocket, { to_user_id: bob.id }, "see you at noon");
    const long = await say(aliceSocket, { to_user_id: bob.id }, "x".repeat(150));
    const hook = await receiver.forMessage(bob.id, sent.message_id);
    assert.deepEqual(hook.body.sender, { id: alice.id, display_name: alice.display_name });
    assert.equal(hook.body.preview, "see you at noon");
    const cut = await receiver.forMessage(bob.id, long.message_id);
    assert.equal(cut.body.preview, `${"x".repeat(100)}…`, "a preview is at most 100 characters");
    await closeAll(aliceSocket);
  });
});

describe("push hooks with PUSH_COALESCE_MS", () => {
  let server;
  let receiver;
  before(async () => {
    receiver = await startReceiver();
    server = await startServer({ env: receiver.env({ ...BASE_ENV, PUSH_COALESCE_MS: "1500" }) });
  });
  after(async () => {
    await server?.stop();
    await receiver?.close();
  });

  test("a burst for one offline user goes as one hook for the newest message, with its count", async () => {
    const [alice, bob, carol] = await server.registerMany("alice", "bob", "carol");
    const [aliceSocket, carolSocket] = await Promise.all([connect(server, alice), connect(server, carol)]);
    const acks = [];
    for (const text of ["one", "two"]) acks.push(await say(aliceSocket, { to_user_id: bob.id }, text));
    acks.push(await say(carolSocket, { to_user_id: bob.id }, "three, from carol"));
    const hook = await receiver.nth((h) => h.body.user_id === bob.id, 0, { what: "bob's coalesced hook" });
    assert.equal(hook.body.count, 3);
    assert.equal(hook.body.message_id, acks[2].message_id, "the newest message leads");
    assert.equal(hook.body.conversation_id, acks[2].conversation_id);
    await settle(server, receiver, aliceSocket);
    assert.equal(receiver.for(bob.id).length, 1, "one hook for the burst");
    await closeAll(aliceSocket, carolSocket);
  });
});

const missingRedis = requireRedis();
const clusterSkip = backend !== "postgres"
  ? "several nodes share one PostgreSQL database: set TEST_DATABASE_URL"
  : missingRedis ?? false;
const clusterSuite = clusterSkip ? (name) => test(name, { skip: clusterSkip }, () => {}) : describe;

clusterSuite("push hooks on two nodes", { timeout: 60_000 }, () => {
  let cluster;
  let receiver;
  before(async () => {
    receiver = await startReceiver();
    cluster = await startRedisCluster(2, { env: receiver.env({ ...BASE_ENV, PRESENCE_NODE_TTL_MS: "3000" }) });
  });
  after(async () => {
    await cluster?.stop();
    await receiver?.close();
  });

  test("a device on node B suppresses the hook for a message sent on node A; each hook is posted once", async () => {
    const [A, B] = cluster.nodes;
    const [alice, bob, carol] = await A.registerMany("alice", "bob", "carol");
    const aliceSocket = await connect(A, alice);
    const bobSocket = await connect(B, bob);
    // Stored on node B, for alice whose device is on node A: no hook either.
    await say(bobSocket, { to_user_id: alice.id }, "from node B");
    await aliceSocket.expect("new_message");
    // Node A learns of bob's device through Redis.
    await eventually(async () => (await presenceOf(A, alice, [bob.id]))[0]?.online === true, {
      what: "node A sees bob online",
    });
    await say(aliceSocket, { to_user_id: bob.id }, "to node B");
    await bobSocket.expect("new_message");
    const hooks = [];
    for (let i = 0; i < 5; i++) {
      hooks.push(await say(aliceSocket, { to_user_id: carol.id }, `carol ${i}`));
    }
    for (const sent of hooks) await receiver.forMessage(carol.id, sent.message_id);
    await settle(A, receiver, aliceSocket);
    assert.equal(receiver.for(bob.id).length, 0, "bob has a device on node B");
    assert.equal(receiver.for(alice.id).length, 0, "alice has a device on node A");
    assert.equal(receiver.for(carol.id).length, 5, "both nodes claim the outbox, each hook is posted once");
    await closeAll(aliceSocket, bobSocket);
  });
});
