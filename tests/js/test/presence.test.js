// Presence: user_online / user_offline to the people one shares a conversation
// with (and nobody else), silence for second devices and quick reconnects, and
// last_seen as GET /api/presence and the conversation list report it.
//
// The server runs with a short PRESENCE_GRACE_MS so going offline is quick to
// observe; the no-flap test uses its own server with a longer grace, so that a
// reconnect comfortably fits inside it.

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, ISO_UTC } from "../lib/harness.js";
import { connect, closeAll } from "../lib/client.js";
import { conversationsOf, presenceOf, eventually } from "../lib/api.js";

const GRACE_MS = 300;
/** How long a user_offline may take beyond the grace before we call it missing. */
const SLACK_MS = 3_000;

let server;
before(async () => {
  server = await startServer({ env: { PRESENCE_GRACE_MS: String(GRACE_MS) } });
});
after(() => server?.stop());

/**
 * Gives `user` a direct conversation with each of `contacts` (one message each,
 * sent while they are offline), then waits until `user` is seen offline again,
 * so the test starts from "everybody offline, conversations exist".
 * Resolves to the conversation ids, in the order of `contacts`.
 */
async function acquaint(srv, user, contacts) {
  const socket = await connect(srv, user, { name: `${user.display_name} (set-up)` });
  const ids = [];
  for (const contact of contacts) {
    const ack = await socket.request("send_message", { to_user_id: contact.id, content: "hi" });
    assert.equal(ack.status, "sent", `set-up message: ${JSON.stringify(ack)}`);
    ids.push(ack.conversation_id);
  }
  await socket.close();
  await eventually(
    async () => (await presenceOf(srv, contacts[0], [user.id]))[0]?.online === false,
    { what: `${user.display_name} offline after set-up`, timeoutMs: 10_000 },
  );
  return ids;
}

describe("user_online", () => {
  test("a user's first device coming online is announced to contacts, not to strangers", async () => {
    const [alice, bob, carol] = await server.registerMany("alice", "bob", "carol");
    await acquaint(server, alice, [bob]);
    const bobSocket = await connect(server, bob);
    const carolSocket = await connect(server, carol); // shares no conversation with alice

    const aliceSocket = await connect(server, alice);

    assert.deepEqual(await bobSocket.expect("user_online"), { user_id: alice.id });
    await bobSocket.expectNone("user_online");
    await carolSocket.expectNone("user_online", { withinMs: 100 });
    await closeAll(aliceSocket, bobSocket, carolSocket);
  });

  test("a contact already online hears the other come online (the reverse order)", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    await acquaint(server, alice, [bob]);
    // Presence goes only to people one has written to: bob answers first.
    await acquaint(server, bob, [alice]);
    const aliceSocket = await connect(server, alice);
    const bobSocket = await connect(server, bob);
    // bob came online second: alice, already connected, is told.
    assert.deepEqual(await aliceSocket.expect("user_online"), { user_id: bob.id });
    await closeAll(aliceSocket, bobSocket);
  });
});

describe("user_offline", () => {
  test("a second device is silent; offline comes only after the last device leaves and the grace", async () => {
    const [alice, bob, carol] = await server.registerMany("alice", "bob", "carol");
    await acquaint(server, alice, [bob]);
    const bobSocket = await connect(server, bob);
    const carolSocket = await connect(server, carol);

    const alicePhone = await connect(server, alice, { name: "alice phone" });
    assert.deepEqual(await bobSocket.expect("user_online"), { user_id: alice.id });
    const aliceLaptop = await connect(server, alice, { name: "alice laptop" });
    await bobSocket.expectNone("user_online", { withinMs: 300 });

    // One of two devices leaves: alice is still online, nothing is announced,
    // not even after the grace.
    await alicePhone.close();
    await bobSocket.expectNone("user_offline", { withinMs: GRACE_MS + 400 });

    const leftAt = Date.now();
    await aliceLaptop.close();
    const offline = await bobSocket.expect("user_offline", { timeoutMs: GRACE_MS + SLACK_MS });
    const heardAfter = Date.now() - leftAt;
    assert.deepEqual(Object.keys(offline).sort(), ["last_seen", "user_id"]);
    assert.equal(offline.user_id, alice.id);
    assert.match(offline.last_seen, ISO_UTC);
    const lastSeen = Date.parse(offline.last_seen);
    assert.ok(
      lastSeen >= leftAt - 1_000 && lastSeen <= Date.now() + 1_000,
      `last_seen ${offline.last_seen} is when alice left (${new Date(leftAt).toISOString()})`,
    );
    assert.ok(
      heardAfter >= GRACE_MS - 50,
      `user_offline must wait for the ${GRACE_MS} ms grace; it came after ${heardAfter} ms`,
    );

    await bobSocket.expectNone("user_offline", { withinMs: 200 });
    await bobSocket.expectNone("user_online", { withinMs: 0 });
    assert.deepEqual(carolSocket.collect("user_online"), [], "stranger heard user_online");
    assert.deepEqual(carolSocket.collect("user_offline"), [], "stranger heard user_offline");
    await closeAll(bobSocket, carolSocket);
  });

  test("every device of every contact is told, and coming back is announced again", async () => {
    const [alice, bob, dave] = await server.registerMany("alice", "bob", "dave");
    await acquaint(server, alice, [bob, dave]);
    const bobPhone = await connect(server, bob, { name: "bob phone" });
    const bobLaptop = await connect(server, bob, { name: "bob laptop", transports: ["polling"] });
    const daveSocket = await connect(server, dave);

    let aliceSocket = await connect(server, alice);
    for (const device of [bobPhone, bobLaptop, daveSocket]) {
      assert.deepEqual(await device.expect("user_online"), { user_id: alice.id }, device.name);
    }
    await aliceSocket.close();
    const offline = [];
    for (const device of [bobPhone, bobLaptop, daveSocket]) {
      const event = await device.expect("user_offline", { timeoutMs: GRACE_MS + SLACK_MS });
      assert.equal(event.user_id, alice.id, device.name);
      offline.push(event.last_seen);
    }
    assert.equal(new Set(offline).size, 1, `one last_seen for everyone: ${offline}`);

    aliceSocket = await connect(server, alice);
    for (const device of [bobPhone, bobLaptop, daveSocket]) {
      assert.deepEqual(await device.expect("user_online"), { user_id: alice.id }, device.name);
    }
    await closeAll(aliceSocket, bobPhone, bobLaptop, daveSocket);
  });
});

