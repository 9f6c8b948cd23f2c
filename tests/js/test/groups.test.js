// Group conversations: creating a group, roles and membership changes with their
// events, messages to every member's devices, the offline queue and receipts that
// wait for every member, what a departed member can no longer see or do, unread
// counts, and presence between people who share only a group.
//
// The server runs with a short PRESENCE_GRACE_MS so going offline is quick to
// observe; the size limit is tested on a second server with GROUP_MAX_MEMBERS=3.

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { startServer, ISO_UTC } from "../lib/harness.js";
import { connect, closeAll } from "../lib/client.js";
import { history, conversationsOf, presenceOf, eventually, createGroup, groupOf } from "../lib/api.js";

const GRACE_MS = 300;
/** How long a user_offline may take beyond the grace before we call it missing. */
const SLACK_MS = 3_000;

let server;
before(async () => {
  server = await startServer({ env: { PRESENCE_GRACE_MS: String(GRACE_MS) } });
});
after(() => server?.stop());

/** Registers users one after another, so their ids ascend in the order given. */
async function registerInOrder(...labels) {
  const users = [];
  for (const label of labels) users.push(await server.register(label));
  return users;
}

/** `method path` as `user`, with an optional JSON body. */
function call(user, method, path, json) {
  return server.http(method, path, { token: user.token, json });
}

/** `method path` as `user`, which must answer 200; resolves to the body. */
async function succeed(user, method, path, json) {
  const res = await call(user, method, path, json);
  assert.equal(res.status, 200, `${method} ${path} as ${user.display_name}: ${res.status} ${res.text}`);
  return res.body;
}

/** `method path` as `user`, which must be refused with `status` and an { error } body. */
async function refused(status, user, method, path, json) {
  const res = await call(user, method, path, json);
  assert.equal(res.status, status, `${method} ${path} as ${user.display_name}: ${res.status} ${res.text}`);
  assert.equal(typeof res.body?.error, "string", `${method} ${path} gives an { error } body: ${res.text}`);
  return res;
}

/** The members' roles by user id: { [id]: "owner" | "admin" | "member" }. */
function rolesOf(group) {
  return Object.fromEntries(group.members.map((member) => [member.user_id, member.role]));
}

/** roles([alice, "owner"], [bob, "member"]), to compare with rolesOf. */
function roles(...pairs) {
  return Object.fromEntries(pairs.map(([user, role]) => [user.id, role]));
}

/** A group with its members in user id order (the contract fixes no order). */
function normalised(group) {
  return { ...group, members: [...group.members].sort((a, b) => a.user_id - b.user_id) };
}

function assertGroupShape(group) {
  assert.deepEqual(
    Object.keys(group).sort(),
    ["conversation_id", "created_at", "created_by", "description", "kind", "members", "name"],
  );
  assert.equal(typeof group.conversation_id, "number");
  assert.equal(group.kind, "group");
  assert.match(group.created_at, ISO_UTC);
  for (const member of group.members) {
    assert.deepEqual(Object.keys(member).sort(), ["joined_at", "role", "user_id"]);
    assert.match(member.joined_at, ISO_UTC);
  }
}

const GROUP_EVENT_FIELDS = ["actor_id", "conversation_id", "description", "name", "role", "user_id"];

/** Asserts a group event carries `expected` and no field outside the contract's. */
function assertGroupEvent(payload, expected, what) {
  for (const key of Object.keys(payload ?? {})) {
    assert.ok(GROUP_EVENT_FIELDS.includes(key), `${what}: unexpected field "${key}" in ${JSON.stringify(payload)}`);
  }
  for (const [key, value] of Object.entries(expected)) {
    assert.deepEqual(payload?.[key], value, `${what}: ${key} in ${JSON.stringify(payload)}`);
  }
}

/** The next `event` on `device`, asserted to carry `expected`. */
async function expectGroupEvent(device, event, expected) {
  const payload = await device.expect(event);
  assertGroupEvent(payload, expected, `${device.name}: ${event}`);
  return payload;
}

/** The next `expected.length` `event`s on `device`, in any order, matched by user_id. */
async function expectGroupEvents(device, event, expected) {
  const byUser = (a, b) => a.user_id - b.user_id;
  const received = [...(await device.expectMany(event, expected.length))].sort(byUser);
  [...expected].sort(byUser).forEach((want, i) => {
    assertGroupEvent(received[i], want, `${device.name}: ${event} about user ${want.user_id}`);
  });
}

/** Sends `content` to group `groupId` from `socket`; asserts it was accepted, resolves to the ack. */
async function say(socket, groupId, content, extra = {}) {
  const ack = await socket.request("send_message", { conversation_id: groupId, content, ...extra });
  assert.equal(ack?.status, "sent", `${socket.name} saying "${content}": ${JSON.stringify(ack)}`);
  return ack;
}

/** The next new_message on `device`, asserted to be the message `ack` acknowledged. */
async function expectMessage(device, ack, from, content) {
  const received = await device.expect("new_message");
  const what = `${device.name}: new_message "${content}"`;
  assert.equal(received.message_id, ack.message_id, `${what}: message_id (got "${received.content}")`);
  assert.equal(received.conversation_id, ack.conversation_id, `${what}: conversation_id`);
  assert.equal(received.from_user_id, from.id, `${what}: from_user_id`);
  assert.equal(received.content, content, `${what}: content`);
  assert.equal(received.seq, ack.seq, `${what}: seq`);
  assert.match(received.sent_at, ISO_UTC);
  assert.equal(Date.parse(received.sent_at), Date.parse(ack.sent_at), `${what}: sent_at`);
  return received;
}

/** `event` with `payload` from `socket` must be refused with `code`: in the ack and as an error event. */
async function refusedOnSocket(socket, event, payload, code) {
  const answer = await socket.request(event, payload);
  assert.equal(answer?.error?.code, code, `${socket.name} ${event} ${JSON.stringify(payload)}: ${JSON.stringify(answer)}`);
  assert.equal(typeof answer.error.message, "string");
  assert.equal((await socket.expect("error")).code, code, `${socket.name}: error event for ${event}`);
}

/** The caller's list entry for `conversationId` (asserted present). */
async function listed(user, conversationId) {
  const item = (await conversationsOf(server, user)).find((c) => c.conversation_id === conversationId);
  assert.ok(item, `${user.display_name}'s list has conversation ${conversationId}`);
  return item;
}

async function assertNotListed(user, conversationId) {
  const ids = (await conversationsOf(server, user)).map((c) => c.conversation_id);
  assert.ok(!ids.includes(conversationId), `${user.display_name}'s list still has ${conversationId}: ${ids}`);
}

/** Waits until the clock is past `iso`, so that the next join is stamped strictly later. */
function clockPast(iso) {
  return eventually(() => Date.now() > Date.parse(iso), { what: `the clock passing ${iso}` });
}

