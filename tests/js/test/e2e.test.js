// End-to-end encryption support, driven by a client that really encrypts: libsignal's
// own Node library (@signalapp/libsignal-client) generates the keys, starts sessions
// from the bundles our key directory hands out (PQXDH, X3DH with a Kyber prekey) and runs
// the Double Ratchet; our server only stores and relays public keys and ciphertext.
//
// Covered: publishing keys, fetching bundles (each one-time prekey handed out exactly
// once, concurrent fetches included), `prekeys_low`, encrypted messages both ways between
// two users and a second device (live, from the offline queue, in history, `sync` and
// `changes`), that no stored or delivered byte holds the plaintext, delete and react on
// an encrypted message, and the refusals: publishing for someone else, malformed keys, an
// envelope for a non-member, an encrypted message with content, editing one.
//
// "Nothing arrives" is always checked after something that must arrive later.
//
// With TEST_DATABASE_URL and redis-server, two nodes over Redis: an encrypted message
// and `prekeys_low` reach a device on the other node.

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import pg from "pg";
import { backend, startServer } from "../lib/harness.js";
import { connect, closeAll } from "../lib/client.js";
import { conversationsOf, history } from "../lib/api.js";
import { SignalDevice, MessageType } from "../lib/signal.js";
import { requireRedis, startRedisCluster } from "../lib/redis.js";

let server;
before(async () => {
  // Fetches here race by the dozen on purpose; RATE_LOOKUPS_PER_SEC has its own test in
  // search.test.js.
  server = await startServer({ env: { RATE_LOOKUPS_PER_SEC: "0" } });
});
after(() => server?.stop());

/** `method path` as `user` (or no token), which must answer `status`; resolves to the body. */
async function rest(status, user, method, path, json) {
  const res = await server.http(method, path, { token: user?.token, json });
  assert.equal(res.status, status, `${method} ${path} as ${user?.display_name}: ${res.status} ${res.text}`);
  if (status >= 400) assert.equal(typeof res.body?.error, "string", `an { error } body: ${res.text}`);
  return res.body;
}

/** A fresh device for `user`, its keys published with `prekeys` one-time prekeys. */
async function published(user, deviceId, prekeys = 20) {
  const device = new SignalDevice(user.id, deviceId);
  const status = await rest(200, user, "PUT", `/api/keys/devices/${deviceId}`, await device.publication(prekeys));
  assert.equal(status.one_time_prekeys, prekeys);
  return device;
}

/** `user`'s bundles as fetched by `caller` (each claims one one-time prekey). */
async function bundlesOf(caller, user) {
  const body = await rest(200, caller, "GET", `/api/users/${user.id}/keys`);
  assert.equal(body.user_id, user.id);
  return body.devices;
}

/** `event` with `payload` must be refused with `code`: in the ack and as an error event. */
async function refusedOnSocket(socket, event, payload, code) {
  const answer = await socket.request(event, payload);
  assert.equal(answer?.error?.code, code, `${socket.name} ${event}: ${JSON.stringify(answer)}`);
  assert.equal((await socket.expect("error")).code, code, `${socket.name}: error event for ${event}`);
  return answer;
}

async function sendEncrypted(socket, target, encrypted, extra = {}) {
  const ack = await socket.request("send_message", { ...target, encrypted, ...extra });
  assert.equal(ack?.status, "sent", `${socket.name}: ${JSON.stringify(ack)}`);
  return ack;
}