describe("GET /api/presence and the conversation list", () => {
  test("online and last_seen are reported for contacts only; last_seen is stored", async () => {
    const [alice, bob, carol, dave] = await server.registerMany("alice", "bob", "carol", "dave");
    const [bobConversation] = await acquaint(server, alice, [bob, dave]);
    const bobSocket = await connect(server, bob);
    const aliceSocket = await connect(server, alice);
    await bobSocket.expect("user_online");

    // Online: alice is reported to bob; carol (a stranger) and an unknown id are omitted.
    const whileOnline = await presenceOf(server, bob, [alice.id, carol.id, 987654321]);
    assert.equal(whileOnline.length, 1, `only alice: ${JSON.stringify(whileOnline)}`);
    assert.equal(whileOnline[0].user_id, alice.id);
    assert.equal(whileOnline[0].online, true);
    assert.deepEqual(Object.keys(whileOnline[0]).sort(), ["last_seen", "online", "user_id"]);

    let item = (await conversationsOf(server, bob)).find((c) => c.conversation_id === bobConversation);
    assert.ok(item, "bob's list has the conversation with alice");
    assert.equal(item.other_user_id, alice.id);
    assert.equal(item.online, true);

    // A stranger learns nothing about either of them.
    assert.deepEqual(await presenceOf(server, carol, [alice.id, bob.id]), []);

    // Offline: the last_seen announced is the one stored and reported later, also
    // to a contact (dave) who was not connected when it happened.
    await aliceSocket.close();
    const { last_seen: lastSeen } = await bobSocket.expect("user_offline", {
      timeoutMs: GRACE_MS + SLACK_MS,
    });
    for (const viewer of [bob, dave]) {
      const [reported] = await presenceOf(server, viewer, [alice.id]);
      assert.equal(reported?.user_id, alice.id, `${viewer.display_name} sees alice`);
      assert.equal(reported.online, false, `${viewer.display_name}: alice offline`);
      assert.match(reported.last_seen, ISO_UTC);
      assert.equal(Date.parse(reported.last_seen), Date.parse(lastSeen), `${viewer.display_name}: last_seen`);
    }
    item = (await conversationsOf(server, bob)).find((c) => c.conversation_id === bobConversation);
    assert.equal(item.online, false);
    assert.equal(Date.parse(item.last_seen), Date.parse(lastSeen));
    await bobSocket.close();
  });

  test("the presence query is validated", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    for (const query of ["", "?user_ids=", "?user_ids=abc", `?user_ids=${bob.id},x`]) {
      const res = await server.http("GET", `/api/presence${query}`, { token: alice.token });
      assert.equal(res.status, 400, `${query || "(none)"}: ${res.text}`);
      assert.equal(typeof res.body?.error, "string");
    }
    const tooMany = Array.from({ length: 501 }, (_, i) => i + 1).join(",");
    const res = await server.http("GET", `/api/presence?user_ids=${tooMany}`, { token: alice.token });
    assert.equal(res.status, 400, `501 ids: ${res.text}`);
    const anonymous = await server.http("GET", `/api/presence?user_ids=${bob.id}`);
    assert.equal(anonymous.status, 401);
  });
});

describe("quick reconnect", () => {
  const LONG_GRACE_MS = 1_500;
  let graceServer;
  before(async () => {
    graceServer = await startServer({ env: { PRESENCE_GRACE_MS: String(LONG_GRACE_MS) } });
  });
  after(() => graceServer?.stop());

  test("reconnecting within the grace shows contacts neither user_offline nor user_online", async () => {
    const [alice, bob] = await graceServer.registerMany("alice", "bob");
    await acquaint(graceServer, alice, [bob]);
    const bobSocket = await connect(graceServer, bob);
    let aliceSocket = await connect(graceServer, alice);
    assert.deepEqual(await bobSocket.expect("user_online"), { user_id: alice.id });

    // A network blip: the socket drops and a new one connects right away.
    await aliceSocket.close();
    aliceSocket = await connect(graceServer, alice, { name: "alice (reconnected)" });

    // Past the point where the dropped socket's grace would have run out.
    await bobSocket.expectNone("user_offline", { withinMs: LONG_GRACE_MS + 700 });
    await bobSocket.expectNone("user_online", { withinMs: 0 });
    const [reported] = await presenceOf(graceServer, bob, [alice.id]);
    assert.equal(reported.online, true, "alice still online");

    // A real departure is still announced: bob was listening all along.
    await aliceSocket.close();
    const offline = await bobSocket.expect("user_offline", { timeoutMs: LONG_GRACE_MS + SLACK_MS });
    assert.equal(offline.user_id, alice.id);
    await bobSocket.close();
  });
});