describe("creating a group", () => {
  test("the creator owns it, every member's devices hear group_created, and it is listed as a group", async () => {
    const [alice, bob, carol, dave] = await server.registerMany("alice", "bob", "carol", "dave");
    const alicePhone = await connect(server, alice, { name: "alice phone" });
    const aliceLaptop = await connect(server, alice, { name: "alice laptop" });
    const bobSocket = await connect(server, bob);
    const carolSocket = await connect(server, carol);
    const daveSocket = await connect(server, dave);
    // alice already has a direct chat with bob: the group is listed beside it.
    const direct = await bobSocket.request("send_message", { to_user_id: alice.id, content: "hi alice" });
    assert.equal(direct.status, "sent", JSON.stringify(direct));

    const res = await call(alice, "POST", "/api/groups", {
      name: "Weekend trip",
      description: "Who brings what",
      member_ids: [bob.id, carol.id, alice.id],
    });
    assert.equal(res.status, 201, res.text);
    const { group } = res.body;
    assertGroupShape(group);
    assert.equal(group.name, "Weekend trip");
    assert.equal(group.description, "Who brings what");
    assert.equal(group.created_by, alice.id);
    assert.equal(group.members.length, 3, "alice, listed among member_ids too, is one member");
    assert.deepEqual(rolesOf(group), roles([alice, "owner"], [bob, "member"], [carol, "member"]));
    const id = group.conversation_id;

    // Every member reads the same group.
    for (const user of [alice, bob, carol]) {
      const seen = await groupOf(server, user, id);
      assertGroupShape(seen);
      assert.deepEqual(normalised(seen), normalised(group), `as ${user.display_name}`);
    }

    for (const device of [alicePhone, aliceLaptop, bobSocket, carolSocket]) {
      await expectGroupEvent(device, "group_created", { conversation_id: id, actor_id: alice.id, name: "Weekend trip" });
    }
    await daveSocket.expectNone("group_created", { withinMs: 200 });

    const item = await listed(bob, id);
    assert.deepEqual(Object.keys(item).sort(), [
      "conversation_id", "kind", "last_message", "last_seen", "member_count", "name", "online",
      "other_user_id", "unread_count", "updated_at",
    ]);
    assert.deepEqual(
      {
        kind: item.kind,
        name: item.name,
        member_count: item.member_count,
        other_user_id: item.other_user_id,
        last_message: item.last_message,
        unread_count: item.unread_count,
        online: item.online,
        last_seen: item.last_seen,
      },
      {
        kind: "group",
        name: "Weekend trip",
        member_count: 3,
        other_user_id: null,
        last_message: null,
        unread_count: 0,
        online: null,
        last_seen: null,
      },
    );
    assert.match(item.updated_at, ISO_UTC);
    const aliceList = await conversationsOf(server, alice);
    assert.equal(aliceList.find((c) => c.conversation_id === direct.conversation_id)?.kind, "direct");
    assert.equal(aliceList.find((c) => c.conversation_id === id)?.kind, "group");

    // dave is no member: he neither sees it listed nor can read it.
    await assertNotListed(dave, id);
    await refused(404, dave, "GET", `/api/groups/${id}`);

    // Without a description, description is null.
    const plain = await createGroup(server, bob, [carol], { name: "No description" });
    assert.equal(plain.description, null);
    assert.deepEqual(rolesOf(plain), roles([bob, "owner"], [carol, "member"]));
    await closeAll(alicePhone, aliceLaptop, bobSocket, carolSocket, daveSocket);
  });
});

describe("validation and the size limit", () => {
  let limitServer;
  before(async () => {
    limitServer = await startServer({ env: { GROUP_MAX_MEMBERS: "3" } });
  });
  after(() => limitServer?.stop());

  test("name, description and member ids are validated (422), the limit too; a non-member gets 404", async () => {
    const [alice, bob, carol] = await server.registerMany("alice", "bob", "carol");
    const invalid = [
      ["an empty name", { name: "", member_ids: [bob.id] }],
      ["a blank name", { name: "   ", member_ids: [bob.id] }],
      ["a 101-character name", { name: "n".repeat(101), member_ids: [bob.id] }],
      ["a 1001-character description", { name: "ok", description: "d".repeat(1001), member_ids: [bob.id] }],
      ["an unknown member id", { name: "ok", member_ids: [bob.id, 987654321] }],
    ];
    for (const [what, json] of invalid) {
      const res = await call(alice, "POST", "/api/groups", json);
      assert.equal(res.status, 422, `${what}: ${res.status} ${res.text}`);
      assert.equal(typeof res.body?.error, "string", `${what}: an { error } body`);
    }
    // None of them was created.
    assert.deepEqual(await conversationsOf(server, alice), []);
    assert.deepEqual(await conversationsOf(server, bob), []);

    // The limits themselves are accepted; the name is measured after trimming.
    const longest = await createGroup(server, alice, [bob], {
      name: `  ${"n".repeat(100)}  `,
      description: "d".repeat(1000),
    });
    assert.equal(longest.name.trim(), "n".repeat(100));
    assert.equal(longest.description, "d".repeat(1000));
    const id = longest.conversation_id;
    const path = `/api/groups/${id}`;

    // Renaming follows the same rules.
    await refused(422, alice, "PATCH", path, { name: "   " });
    await refused(422, alice, "PATCH", path, { name: "n".repeat(101) });
    await refused(422, alice, "PATCH", path, { description: "d".repeat(1001) });
    const unchanged = await groupOf(server, bob, id);
    assert.equal(unchanged.name.trim(), "n".repeat(100));
    assert.equal(unchanged.description, "d".repeat(1000));

    // carol is no member: the group and all it holds are a 404 to her, the same
    // answer as for a group that does not exist.
    const notMine = await refused(404, carol, "GET", path);
    const missing = await refused(404, carol, "GET", "/api/groups/987654321");
    assert.deepEqual(notMine.body, missing.body);
    await refused(404, carol, "GET", `/api/messages?conversation_id=${id}`);
    await refused(404, carol, "PATCH", path, { name: "mine now" });
    await refused(404, carol, "POST", `${path}/members`, { user_ids: [carol.id] });
    await refused(404, carol, "POST", `${path}/leave`);
    assert.deepEqual(rolesOf(await groupOf(server, alice, id)), roles([alice, "owner"], [bob, "member"]));

    // A direct conversation is not a group, even to its members.
    const aliceSocket = await connect(server, alice);
    const direct = await aliceSocket.request("send_message", { to_user_id: bob.id, content: "hi" });
    assert.equal(direct.status, "sent", JSON.stringify(direct));
    await refused(404, alice, "GET", `/api/groups/${direct.conversation_id}`);
    await aliceSocket.close();

    // GROUP_MAX_MEMBERS=3 counts the creator.
    const [owner, u1, u2, u3] = await limitServer.registerMany("owner", "u1", "u2", "u3");
    const tooMany = await limitServer.http("POST", "/api/groups", {
      token: owner.token,
      json: { name: "four", member_ids: [u1.id, u2.id, u3.id] },
    });
    assert.equal(tooMany.status, 422, `four members: ${tooMany.text}`);
    assert.equal(typeof tooMany.body?.error, "string");
    // The creator listed in member_ids is still one member: three in all.
    const full = await createGroup(limitServer, owner, [owner, u1, u2], { name: "three" });
    assert.deepEqual(rolesOf(full), roles([owner, "owner"], [u1, "member"], [u2, "member"]));
    const add = (ids) =>
      limitServer.http("POST", `/api/groups/${full.conversation_id}/members`, {
        token: owner.token,
        json: { user_ids: ids },
      });
    const over = await add([u3.id]);
    assert.equal(over.status, 422, `a fourth member: ${over.text}`);
    assert.equal(typeof over.body?.error, "string");
    // Adding a current member is a no-op, not a fourth member.
    const again = await add([u1.id]);
    assert.equal(again.status, 200, again.text);
    assert.deepEqual(rolesOf(again.body.group), roles([owner, "owner"], [u1, "member"], [u2, "member"]));
    // Once someone has left there is room again.
    const left = await limitServer.http("POST", `/api/groups/${full.conversation_id}/leave`, { token: u2.token });
    assert.equal(left.status, 200, left.text);
    const room = await add([u3.id]);
    assert.equal(room.status, 200, room.text);
    assert.deepEqual(rolesOf(room.body.group), roles([owner, "owner"], [u1, "member"], [u3, "member"]));
  });
});