/** Every message row and conversation row as the database holds them, as text. */
async function storedText() {
  if (backend === "postgres") {
    const client = new pg.Client({ connectionString: server.databaseUrl });
    await client.connect();
    try {
      const rows = await client.query(
        "SELECT (SELECT coalesce(string_agg(m::text, ' '), '') FROM messages m) || \
                (SELECT coalesce(string_agg(c::text, ' '), '') FROM conversations c) AS t",
      );
      return rows.rows[0].t;
    } finally {
      await client.end();
    }
  }
  // SQLite: the database file and its write-ahead log, byte for byte.
  const file = new URL(server.databaseUrl.replace(/^sqlite:\/\//, "file://")).pathname;
  const parts = await Promise.all([file, `${file}-wal`].map((f) => readFile(f).catch(() => Buffer.alloc(0))));
  return Buffer.concat(parts).toString("latin1");
}

/** Asserts `text` holds neither `secret` nor its UTF-8 bytes in base64. */
function assertHidden(text, secret, where) {
  assert.ok(!text.includes(secret), `${where} holds the plaintext`);
  assert.ok(!text.includes(Buffer.from(secret).toString("base64")), `${where} holds the plaintext's base64`);
}

describe("key directory", () => {
  test("a device publishes its keys and reads them back; a second device; withdrawal", async () => {
    const [alice] = await server.registerMany("alice");
    const phone = new SignalDevice(alice.id, 1);
    const body = await phone.publication(5);
    const status = await rest(200, alice, "PUT", "/api/keys/devices/1", body);
    assert.deepEqual(
      { ...status, updated_at: undefined },
      { device_id: 1, registration_id: phone.registrationId, signed_prekey_id: 1, kyber_prekey_id: 1, one_time_prekeys: 5, updated_at: undefined },
    );
    assert.deepEqual(await rest(200, alice, "GET", "/api/keys/devices/1"), status);

    // More prekeys: a key id already held counts once.
    const more = await phone.oneTimePrekeys(3);
    const added = await rest(200, alice, "POST", "/api/keys/devices/1/prekeys", {
      one_time_prekeys: [...more, body.one_time_prekeys[0]],
    });
    assert.equal(added.one_time_prekeys, 8);

    // Republishing replaces the unclaimed prekeys.
    const again = await rest(200, alice, "PUT", "/api/keys/devices/1", { ...body, one_time_prekeys: more });
    assert.equal(again.one_time_prekeys, 3);

    const laptop = await published(alice, 2, 1);
    const bundles = await bundlesOf(alice, alice);
    assert.deepEqual(bundles.map((b) => b.device_id), [1, 2], "one bundle per device, the caller's own included");
    assert.equal(bundles[1].identity_key, laptop.identityKey);

    assert.deepEqual(await rest(200, alice, "DELETE", "/api/keys/devices/2"), { success: true });
    await rest(404, alice, "GET", "/api/keys/devices/2");
    await rest(404, alice, "DELETE", "/api/keys/devices/2");
    await rest(404, alice, "POST", "/api/keys/devices/2/prekeys", { one_time_prekeys: await laptop.oneTimePrekeys(1) });
    assert.deepEqual((await bundlesOf(alice, alice)).map((b) => b.device_id), [1]);
  });

  test("each one-time prekey is handed out once, to concurrent fetches too; then bundles lack one", async () => {
    const [bob, ...fetchers] = await server.registerMany("bob", "f1", "f2", "f3", "f4", "f5");
    const device = await published(bob, 1, 30);
    // 40 fetches at once from five users for 30 keys.
    const fetched = await Promise.all(
      Array.from({ length: 40 }, (_, i) => bundlesOf(fetchers[i % fetchers.length], bob)),
    );
    const handed = fetched.map(([bundle]) => bundle.one_time_prekey).filter(Boolean);
    const ids = handed.map((k) => k.key_id);
    assert.equal(ids.length, 30, "every key was handed out");
    assert.equal(new Set(ids).size, 30, `no key was handed out twice: ${ids}`);
    for (const id of ids) assert.ok(await device.holdsPrekey(id), `key ${id} is one bob published`);
    assert.equal(fetched.filter(([bundle]) => bundle.one_time_prekey === null).length, 10);
    const [last] = await bundlesOf(fetchers[0], bob);
    assert.equal(last.one_time_prekey, null, "none left: the bundle lacks one");
    assert.equal(last.identity_key, device.identityKey, "the rest of the bundle stays");
    assert.equal((await rest(200, bob, "GET", "/api/keys/devices/1")).one_time_prekeys, 0);

    // A bundle without a one-time prekey still starts a session (X3DH allows it).
    const [fetcher] = fetchers;
    const theirs = new SignalDevice(fetcher.id, 1);
    await theirs.startSession(bob.id, last);
    const envelope = await theirs.envelopeFor(bob.id, 1, "without a one-time key");
    assert.equal(await device.decrypt([fetcher.id, 1], envelope), "without a one-time key");
  });

  test("prekeys_low reaches every device of the user once a claim leaves fewer than the watermark", async () => {
    const [bob, alice] = await server.registerMany("bob", "alice");
    const [phone, tablet] = await Promise.all([
      connect(server, bob, { name: "bob-phone" }),
      connect(server, bob, { name: "bob-tablet" }),
    ]);
    await published(bob, 3, 11);
    await bundlesOf(alice, bob); // 11 → 10: not below the default watermark of 10
    await bundlesOf(alice, bob); // 10 → 9
    await bundlesOf(alice, bob); // 9 → 8
    const refill = await new SignalDevice(bob.id, 3).oneTimePrekeys(30);
    // Ids 12–30: ids 1–3 were claimed, 4–11 are held.
    const status = await rest(200, bob, "POST", "/api/keys/devices/3/prekeys", { one_time_prekeys: refill.slice(11) });
    assert.equal(status.one_time_prekeys, 27, "the count is readable");
    await published(bob, 4, 1);
    await bundlesOf(alice, bob); // device 3: 27 → 26, device 4: 1 → 0
    await bundlesOf(alice, bob); // device 3: 26 → 25; device 4 has none to claim
    for (const socket of [phone, tablet]) {
      assert.deepEqual(
        [await socket.expect("prekeys_low"), await socket.expect("prekeys_low"), await socket.expect("prekeys_low")],
        [{ device_id: 3, remaining: 9 }, { device_id: 3, remaining: 8 }, { device_id: 4, remaining: 0 }],
        `${socket.name}: warnings for claims below the watermark only`,
      );
      await socket.expectNone("prekeys_low", { withinMs: 0 });
    }
    await closeAll(phone, tablet);
  });

  test("PREKEY_LOW_WATERMARK sets the threshold", async () => {
    const strict = await startServer({ env: { PREKEY_LOW_WATERMARK: "100" } });
    try {
      const [carol, dave] = await strict.registerMany("carol", "dave");
      const carolSocket = await connect(strict, carol);
      const res = await strict.http("PUT", "/api/keys/devices/1", {
        token: carol.token,
        json: await new SignalDevice(carol.id, 1).publication(50),
      });
      assert.equal(res.status, 200, res.text);
      const fetched = await strict.http("GET", `/api/users/${carol.id}/keys`, { token: dave.token });
      assert.equal(fetched.status, 200, fetched.text);
      assert.deepEqual(await carolSocket.expect("prekeys_low"), { device_id: 1, remaining: 49 });
      await closeAll(carolSocket);
    } finally {
      await strict.stop();
    }
  });

  test("refusals: publishing for someone else, no token, malformed keys and ids, unknown users, blocks", async () => {
    const [alice, bob, eve] = await server.registerMany("alice", "bob", "eve");
    const bobDevice = await published(bob, 1, 2);
    const body = await new SignalDevice(eve.id, 1).publication(2);

    // Nobody publishes for someone else: the user is the token's, and a body naming one is refused.
    await rest(400, eve, "PUT", "/api/keys/devices/1", { ...body, user_id: bob.id });
    await rest(401, null, "PUT", "/api/keys/devices/1", body);
    await rest(200, eve, "PUT", "/api/keys/devices/1", body);
    const [bobs] = await bundlesOf(alice, bob);
    assert.equal(bobs.identity_key, bobDevice.identityKey, "eve publishing her device 1 left bob's alone");

    const ec = body.identity_key;
    const wrongType = Buffer.from(ec, "base64");
    wrongType[0] = 0x06;
    const looseSignature = `${body.signed_prekey.signature.slice(0, 85)}B==`;
    for (const [what, change] of [
      ["identity key of 32 bytes", { identity_key: Buffer.from(ec, "base64").subarray(1).toString("base64") }],
      ["identity key of the wrong type", { identity_key: wrongType.toString("base64") }],
      ["identity key in URL-safe base64", { identity_key: ec.replaceAll("+", "-").replaceAll("/", "_").replace(/^(.{43})./, "$1-") }],
      ["signature with stray bits", { signed_prekey: { ...body.signed_prekey, signature: looseSignature } }],
      ["short Kyber key", { kyber_prekey: { ...body.kyber_prekey, public_key: ec } }],
      ["registration id 0", { registration_id: 0 }],
      ["key id 0", { signed_prekey: { ...body.signed_prekey, key_id: 0 } }],
      ["a prekey of the wrong size", { one_time_prekeys: [{ key_id: 9, public_key: "AAAA" }] }],
      ["101 prekeys", { one_time_prekeys: Array.from({ length: 101 }, (_, i) => ({ key_id: i + 1, public_key: ec })) }],
      ["no signed prekey", { signed_prekey: undefined }],
    ]) {
      const res = await server.http("PUT", "/api/keys/devices/2", { token: eve.token, json: { ...body, ...change } });
      assert.equal(res.status, 400, `${what}: ${res.status} ${res.text}`);
      assert.equal(typeof res.body.error, "string");
    }
    for (const device of ["0", "128", "abc", "-1"]) {
      await rest(400, eve, "PUT", `/api/keys/devices/${device}`, body);
      await rest(400, eve, "GET", `/api/keys/devices/${device}`);
    }
    await rest(404, eve, "GET", "/api/keys/devices/2", undefined);
    await rest(400, eve, "POST", "/api/keys/devices/1/prekeys", { one_time_prekeys: [] });
    await rest(404, eve, "GET", "/api/users/999999999/keys");
    await rest(400, eve, "GET", "/api/users/abc/keys");
    await rest(401, null, "GET", `/api/users/${bob.id}/keys`);

    // Across a block, either way, no bundle.
    await rest(200, bob, "POST", "/api/blocks", { user_id: eve.id });
    await rest(403, eve, "GET", `/api/users/${bob.id}/keys`);
    await rest(403, bob, "GET", `/api/users/${eve.id}/keys`);
  });
});

describe("encrypted messages", () => {
  test("two users and a second device talk through the server, which never holds the plaintext", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const alicePhone = await published(alice, 1);
    const bobPhone = await published(bob, 1);
    const bobLaptop = await published(bob, 2);
    // Bob is away when alice writes first.
    const aliceSocket = await connect(server, alice, { name: "alice" });

    // Alice starts sessions with both of bob's devices from their bundles (PQXDH).
    const bundles = await bundlesOf(alice, bob);
    assert.deepEqual(bundles.map((b) => b.device_id), [1, 2]);
    assert.ok(bundles.every((b) => b.one_time_prekey), "each bundle carries a one-time prekey");
    for (const bundle of bundles) await alicePhone.startSession(bob.id, bundle);
    const first = "meet me at the old mill at nine";
    const encrypted = await alicePhone.encrypt(first, [[bob.id, 1], [bob.id, 2]]);
    assert.deepEqual(encrypted.envelopes.map((e) => e.type), [MessageType.PreKey, MessageType.PreKey]);
    const sent = await sendEncrypted(aliceSocket, { to_user_id: bob.id }, encrypted, { client_msg_id: "e2e-1" });
    const conversation = sent.conversation_id;

    // From the offline queue: bob's phone connects and decrypts its own envelope.
    const bobPhoneSocket = await connect(server, bob, { name: "bob-phone" });
    const queued = await bobPhoneSocket.expect("new_message");
    assert.equal(queued.message_id, sent.message_id);
    assert.equal(queued.encrypted, true);
    assert.equal(queued.content, "");
    assert.equal(queued.sender_device_id, 1);
    assert.deepEqual(queued.envelopes, encrypted.envelopes, "the envelopes arrive exactly as sent");
    assert.equal(await bobPhone.open(queued), first);

    // Bob answers from his phone to alice and to his own laptop (a session he starts
    // from his own bundle); alice's session now runs on SignalMessages.
    const [, laptopBundle] = await bundlesOf(bob, bob);
    await bobPhone.startSession(bob.id, laptopBundle);
    const answer = "nine it is; bring the map";
    const reply = await bobPhone.encrypt(answer, [[alice.id, 1], [bob.id, 2]]);
    assert.equal(reply.envelopes[0].type, MessageType.Signal, "an established session sends SignalMessages");
    const replied = await sendEncrypted(bobPhoneSocket, { conversation_id: conversation }, reply, { reply_to: sent.message_id });
    const live = await aliceSocket.expect("new_message");
    assert.equal(await alicePhone.open(live), answer);
    assert.equal(live.reply_to.message_id, sent.message_id);
    assert.equal(live.reply_to.excerpt, "", "a quote of an encrypted message quotes nothing");

    // The ratchet keeps turning through the server.
    const third = "see you";
    await sendEncrypted(aliceSocket, { conversation_id: conversation }, await alicePhone.encrypt(third, [[bob.id, 1], [bob.id, 2]]));
    const thirdAtBob = await bobPhoneSocket.expect("new_message");
    assert.equal(await bobPhone.open(thirdAtBob), third);

    // Bob's laptop comes online later and catches up with `sync`: its own envelope of
    // each message, from alice's phone and from bob's phone, opens.
    const bobLaptopSocket = await connect(server, bob, { name: "bob-laptop" });
    const synced = await bobLaptopSocket.request("sync", { since: [{ conversation_id: conversation, after_seq: 0 }] });
    assert.deepEqual(
      synced.messages.map((m) => [m.encrypted, m.envelopes.length, m.sender_device_id]),
      [[true, 2, 1], [true, 2, 1], [true, 2, 1]],
    );
    const opened = [];
    for (const m of synced.messages) opened.push(await bobLaptop.open(m));
    assert.deepEqual(opened, [first, answer, third]);

    // History, sync (both forms) and the REST change feed carry the envelopes as sent.
    const page = await history(server, bob, conversation);
    const inHistory = page.messages.find((m) => m.id === replied.message_id);
    assert.equal(inHistory.encrypted, true);
    assert.equal(inHistory.content, "");
    assert.equal(inHistory.sender_device_id, 1);
    assert.deepEqual(inHistory.envelopes, reply.envelopes);
    const changes = await bobLaptopSocket.request("sync", { changes: [{ conversation_id: conversation, after_version: 0 }] });
    assert.deepEqual(changes.changes.map((m) => m.envelopes), [encrypted.envelopes, reply.envelopes, thirdAtBob.envelopes]);
    const feed = await rest(200, alice, "GET", `/api/messages/changes?conversation_id=${conversation}`);
    assert.ok(feed.changes.every((m) => m.encrypted && m.content === "" && m.envelopes.length === 2));

    // The list preview has nothing to show; nothing stored or served holds a plaintext.
    const [listed] = (await conversationsOf(server, alice)).filter((c) => c.conversation_id === conversation);
    assert.equal(listed.last_message.content, "");
    const stored = await storedText();
    assert.ok(stored.includes(reply.envelopes[0].body.slice(0, 40)), "the scan sees the stored envelopes");
    const served = JSON.stringify([queued, live, thirdAtBob, page, synced, changes, feed, listed]);
    for (const secret of [first, answer, third]) {
      assertHidden(stored, secret, `the ${backend} database`);
      assertHidden(served, secret, "what the server sent");
    }
    await closeAll(aliceSocket, bobPhoneSocket, bobLaptopSocket);
  });

  test("delete drops the envelopes (a tombstone), reactions work, editing is refused", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const alicePhone = await published(alice, 1);
    const bobPhone = await published(bob, 1);
    const [aliceSocket, bobSocket] = await Promise.all([connect(server, alice), connect(server, bob)]);
    await alicePhone.startSession(bob.id, (await bundlesOf(alice, bob))[0]);
    const sent = await sendEncrypted(aliceSocket, { to_user_id: bob.id }, await alicePhone.encrypt("short-lived", [[bob.id, 1]]));
    assert.equal(await bobPhone.open(await bobSocket.expect("new_message")), "short-lived");

    await refusedOnSocket(aliceSocket, "edit_message", { message_id: sent.message_id, content: "plain now" }, "encrypted_message");
    await rest(409, alice, "PATCH", `/api/messages/${sent.message_id}`, { content: "plain now" });

    const reacted = await bobSocket.request("react", { message_id: sent.message_id, emoji: "🔒" });
    assert.deepEqual(reacted.reactions, [{ emoji: "🔒", count: 1 }], JSON.stringify(reacted));
    const heard = await aliceSocket.expect("reaction_changed");
    assert.equal(heard.emoji, "🔒", "the first change alice hears is the reaction: no edit went out");

    const deleted = await aliceSocket.request("delete_message", { message_id: sent.message_id });
    assert.equal(deleted.message_id, sent.message_id, JSON.stringify(deleted));
    assert.deepEqual(await bobSocket.expect("message_deleted"), deleted);
    const [tombstone] = (await history(server, bob, sent.conversation_id)).messages;
    assert.deepEqual(
      [tombstone.deleted, tombstone.encrypted, tombstone.envelopes, tombstone.content, tombstone.reactions],
      [true, true, null, "", []],
    );
    const changes = await bobSocket.request("sync", { changes: [{ conversation_id: sent.conversation_id, after_version: 0 }] });
    assert.equal(changes.changes[0].envelopes, undefined, "the tombstone's change carries no envelopes");
    assert.equal(changes.changes[0].encrypted, true);
    await closeAll(aliceSocket, bobSocket);
  });

  test("refusals: an envelope for a non-member, content beside envelopes, malformed envelopes, over the size limit", async () => {
    const [alice, bob, carol] = await server.registerMany("alice", "bob", "carol");
    const alicePhone = await published(alice, 1);
    const bobPhone = await published(bob, 1);
    await published(carol, 1);
    const [aliceSocket, bobSocket] = await Promise.all([connect(server, alice), connect(server, bob)]);
    await alicePhone.startSession(bob.id, (await bundlesOf(alice, bob))[0]);
    await alicePhone.startSession(carol.id, (await bundlesOf(alice, carol))[0]);
    const opening = await sendEncrypted(aliceSocket, { to_user_id: bob.id }, await alicePhone.encrypt("hi bob", [[bob.id, 1]]));
    assert.equal(await bobPhone.open(await bobSocket.expect("new_message")), "hi bob");
    const conversation = { conversation_id: opening.conversation_id };

    const toCarol = await alicePhone.encrypt("for carol's eyes", [[carol.id, 1]]);
    const answer = await refusedOnSocket(aliceSocket, "send_message", { ...conversation, encrypted: toCarol }, "invalid_payload");
    assert.match(answer.error.message, /not a member/);
    await refusedOnSocket(aliceSocket, "send_message", { to_user_id: bob.id, encrypted: toCarol }, "invalid_payload");

    const good = { sender_device_id: 1, envelopes: [{ user_id: bob.id, device_id: 1, type: 2, body: "AAAA" }] };
    const envelope = good.envelopes[0];
    for (const [what, payload] of [
      ["content beside envelopes", { ...conversation, content: "hi", encrypted: good }],
      ["empty content beside envelopes", { ...conversation, content: "", encrypted: good }],
      ["neither", { ...conversation }],
      ["no envelopes", { ...conversation, encrypted: { sender_device_id: 1, envelopes: [] } }],
      ["no sender device", { ...conversation, encrypted: { envelopes: good.envelopes } }],
      ["sender device 0", { ...conversation, encrypted: { ...good, sender_device_id: 0 } }],
      ["a body that is not base64", { ...conversation, encrypted: { ...good, envelopes: [{ ...envelope, body: "not base64!" }] } }],
      ["two envelopes for one device", { ...conversation, encrypted: { ...good, envelopes: [envelope, envelope] } }],
      ["device 128", { ...conversation, encrypted: { ...good, envelopes: [{ ...envelope, device_id: 128 }] } }],
      ["type 0", { ...conversation, encrypted: { ...good, envelopes: [{ ...envelope, type: 0 }] } }],
      ["an unknown field", { ...conversation, encrypted: { ...good, envelopes: [{ ...envelope, plaintext: "x" }] } }],
      ["encrypted not an object", { ...conversation, encrypted: "AAAA" }],
    ]) {
      const answered = await aliceSocket.request("send_message", payload);
      assert.equal(answered?.error?.code, "invalid_payload", `${what}: ${JSON.stringify(answered)}`);
      assert.equal((await aliceSocket.expect("error")).code, "invalid_payload");
    }
    // MAX_ENCRYPTED_BYTES (64 KiB by default) bounds the bodies with 80 bytes per envelope.
    const big = { ...envelope, body: "A".repeat(64_000) };
    const second = { ...envelope, user_id: alice.id, body: "A".repeat(1_500) };
    await refusedOnSocket(aliceSocket, "send_message", { ...conversation, encrypted: { ...good, envelopes: [big, second] } }, "content_too_long");

    // None of that reached bob: the next message he gets is this one.
    const next = await sendEncrypted(aliceSocket, conversation, await alicePhone.encrypt("still here", [[bob.id, 1]]));
    const atBob = await bobSocket.expect("new_message");
    assert.equal(atBob.message_id, next.message_id, "no refused message was delivered before it");
    assert.equal(await bobPhone.open(atBob), "still here");
    assert.equal(next.seq, opening.seq + 1, "no refused message took a seq");
    await closeAll(aliceSocket, bobSocket);
  });
});