describe("messages in a group", () => {
  test("a message reaches every other member on every device, never the sender's; seq counts across senders", async () => {
    const [alice, bob, carol] = await server.registerMany("alice", "bob", "carol");
    const aliceSocket = await connect(server, alice);
    const bobPhone = await connect(server, bob, { name: "bob phone" });
    const bobLaptop = await connect(server, bob, { name: "bob laptop" });
    const carolSocket = await connect(server, carol);
    const { conversation_id: id } = await createGroup(server, alice, [bob, carol], { name: "Family" });
    for (const device of [aliceSocket, bobPhone, bobLaptop, carolSocket]) await device.expect("group_created");

    const first = await say(aliceSocket, id, "hello everyone");
    assert.deepEqual(Object.keys(first).sort(), ["conversation_id", "message_id", "sent_at", "seq", "status"]);
    assert.equal(first.conversation_id, id);
    assert.equal(first.seq, 1);
    assert.deepEqual(await aliceSocket.expect("message_sent"), first);
    for (const device of [bobPhone, bobLaptop, carolSocket]) {
      await expectMessage(device, first, alice, "hello everyone");
    }

    const second = await say(bobLaptop, id, "hi from bob");
    assert.equal(second.seq, 2);
    // alice's first new_message is bob's: her own never came back to her.
    await expectMessage(aliceSocket, second, bob, "hi from bob");
    await expectMessage(carolSocket, second, bob, "hi from bob");
    await bobPhone.expectNone("new_message");
    await bobLaptop.expectNone("new_message", { withinMs: 0 });

    const third = await say(carolSocket, id, "and carol");
    assert.equal(third.seq, 3);
    for (const device of [aliceSocket, bobPhone, bobLaptop]) {
      await expectMessage(device, third, carol, "and carol");
    }
    await carolSocket.expectNone("new_message");
    await aliceSocket.expectNone("new_message", { withinMs: 0 });

    // Every member's history holds the same three messages.
    for (const user of [alice, bob, carol]) {
      const body = await history(server, user, id);
      assert.equal(body.total, 3, user.display_name);
      assert.deepEqual(
        body.messages.map((m) => [m.seq, m.id, m.conversation_id, m.sender_id, m.content]),
        [
          [3, third.message_id, id, carol.id, "and carol"],
          [2, second.message_id, id, bob.id, "hi from bob"],
          [1, first.message_id, id, alice.id, "hello everyone"],
        ],
        `history as ${user.display_name}`,
      );
    }
    await closeAll(aliceSocket, bobPhone, bobLaptop, carolSocket);
  });

  test("client_msg_id retries, sync and typing work in a group", async () => {
    const [alice, bob, carol, dave] = await server.registerMany("alice", "bob", "carol", "dave");
    const [aliceSocket, bobSocket, carolSocket, daveSocket] = await Promise.all(
      [alice, bob, carol, dave].map((user) => connect(server, user)),
    );
    const { conversation_id: id } = await createGroup(server, alice, [bob, carol], { name: "Reliable" });
    for (const device of [aliceSocket, bobSocket, carolSocket]) await device.expect("group_created");

    // A retry with the same client_msg_id answers the original; nobody gets it twice.
    const payload = { conversation_id: id, content: "exactly once", client_msg_id: randomUUID() };
    const first = await aliceSocket.request("send_message", payload);
    assert.equal(first.status, "sent", JSON.stringify(first));
    for (const device of [bobSocket, carolSocket]) await expectMessage(device, first, alice, "exactly once");
    assert.deepEqual(await aliceSocket.request("send_message", payload), first);
    const next = await say(aliceSocket, id, "next");
    assert.equal(next.seq, 2, "the retry used up no seq");
    // Each member's next new_message is "next": no duplicate came in between.
    for (const device of [bobSocket, carolSocket]) await expectMessage(device, next, alice, "next");
    await bobSocket.expectNone("new_message");
    await carolSocket.expectNone("new_message", { withinMs: 0 });
    assert.equal((await history(server, bob, id)).total, 2);

    // sync by seq.
    const all = await carolSocket.request("sync", { since: [{ conversation_id: id, after_seq: 0 }] });
    assert.equal(all?.has_more, false, JSON.stringify(all));
    assert.deepEqual(
      all.messages.map((m) => [m.seq, m.message_id, m.conversation_id, m.from_user_id, m.content]),
      [
        [1, first.message_id, id, alice.id, "exactly once"],
        [2, next.message_id, id, alice.id, "next"],
      ],
    );
    const rest = await bobSocket.request("sync", { since: [{ conversation_id: id, after_seq: 1 }] });
    assert.deepEqual(rest.messages.map((m) => m.message_id), [next.message_id]);
    assert.equal(rest.has_more, false);

    // dave is no member; naming both a user and a conversation is malformed.
    await refusedOnSocket(daveSocket, "sync", { since: [{ conversation_id: id, after_seq: 0 }] }, "conversation_not_found");
    await refusedOnSocket(daveSocket, "send_message", { conversation_id: id, content: "let me in" }, "conversation_not_found");
    await refusedOnSocket(
      aliceSocket,
      "send_message",
      { conversation_id: id, to_user_id: bob.id, content: "to whom?" },
      "invalid_payload",
    );

    // Typing reaches every other member, never the typer.
    aliceSocket.emit("typing", { conversation_id: id, is_typing: true });
    for (const device of [bobSocket, carolSocket]) {
      assert.deepEqual(
        await device.expect("typing"),
        { conversation_id: id, user_id: alice.id, is_typing: true },
        device.name,
      );
    }
    aliceSocket.emit("typing", { conversation_id: id, is_typing: false });
    for (const device of [bobSocket, carolSocket]) {
      assert.deepEqual(
        await device.expect("typing"),
        { conversation_id: id, user_id: alice.id, is_typing: false },
        device.name,
      );
    }
    await refusedOnSocket(daveSocket, "typing", { conversation_id: id, is_typing: true }, "conversation_not_found");
    await bobSocket.expectNone("typing");
    await aliceSocket.expectNone("typing", { withinMs: 0 });
    await daveSocket.expectNone("new_message", { withinMs: 0 });
    await closeAll(aliceSocket, bobSocket, carolSocket, daveSocket);
  });

  test("unread counts: each member counts the others' messages; reading brings it to 0 and tells each sender", async () => {
    const [alice, bob, carol] = await server.registerMany("alice", "bob", "carol");
    const aliceSocket = await connect(server, alice);
    const bobSocket = await connect(server, bob);
    // carol stays offline.
    const { conversation_id: id } = await createGroup(server, alice, [bob, carol], { name: "Team" });

    const a1 = await say(aliceSocket, id, "a1");
    const b1 = await say(bobSocket, id, "b1");
    const a2 = await say(aliceSocket, id, "a2");
    const b2 = await say(bobSocket, id, "b2");
    const b3 = await say(bobSocket, id, "b3");
    assert.deepEqual([a1, b1, a2, b2, b3].map((ack) => ack.seq), [1, 2, 3, 4, 5]);

    const unread = async (user) => (await listed(user, id)).unread_count;
    assert.equal(await unread(alice), 3, "bob's three");
    assert.equal(await unread(bob), 2, "alice's two");
    assert.equal(await unread(carol), 5, "everyone else's");
    const item = await listed(carol, id);
    assert.equal(item.kind, "group");
    assert.equal(item.member_count, 3);
    assert.equal(item.last_message?.content, "b3");
    assert.equal(item.last_message.sender_id, bob.id);
    assert.equal(Date.parse(item.last_message.sent_at), Date.parse(b3.sent_at));

    // carol reads over REST: both senders hear of it, each about their own newest message.
    const res = await call(carol, "POST", `/api/messages/read?conversation_id=${id}`);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body, { success: true, messages_marked: 5 });
    for (const [device, newest] of [[aliceSocket, a2], [bobSocket, b3]]) {
      const read = await device.expect("message_read");
      assert.deepEqual(Object.keys(read).sort(), ["conversation_id", "message_id", "read_at", "reader_id"]);
      assert.equal(read.conversation_id, id, device.name);
      assert.equal(read.message_id, newest.message_id, `${device.name}: their own newest message`);
      assert.equal(read.reader_id, carol.id, device.name);
      assert.match(read.read_at, ISO_UTC);
    }
    assert.equal(await unread(carol), 0);
    assert.equal(await unread(alice), 3, "carol reading does not read alice's inbox");
    assert.equal(await unread(bob), 2, "nor bob's");

    // alice reads over the socket: bob's three are marked, and bob hears of it.
    assert.deepEqual(await aliceSocket.request("mark_read", { conversation_id: id }), {
      success: true,
      messages_marked: 3,
    });
    const byAlice = await bobSocket.expect("message_read");
    assert.equal(byAlice.message_id, b3.message_id);
    assert.equal(byAlice.reader_id, alice.id);
    assert.equal(await unread(alice), 0);
    assert.equal(await unread(bob), 2);

    const bobRead = await call(bob, "POST", `/api/messages/read?conversation_id=${id}`);
    assert.deepEqual(bobRead.body, { success: true, messages_marked: 2 });
    const byBob = await aliceSocket.expect("message_read");
    assert.equal(byBob.message_id, a2.message_id);
    assert.equal(byBob.reader_id, bob.id);
    assert.equal(await unread(bob), 0);
    await aliceSocket.expectNone("message_read");
    await bobSocket.expectNone("message_read", { withinMs: 0 });
    await closeAll(aliceSocket, bobSocket);
  });
});

describe("roles", () => {
  test("a member may change nothing; an admin adds, removes members and renames; only the owner sets roles", async () => {
    const [alice, bob, carol, dave, erin, frank] = await server.registerMany(
      "alice", "bob", "carol", "dave", "erin", "frank",
    );
    const [aliceSocket, bobSocket, carolSocket, daveSocket, erinSocket] = await Promise.all(
      [alice, bob, carol, dave, erin].map((user) => connect(server, user)),
    );
    const { conversation_id: id } = await createGroup(server, alice, [bob, carol, dave], { name: "Book club" });
    const path = `/api/groups/${id}`;
    for (const device of [aliceSocket, bobSocket, carolSocket, daveSocket]) await device.expect("group_created");

    // bob, a plain member, may not add, remove, rename or promote.
    await refused(403, bob, "POST", `${path}/members`, { user_ids: [erin.id] });
    await refused(403, bob, "DELETE", `${path}/members/${carol.id}`);
    await refused(403, bob, "PATCH", path, { name: "Bob's club" });
    await refused(403, bob, "PATCH", `${path}/members/${carol.id}`, { role: "admin" });
    await refused(403, bob, "PATCH", `${path}/members/${bob.id}`, { role: "owner" });
    const untouched = await groupOf(server, alice, id);
    assert.equal(untouched.name, "Book club");
    assert.deepEqual(rolesOf(untouched), roles([alice, "owner"], [bob, "member"], [carol, "member"], [dave, "member"]));

    // The owner makes bob an admin; every member hears it (and nothing from the refusals before).
    let body = await succeed(alice, "PATCH", `${path}/members/${bob.id}`, { role: "admin" });
    assert.equal(rolesOf(body.group)[bob.id], "admin");
    for (const device of [aliceSocket, bobSocket, carolSocket, daveSocket]) {
      await expectGroupEvent(device, "role_changed", { conversation_id: id, actor_id: alice.id, user_id: bob.id, role: "admin" });
    }

    // The admin adds erin, removes dave (a plain member) and renames the group.
    body = await succeed(bob, "POST", `${path}/members`, { user_ids: [erin.id] });
    assert.equal(rolesOf(body.group)[erin.id], "member");
    for (const device of [aliceSocket, bobSocket, carolSocket, daveSocket, erinSocket]) {
      await expectGroupEvent(device, "member_added", { conversation_id: id, actor_id: bob.id, user_id: erin.id });
    }
    body = await succeed(bob, "DELETE", `${path}/members/${dave.id}`);
    assert.ok(!(dave.id in rolesOf(body.group)), "dave removed");
    for (const device of [aliceSocket, bobSocket, carolSocket, erinSocket, daveSocket]) {
      await expectGroupEvent(device, "member_removed", { conversation_id: id, actor_id: bob.id, user_id: dave.id });
    }
    body = await succeed(bob, "PATCH", path, { name: "Bob's book club", description: "Mondays" });
    assert.equal(body.group.name, "Bob's book club");
    assert.equal(body.group.description, "Mondays");
    for (const device of [aliceSocket, bobSocket, carolSocket, erinSocket]) {
      await expectGroupEvent(device, "group_updated", {
        conversation_id: id,
        actor_id: bob.id,
        name: "Bob's book club",
        description: "Mondays",
      });
    }
    await daveSocket.expectNone("group_updated", { withinMs: 200 });

    // With carol an admin too, bob may touch neither the owner nor her, nor any role.
    await succeed(alice, "PATCH", `${path}/members/${carol.id}`, { role: "admin" });
    for (const device of [aliceSocket, bobSocket, carolSocket, erinSocket]) {
      await expectGroupEvent(device, "role_changed", { conversation_id: id, actor_id: alice.id, user_id: carol.id, role: "admin" });
    }
    await refused(403, bob, "DELETE", `${path}/members/${alice.id}`);
    await refused(403, bob, "DELETE", `${path}/members/${carol.id}`);
    await refused(403, bob, "PATCH", `${path}/members/${erin.id}`, { role: "admin" });
    await refused(403, bob, "PATCH", `${path}/members/${carol.id}`, { role: "member" });
    await refused(403, bob, "PATCH", `${path}/members/${bob.id}`, { role: "owner" });
    assert.deepEqual(
      rolesOf(await groupOf(server, carol, id)),
      roles([alice, "owner"], [bob, "admin"], [carol, "admin"], [erin, "member"]),
    );

    // The owner demotes carol and removes bob, an admin.
    await succeed(alice, "PATCH", `${path}/members/${carol.id}`, { role: "member" });
    for (const device of [aliceSocket, bobSocket, carolSocket, erinSocket]) {
      await expectGroupEvent(device, "role_changed", { conversation_id: id, actor_id: alice.id, user_id: carol.id, role: "member" });
    }
    await succeed(alice, "DELETE", `${path}/members/${bob.id}`);
    for (const device of [aliceSocket, carolSocket, erinSocket, bobSocket]) {
      await expectGroupEvent(device, "member_removed", { conversation_id: id, actor_id: alice.id, user_id: bob.id });
    }

    // A role outside owner/admin/member is 422; someone who is no member is 404.
    await refused(422, alice, "PATCH", `${path}/members/${carol.id}`, { role: "superuser" });
    await refused(404, alice, "PATCH", `${path}/members/${frank.id}`, { role: "admin" });
    assert.deepEqual(
      rolesOf(await groupOf(server, alice, id)),
      roles([alice, "owner"], [carol, "member"], [erin, "member"]),
    );
    await carolSocket.expectNone("role_changed");
    await closeAll(aliceSocket, bobSocket, carolSocket, daveSocket, erinSocket);
  });

  test("ownership passes by role owner, and on the owner leaving to the longest-standing admin, else member", async () => {
    // Handing over explicitly: bob becomes owner, alice an admin.
    const [alice, bob, carol] = await server.registerMany("alice", "bob", "carol");
    const carolSocket = await connect(server, carol);
    const handover = await createGroup(server, alice, [bob, carol], { name: "Handover" });
    const handoverPath = `/api/groups/${handover.conversation_id}`;
    const body = await succeed(alice, "PATCH", `${handoverPath}/members/${bob.id}`, { role: "owner" });
    assert.deepEqual(rolesOf(body.group), roles([alice, "admin"], [bob, "owner"], [carol, "member"]));
    await expectGroupEvents(carolSocket, "role_changed", [
      { conversation_id: handover.conversation_id, actor_id: alice.id, user_id: bob.id, role: "owner" },
      { conversation_id: handover.conversation_id, actor_id: alice.id, user_id: alice.id, role: "admin" },
    ]);
    // alice is an admin now: roles are no longer hers to set; they are bob's.
    await refused(403, alice, "PATCH", `${handoverPath}/members/${carol.id}`, { role: "admin" });
    await succeed(bob, "PATCH", `${handoverPath}/members/${carol.id}`, { role: "admin" });
    await expectGroupEvent(carolSocket, "role_changed", {
      conversation_id: handover.conversation_id,
      actor_id: bob.id,
      user_id: carol.id,
      role: "admin",
    });

    // Succession. Ids ascend ben < cleo < dan < eve. dan and eve join at creation,
    // then cleo, then ben; ben and cleo become admins.
    const [olga, ben, cleo, dan, eve] = await registerInOrder("olga", "ben", "cleo", "dan", "eve");
    const olgaSocket = await connect(server, olga);
    const eveSocket = await connect(server, eve);
    const created = await createGroup(server, olga, [dan, eve], { name: "Succession" });
    const id = created.conversation_id;
    const path = `/api/groups/${id}`;
    await clockPast(created.members.find((m) => m.user_id === eve.id).joined_at);
    const withCleo = await succeed(olga, "POST", `${path}/members`, { user_ids: [cleo.id] });
    await clockPast(withCleo.group.members.find((m) => m.user_id === cleo.id).joined_at);
    await succeed(olga, "POST", `${path}/members`, { user_ids: [ben.id] });
    await succeed(olga, "PATCH", `${path}/members/${ben.id}`, { role: "admin" });
    await succeed(olga, "PATCH", `${path}/members/${cleo.id}`, { role: "admin" });
    const joined = Object.fromEntries(
      (await groupOf(server, olga, id)).members.map((m) => [m.user_id, Date.parse(m.joined_at)]),
    );
    assert.ok(
      joined[dan.id] <= joined[eve.id] && joined[eve.id] < joined[cleo.id] && joined[cleo.id] < joined[ben.id],
      `set-up: dan and eve joined first, then cleo, then ben: ${JSON.stringify(joined)}`,
    );
    for (const user of [ben, cleo]) {
      await expectGroupEvent(eveSocket, "role_changed", { conversation_id: id, actor_id: olga.id, user_id: user.id, role: "admin" });
    }

    // olga leaves: cleo, the longest-standing admin, takes over; not ben (a lower
    // id, but he joined later), nor dan or eve (there longer, but not admins).
    assert.deepEqual(await succeed(olga, "POST", `${path}/leave`), { success: true });
    for (const device of [olgaSocket, eveSocket]) {
      await expectGroupEvent(device, "member_left", { conversation_id: id, actor_id: olga.id, user_id: olga.id });
    }
    await expectGroupEvent(eveSocket, "role_changed", { conversation_id: id, user_id: cleo.id, role: "owner" });
    assert.deepEqual(
      rolesOf(await groupOf(server, eve, id)),
      roles([ben, "admin"], [cleo, "owner"], [dan, "member"], [eve, "member"]),
    );
    await refused(404, olga, "GET", path);

    // No admin left: cleo makes ben a plain member again, then leaves. dan and eve
    // joined first (together; dan has the lower id). ben's id is lower still, but
    // he joined later.
    await succeed(cleo, "PATCH", `${path}/members/${ben.id}`, { role: "member" });
    await expectGroupEvent(eveSocket, "role_changed", { conversation_id: id, actor_id: cleo.id, user_id: ben.id, role: "member" });
    assert.deepEqual(await succeed(cleo, "POST", `${path}/leave`), { success: true });
    await expectGroupEvent(eveSocket, "member_left", { conversation_id: id, actor_id: cleo.id, user_id: cleo.id });
    await expectGroupEvent(eveSocket, "role_changed", { conversation_id: id, user_id: dan.id, role: "owner" });
    assert.deepEqual(rolesOf(await groupOf(server, dan, id)), roles([ben, "member"], [dan, "owner"], [eve, "member"]));
    // The new owner can do what owners do.
    await succeed(dan, "PATCH", `${path}/members/${eve.id}`, { role: "admin" });
    await expectGroupEvent(eveSocket, "role_changed", { conversation_id: id, actor_id: dan.id, user_id: eve.id, role: "admin" });
    await closeAll(carolSocket, olgaSocket, eveSocket);
  });
});