const missingRedis = requireRedis(); // throws under CI=true when redis-server is missing
const clusterSkip =
  backend !== "postgres" ? "several nodes share one PostgreSQL database: set TEST_DATABASE_URL" : (missingRedis ?? false);
const clusterSuite = clusterSkip ? (name) => test(name, { skip: clusterSkip }, () => {}) : describe;

clusterSuite("two nodes over Redis", { timeout: 60_000 }, () => {
  let cluster;
  before(async () => {
    cluster = await startRedisCluster(2);
  });
  after(() => cluster?.stop());

  test("an encrypted message and prekeys_low reach bob on the other node", async () => {
    const [A, B] = cluster.nodes;
    const [alice, bob] = await A.registerMany("alice", "bob");
    const put = async (node, user, device, count) => {
      const res = await node.http("PUT", `/api/keys/devices/${device.deviceId}`, {
        token: user.token,
        json: await device.publication(count),
      });
      assert.equal(res.status, 200, res.text);
    };
    const alicePhone = new SignalDevice(alice.id, 1);
    const bobPhone = new SignalDevice(bob.id, 1);
    await put(A, alice, alicePhone, 5);
    await put(B, bob, bobPhone, 11);
    const [aliceOnA, bobOnB] = await Promise.all([
      connect(A, alice, { name: "alice on A" }),
      connect(B, bob, { name: "bob on B" }),
    ]);
    const fetch = async () => {
      const res = await A.http("GET", `/api/users/${bob.id}/keys`, { token: alice.token });
      assert.equal(res.status, 200, res.text);
      return res.body.devices;
    };
    const [bundle] = await fetch(); // 11 → 10
    await alicePhone.startSession(bob.id, bundle);
    const ack = await aliceOnA.request("send_message", {
      to_user_id: bob.id,
      encrypted: await alicePhone.encrypt("across nodes", [[bob.id, 1]]),
    });
    assert.equal(ack.status, "sent", JSON.stringify(ack));
    const delivered = await bobOnB.expect("new_message");
    assert.equal(await bobPhone.open(delivered), "across nodes");
    await fetch(); // 10 → 9, claimed on A
    assert.deepEqual(await bobOnB.expect("prekeys_low"), { device_id: 1, remaining: 9 });
    await bobOnB.expectNone("prekeys_low", { withinMs: 0 });
    await closeAll(aliceOnA, bobOnB);
  });
});