describe("membership changes", () => {
  test("removal cuts a member off at once, on every device", async () => {
    const [alice, bob, carol] = await server.registerMany("alice", "bob", "carol");
    const aliceSocket = await connect(server, alice);
    const bobPhone = await connect(server, bob, { name: "bob phone" });
    const bobLaptop = await connect(server, bob, { name: "bob laptop" });
    const carolSocket = await connect(server, carol);
    const { conversation_id: id } = await createGroup(server, alice, [bob, carol], { name: "Project" });
    for (const device of [aliceSocket, bobPhone, bobLaptop, carolSocket]) await device.expect("group_created");
    const before = await say(aliceSocket, id, "before");
    for (const device of [bobPhone, bobLaptop, carolSocket]) await expectMessage(device, before, alice, "before");

    const removed = await succeed(alice, "DELETE", `/api/groups/${id}/members/${bob.id}`);
    assert.deepEqual(rolesOf(removed.group), roles([alice, "owner"], [carol, "member"]));
    for (const device of [bobPhone, bobLaptop, aliceSocket, carolSocket]) {
      await expectGroupEvent(device, "member_removed", { conversation_id: id, actor_id: alice.id, user_id: bob.id });
    }

    // The next message reaches carol and neither of bob's devices.
    const afterRemoval = await say(aliceSocket, id, "after bob left");
    await expectMessage(carolSocket, afterRemoval, alice, "after bob left");
    await bobPhone.expectNone("new_message");
    await bobLaptop.expectNone("new_message", { withinMs: 0 });

    // Whatever bob tries over the socket is refused, as for a stranger.
    await refusedOnSocket(bobPhone, "send_message", { conversation_id: id, content: "let me back in" }, "conversation_not_found");
    await refusedOnSocket(bobLaptop, "typing", { conversation_id: id, is_typing: true }, "conversation_not_found");
    await refusedOnSocket(bobPhone, "mark_read", { conversation_id: id }, "conversation_not_found");
    await refusedOnSocket(bobLaptop, "sync", { since: [{ conversation_id: id, after_seq: 0 }] }, "conversation_not_found");
    // …and none of it reached the others: carol's next message is alice's.
    const stillHere = await say(aliceSocket, id, "still here");
    await expectMessage(carolSocket, stillHere, alice, "still here");
    await carolSocket.expectNone("typing", { withinMs: 0 });
    await aliceSocket.expectNone("new_message", { withinMs: 0 });
    assert.deepEqual(
      (await history(server, alice, id)).messages.map((m) => m.content),
      ["still here", "after bob left", "before"],
    );

    // Nor over REST: the group, its history and marking read are 404, and it left his list.
    await refused(404, bob, "GET", `/api/groups/${id}`);
    await refused(404, bob, "GET", `/api/messages?conversation_id=${id}`);
    await refused(404, bob, "POST", `/api/messages/read?conversation_id=${id}`);
    await assertNotListed(bob, id);

    // Later group events no longer reach him either.
    await succeed(alice, "PATCH", `/api/groups/${id}`, { name: "Project (no bob)" });
    await expectGroupEvent(carolSocket, "group_updated", { conversation_id: id, actor_id: alice.id, name: "Project (no bob)" });
    await bobPhone.expectNone("group_updated");
    await bobLaptop.expectNone("group_updated", { withinMs: 0 });
    await closeAll(aliceSocket, bobPhone, bobLaptop, carolSocket);
  });

  test("group changes move no one else into the group: an outsider and a removed member never get its messages", async () => {
    // A change that adds nobody (a rename, a role, a removal) once put every connected
    // socket of the node into the group's room: `io.to([])` means every socket.
    const [alice, bob, carol, dave] = await server.registerMany("alice", "bob", "carol", "dave");
    const aliceSocket = await connect(server, alice);
    const bobSocket = await connect(server, bob);
    const carolSocket = await connect(server, carol);
    const outsider = await connect(server, dave, { name: "dave (not a member)" });
    const { conversation_id: id } = await createGroup(server, alice, [bob, carol], { name: "Closed" });
    for (const device of [aliceSocket, bobSocket, carolSocket]) await device.expect("group_created");
    await succeed(alice, "PATCH", `/api/groups/${id}`, { name: "Closed, renamed" });
    await succeed(alice, "PATCH", `/api/groups/${id}/members/${carol.id}`, { role: "admin" });
    await succeed(alice, "DELETE", `/api/groups/${id}/members/${bob.id}`);
    for (const device of [aliceSocket, carolSocket]) await device.expect("member_removed");

    const inGroup = await say(aliceSocket, id, "members only");
    await expectMessage(carolSocket, inGroup, alice, "members only");
    // Something that must reach dave and bob after the group message did not.
    const toDave = await aliceSocket.request("send_message", { to_user_id: dave.id, content: "just you" });
    const toBob = await aliceSocket.request("send_message", { to_user_id: bob.id, content: "just you" });
    assert.equal((await outsider.expect("new_message")).message_id, toDave.message_id, "dave's next message is his own");
    assert.equal((await bobSocket.expect("new_message")).message_id, toBob.message_id, "bob's next message is his own");
    await outsider.expectNone("new_message", { withinMs: 0 });
    await bobSocket.expectNone("new_message", { withinMs: 0 });
    await closeAll(aliceSocket, bobSocket, carolSocket, outsider);
  });

  test("an added member gets messages live without reconnecting, sees the history, and starts with nothing unread", async () => {
    const [alice, bob, carol, dave] = await server.registerMany("alice", "bob", "carol", "dave");
    const aliceSocket = await connect(server, alice);
    const bobSocket = await connect(server, bob);
    const carolSocket = await connect(server, carol); // open before she is added
    const { conversation_id: id } = await createGroup(server, alice, [bob], { name: "Growing" });
    const path = `/api/groups/${id}`;
    for (const device of [aliceSocket, bobSocket]) await device.expect("group_created");
    const m1 = await say(aliceSocket, id, "before carol");
    const m2 = await say(bobSocket, id, "also before carol");
    await expectMessage(bobSocket, m1, alice, "before carol");
    await expectMessage(aliceSocket, m2, bob, "also before carol");

    const added = await succeed(alice, "POST", `${path}/members`, { user_ids: [carol.id] });
    assert.deepEqual(rolesOf(added.group), roles([alice, "owner"], [bob, "member"], [carol, "member"]));
    for (const device of [aliceSocket, bobSocket, carolSocket]) {
      await expectGroupEvent(device, "member_added", { conversation_id: id, actor_id: alice.id, user_id: carol.id });
    }

    // She sees everything said before, none of it unread.
    const before = await history(server, carol, id);
    assert.equal(before.total, 2);
    assert.deepEqual(before.messages.map((m) => m.id), [m2.message_id, m1.message_id]);
    let item = await listed(carol, id);
    assert.equal(item.unread_count, 0, "what was said before she joined is not unread for her");
    assert.equal(item.member_count, 3);
    assert.equal(item.last_message?.content, "also before carol");
    assert.equal(rolesOf(await groupOf(server, carol, id))[carol.id], "member");

    // Live, on the socket that was open before she was added. It is her first
    // new_message: the messages from before she joined are not pushed to her.
    const m3 = await say(aliceSocket, id, "welcome carol");
    await expectMessage(carolSocket, m3, alice, "welcome carol");
    await expectMessage(bobSocket, m3, alice, "welcome carol");
    assert.equal((await listed(carol, id)).unread_count, 1);
    const m4 = await say(carolSocket, id, "thanks!");
    assert.equal(m4.seq, 4);
    await expectMessage(aliceSocket, m4, carol, "thanks!");
    await expectMessage(bobSocket, m4, carol, "thanks!");

    // dave is added while offline: on connect he gets what was sent after he joined, nothing before.
    await succeed(alice, "POST", `${path}/members`, { user_ids: [dave.id] });
    await expectGroupEvent(carolSocket, "member_added", { conversation_id: id, actor_id: alice.id, user_id: dave.id });
    const m5 = await say(bobSocket, id, "hi dave");
    const daveSocket = await connect(server, dave);
    await expectMessage(daveSocket, m5, bob, "hi dave");
    const m6 = await say(aliceSocket, id, "dave is here");
    await expectMessage(daveSocket, m6, alice, "dave is here");
    await daveSocket.expectNone("new_message");
    item = await listed(dave, id);
    assert.equal(item.unread_count, 2, "only what was said since he joined");
    assert.equal(item.member_count, 4);
    assert.equal((await history(server, dave, id)).total, 6, "the whole history");
    await closeAll(aliceSocket, bobSocket, carolSocket, daveSocket);
  });

  test("when the last member leaves, the group is closed", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const aliceSocket = await connect(server, alice);
    const bobSocket = await connect(server, bob);
    const { conversation_id: id } = await createGroup(server, alice, [bob], { name: "Short-lived" });
    for (const device of [aliceSocket, bobSocket]) await device.expect("group_created");
    const bye = await say(bobSocket, id, "bye");
    await expectMessage(aliceSocket, bye, bob, "bye");

    // bob removes himself, which is leaving.
    const res = await call(bob, "DELETE", `/api/groups/${id}/members/${bob.id}`);
    assert.equal(res.status, 200, res.text);
    for (const device of [aliceSocket, bobSocket]) {
      await expectGroupEvent(device, "member_left", { conversation_id: id, actor_id: bob.id, user_id: bob.id });
    }
    assert.deepEqual(rolesOf(await groupOf(server, alice, id)), roles([alice, "owner"]));

    // alice, the owner, is the last: there is nobody to hand the group to.
    assert.deepEqual(await succeed(alice, "POST", `/api/groups/${id}/leave`), { success: true });
    await expectGroupEvent(aliceSocket, "member_left", { conversation_id: id, actor_id: alice.id, user_id: alice.id });

    // Closed: nobody can use it, not even its last owner.
    for (const [user, socket] of [[alice, aliceSocket], [bob, bobSocket]]) {
      await refusedOnSocket(socket, "send_message", { conversation_id: id, content: "anyone?" }, "conversation_not_found");
      await refused(404, user, "GET", `/api/groups/${id}`);
      await refused(404, user, "GET", `/api/messages?conversation_id=${id}`);
      await refused(404, user, "POST", `/api/groups/${id}/leave`);
      await refused(404, user, "POST", `/api/groups/${id}/members`, { user_ids: [user.id] });
      await assertNotListed(user, id);
    }
    await aliceSocket.expectNone("role_changed", { withinMs: 0 });
    await bobSocket.expectNone("new_message", { withinMs: 0 });
    await closeAll(aliceSocket, bobSocket);
  });
});

describe("delivery and read receipts", () => {
  /** `GET /api/messages/{id}/receipts` as `viewer`, asserted 200 and well-formed. */
  async function receiptsOf(viewer, messageId) {
    const res = await call(viewer, "GET", `/api/messages/${messageId}/receipts`);
    assert.equal(res.status, 200, `receipts of ${messageId} as ${viewer.display_name}: ${res.status} ${res.text}`);
    assert.deepEqual(Object.keys(res.body).sort(), ["conversation_id", "message_id", "receipts"]);
    assert.equal(res.body.message_id, messageId);
    for (const receipt of res.body.receipts) {
      assert.deepEqual(Object.keys(receipt).sort(), ["delivered_at", "read_at", "user_id"]);
      for (const field of ["delivered_at", "read_at"]) {
        if (receipt[field] !== null) assert.match(receipt[field], ISO_UTC, `${field} of ${receipt.user_id}`);
      }
    }
    return res.body;
  }

  /** A receipts body as { [user_id]: ["delivered" | "not delivered", "read" | "unread"] }. */
  function summary(body) {
    const entries = body.receipts.map((r) => [
      r.user_id,
      [r.delivered_at ? "delivered" : "not delivered", r.read_at ? "read" : "unread"],
    ]);
    assert.equal(new Set(entries.map(([user]) => user)).size, entries.length, "one receipt per member");
    return Object.fromEntries(entries);
  }

  const sortedReceipts = (body) => ({
    ...body,
    receipts: [...body.receipts].sort((a, b) => a.user_id - b.user_id),
  });

  test("offline member gets the queue; message_delivered waits for every member; message_read per reader; receipts", async () => {
    const [alice, bob, carol, dave, erin] = await server.registerMany("alice", "bob", "carol", "dave", "erin");
    const alicePhone = await connect(server, alice, { name: "alice phone" });
    const aliceLaptop = await connect(server, alice, { name: "alice laptop" });
    const bobSocket = await connect(server, bob);
    const carolSocket = await connect(server, carol);
    // dave has no device connected.
    const { conversation_id: id } = await createGroup(server, alice, [bob, carol, dave], { name: "Receipts" });
    await succeed(alice, "PATCH", `/api/groups/${id}/members/${carol.id}`, { role: "admin" });

    const m1 = await say(alicePhone, id, "first");
    const m2 = await say(alicePhone, id, "second");
    for (const device of [bobSocket, carolSocket]) {
      await expectMessage(device, m1, alice, "first");
      await expectMessage(device, m2, alice, "second");
    }

    // bob reads at once; alice hears of it, though dave does not even have the messages yet.
    assert.deepEqual(await bobSocket.request("mark_read", { conversation_id: id }), { success: true, messages_marked: 2 });
    const bobRead = await alicePhone.expect("message_read");
    assert.deepEqual(
      { conversation_id: bobRead.conversation_id, message_id: bobRead.message_id, reader_id: bobRead.reader_id },
      { conversation_id: id, message_id: m2.message_id, reader_id: bob.id },
    );
    assert.match(bobRead.read_at, ISO_UTC);
    // With dave not connected, neither message counts as delivered.
    await alicePhone.expectNone("message_delivered");
    await aliceLaptop.expectNone("message_delivered", { withinMs: 0 });

    // The sender's receipts: one per other member.
    let receipts = await receiptsOf(alice, m1.message_id);
    assert.equal(receipts.conversation_id, id);
    assert.deepEqual(summary(receipts), {
      [bob.id]: ["delivered", "read"],
      [carol.id]: ["delivered", "unread"],
      [dave.id]: ["not delivered", "unread"],
    });
    const bobReceipt = receipts.receipts.find((r) => r.user_id === bob.id);
    assert.equal(Date.parse(bobReceipt.read_at), Date.parse(bobRead.read_at));

    // dave connects: the queue, oldest first; then message_delivered for each message, to all of alice's devices.
    const daveSocket = await connect(server, dave);
    await expectMessage(daveSocket, m1, alice, "first");
    await expectMessage(daveSocket, m2, alice, "second");
    for (const device of [alicePhone, aliceLaptop]) {
      const delivered = await device.expectMany("message_delivered", 2);
      assert.deepEqual(
        delivered.map((d) => d.message_id).sort((a, b) => a - b),
        [m1.message_id, m2.message_id].sort((a, b) => a - b),
        device.name,
      );
      for (const d of delivered) {
        assert.deepEqual(Object.keys(d).sort(), ["conversation_id", "delivered_at", "message_id"]);
        assert.equal(d.conversation_id, id);
        assert.match(d.delivered_at, ISO_UTC);
      }
    }
    await alicePhone.expectNone("message_delivered");
    await daveSocket.expectNone("new_message", { withinMs: 0 });

    // carol reads over REST, dave the first message over the socket: a message_read for each.
    const viaRest = await call(carol, "POST", `/api/messages/read?conversation_id=${id}`);
    assert.equal(viaRest.status, 200, viaRest.text);
    assert.deepEqual(viaRest.body, { success: true, messages_marked: 2 });
    const carolRead = await alicePhone.expect("message_read");
    assert.equal(carolRead.reader_id, carol.id);
    assert.equal(carolRead.message_id, m2.message_id);
    assert.deepEqual(
      await daveSocket.request("mark_read", { conversation_id: id, up_to_message_id: m1.message_id }),
      { success: true, messages_marked: 1 },
    );
    const daveRead = await alicePhone.expect("message_read");
    assert.equal(daveRead.reader_id, dave.id);
    assert.equal(daveRead.message_id, m1.message_id);
    const onLaptop = await aliceLaptop.expectMany("message_read", 3);
    assert.deepEqual(onLaptop.map((r) => [r.reader_id, r.message_id]), [
      [bob.id, m2.message_id],
      [carol.id, m2.message_id],
      [dave.id, m1.message_id],
    ]);
    await alicePhone.expectNone("message_read");

    receipts = await receiptsOf(alice, m1.message_id);
    assert.deepEqual(summary(receipts), {
      [bob.id]: ["delivered", "read"],
      [carol.id]: ["delivered", "read"],
      [dave.id]: ["delivered", "read"],
    });
    const ofSecond = await receiptsOf(alice, m2.message_id);
    assert.deepEqual(summary(ofSecond), {
      [bob.id]: ["delivered", "read"],
      [carol.id]: ["delivered", "read"],
      [dave.id]: ["delivered", "unread"],
    });

    // Besides the sender, the owner and admins may look; nobody else.
    assert.deepEqual(sortedReceipts(await receiptsOf(carol, m2.message_id)), sortedReceipts(ofSecond), "carol, an admin");
    for (const viewer of [bob, dave, erin]) {
      await refused(404, viewer, "GET", `/api/messages/${m2.message_id}/receipts`);
    }
    await refused(404, alice, "GET", "/api/messages/987654321/receipts");
    // bob's message: alice, the owner, may look, and sees everyone but bob.
    const fromBob = await say(bobSocket, id, "from bob");
    await expectMessage(daveSocket, fromBob, bob, "from bob");
    assert.deepEqual(
      Object.keys(summary(await receiptsOf(alice, fromBob.message_id))).map(Number).sort((a, b) => a - b),
      [alice.id, carol.id, dave.id].sort((a, b) => a - b),
    );
    await receiptsOf(bob, fromBob.message_id);
    await refused(404, dave, "GET", `/api/messages/${fromBob.message_id}/receipts`);
    await closeAll(alicePhone, aliceLaptop, bobSocket, carolSocket, daveSocket);
  });
});

describe("presence", () => {
  test("group-only contacts hear no user_online/user_offline, but GET /api/presence answers for them", async () => {
    const [alice, bob, carol, dave] = await server.registerMany("alice", "bob", "carol", "dave");
    // alice shares only a group with bob, and a direct chat with carol.
    await createGroup(server, alice, [bob], { name: "Just a group" });
    // Presence goes only to people one has written to: alice writes to carol first.
    const aliceFirst = await connect(server, alice, { name: "alice (set-up)" });
    const opening = await aliceFirst.request("send_message", { to_user_id: carol.id, content: "hello carol" });
    assert.equal(opening.status, "sent", JSON.stringify(opening));
    await aliceFirst.close();
    await eventually(async () => (await presenceOf(server, bob, [alice.id]))[0]?.online === false, {
      what: "alice offline after set-up",
      timeoutMs: GRACE_MS + SLACK_MS,
    });
    let carolSocket = await connect(server, carol);
    const hi = await carolSocket.request("send_message", { to_user_id: alice.id, content: "hi" });
    assert.equal(hi.status, "sent", JSON.stringify(hi));
    let bobSocket = await connect(server, bob);

    const aliceSocket = await connect(server, alice);
    assert.deepEqual(await carolSocket.expect("user_online"), { user_id: alice.id });
    await bobSocket.expectNone("user_online");

    // bob, then carol, go offline: alice hears only of carol (bob's would have come first).
    await bobSocket.close();
    await carolSocket.close();
    const offline = await aliceSocket.expect("user_offline", { timeoutMs: GRACE_MS + SLACK_MS });
    assert.equal(offline.user_id, carol.id, `alice's first user_offline: ${JSON.stringify(offline)}`);
    await aliceSocket.expectNone("user_offline");

    // bob, then carol, come back: again alice hears only of carol.
    bobSocket = await connect(server, bob, { name: "bob (back)" });
    carolSocket = await connect(server, carol, { name: "carol (back)" });
    assert.deepEqual(await aliceSocket.expect("user_online"), { user_id: carol.id });
    await aliceSocket.expectNone("user_online");
    await bobSocket.expectNone("user_online", { withinMs: 0 });

    // GET /api/presence answers for a fellow group member; a stranger is omitted.
    const seen = await presenceOf(server, alice, [bob.id, carol.id, dave.id]);
    assert.deepEqual(
      seen.map((u) => [u.user_id, u.online]).sort((a, b) => a[0] - b[0]),
      [[bob.id, true], [carol.id, true]].sort((a, b) => a[0] - b[0]),
    );
    const [aliceSeen] = await presenceOf(server, bob, [alice.id]);
    assert.equal(aliceSeen?.user_id, alice.id, "bob sees alice, a fellow group member");
    assert.equal(aliceSeen.online, true);
    assert.deepEqual(await presenceOf(server, dave, [alice.id, bob.id]), []);
    await closeAll(aliceSocket, bobSocket, carolSocket);
  });
});
