// A message's life after it is sent: edits within the window, deletion for everyone
// (tombstones in history, the list preview following), replies with a quote, reactions
// (one per user, counts and the caller's own), and the change cursor `sync { changes }`
// that brings a returning device every edit, deletion and reaction it missed. Each
// refusal has its code, over Socket.IO (ack and `error` event) and REST (status).
//
// "Nothing arrives" is always checked after something that must arrive later: a
// refused change is followed by an accepted one, whose event must be the next one.

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { backend, startCluster, startServer, ISO_UTC } from "../lib/harness.js";
import { connect, closeAll } from "../lib/client.js";
import { history, conversationsOf, createGroup } from "../lib/api.js";

let server;
before(async () => {
  server = await startServer();
});
after(() => server?.stop());

/** Sends `content` from `socket` (to a user or a conversation); resolves to the ack. */
async function say(socket, target, content, extra = {}) {
  const ack = await socket.request("send_message", { ...target, content, ...extra });
  assert.equal(ack?.status, "sent", `${socket.name} saying "${content}": ${JSON.stringify(ack)}`);
  return ack;
}

/** `event` with `payload` must be refused with `code`: in the ack and as an error event. */
async function refusedOnSocket(socket, event, payload, code) {
  const answer = await socket.request(event, payload);
  assert.equal(answer?.error?.code, code, `${socket.name} ${event} ${JSON.stringify(payload)}: ${JSON.stringify(answer)}`);
  assert.equal(typeof answer.error.message, "string");
  assert.equal((await socket.expect("error")).code, code, `${socket.name}: error event for ${event}`);
  return answer;
}

/** `method path` as `user`, which must answer `status`; resolves to the body. */
async function rest(status, user, method, path, json) {
  const res = await server.http(method, path, { token: user.token, json });
  assert.equal(res.status, status, `${method} ${path} as ${user.display_name}: ${res.status} ${res.text}`);
  if (status >= 400) assert.equal(typeof res.body?.error, "string", `an { error } body: ${res.text}`);
  return res.body;
}

/** A message of the caller's history, by id. */
async function inHistory(user, conversationId, messageId) {
  const page = await history(server, user, conversationId, "&limit=100");
  const found = page.messages.find((m) => m.id === messageId);
  assert.ok(found, `${user.display_name}'s history of ${conversationId} has message ${messageId}`);
  return found;
}

/** The caller's conversation-list preview of `conversationId`. */
async function preview(user, conversationId) {
  const item = (await conversationsOf(server, user)).find((c) => c.conversation_id === conversationId);
  assert.ok(item, `${user.display_name}'s list has ${conversationId}`);
  return item.last_message;
}

describe("edit", () => {
  test("the sender edits: members hear message_edited, history shows edited_at, the preview follows", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const [aliceSocket, bobSocket] = await Promise.all([connect(server, alice), connect(server, bob)]);
    const sent = await say(aliceSocket, { to_user_id: bob.id }, "helo");
    const delivered = await bobSocket.expect("new_message");
    assert.equal(typeof delivered.version, "number", "new_message carries the version");
    const id = sent.conversation_id;

    const ack = await aliceSocket.request("edit_message", { message_id: sent.message_id, content: "hello" });
    assert.equal(ack.error, undefined, JSON.stringify(ack));
    assert.deepEqual(
      { ...ack, edited_at: undefined },
      { conversation_id: id, message_id: sent.message_id, content: "hello", edited_at: undefined, version: delivered.version + 1 },
    );
    assert.match(ack.edited_at, ISO_UTC);
    assert.deepEqual(await bobSocket.expect("message_edited"), ack, "bob hears exactly what alice was answered");
    assert.deepEqual(await aliceSocket.expect("message_edited"), ack, "the sender's devices hear it too");

    const shown = await inHistory(bob, id, sent.message_id);
    assert.equal(shown.content, "hello");
    assert.equal(shown.edited_at, ack.edited_at);
    assert.equal(shown.deleted, false);
    assert.equal(shown.version, ack.version);
    assert.equal((await preview(bob, id)).content, "hello", "the list preview shows the edit");

    // REST: the same change, the same announcement.
    const body = await rest(200, alice, "PATCH", `/api/messages/${sent.message_id}`, { content: "hello!" });
    assert.equal(body.content, "hello!");
    assert.equal(body.version, ack.version + 1);
    assert.deepEqual(await bobSocket.expect("message_edited"), body);
    await closeAll(aliceSocket, bobSocket);
  });

  test("refusals: another user's message, a stranger, bad input; none is announced or takes a version", async () => {
    const [alice, bob, carol] = await server.registerMany("alice", "bob", "carol");
    const [aliceSocket, bobSocket, carolSocket] = await Promise.all([
      connect(server, alice),
      connect(server, bob),
      connect(server, carol),
    ]);
    const sent = await say(aliceSocket, { to_user_id: bob.id }, "mine");
    const { version } = await bobSocket.expect("new_message");

    await refusedOnSocket(bobSocket, "edit_message", { message_id: sent.message_id, content: "theirs" }, "not_your_message");
    await rest(403, bob, "PATCH", `/api/messages/${sent.message_id}`, { content: "theirs" });
    // Carol is no member: the message does not exist for her.
    await refusedOnSocket(carolSocket, "edit_message", { message_id: sent.message_id, content: "x" }, "message_not_found");
    await rest(404, carol, "PATCH", `/api/messages/${sent.message_id}`, { content: "x" });
    await refusedOnSocket(aliceSocket, "edit_message", { message_id: 999999999, content: "x" }, "message_not_found");
    await refusedOnSocket(aliceSocket, "edit_message", { message_id: sent.message_id, content: "   " }, "empty_content");
    await rest(422, alice, "PATCH", `/api/messages/${sent.message_id}`, { content: "  " });
    await refusedOnSocket(aliceSocket, "edit_message", { message_id: "abc", content: "x" }, "invalid_payload");
    await refusedOnSocket(aliceSocket, "edit_message", { message_id: sent.message_id }, "invalid_payload");
    await rest(400, alice, "PATCH", `/api/messages/${sent.message_id}`, { text: "x" });

    // The next change takes the very next version, and is the first thing bob hears.
    const ack = await aliceSocket.request("edit_message", { message_id: sent.message_id, content: "still mine" });
    assert.equal(ack.version, version + 1, "refused changes took no version");
    const heard = await bobSocket.expect("message_edited");
    assert.equal(heard.content, "still mine", "no refused edit was announced before it");
    assert.equal((await inHistory(alice, sent.conversation_id, sent.message_id)).content, "still mine");
    await closeAll(aliceSocket, bobSocket, carolSocket);
  });

  test("an expired edit window is refused: EDIT_WINDOW_SECS=0 turns editing off, deleting stays", async () => {
    const strict = await startServer({ env: { EDIT_WINDOW_SECS: "0" } });
    try {
      const [alice, bob] = await strict.registerMany("alice", "bob");
      const aliceSocket = await connect(strict, alice);
      const sent = await say(aliceSocket, { to_user_id: bob.id }, "final");
      await refusedOnSocket(aliceSocket, "edit_message", { message_id: sent.message_id, content: "x" }, "edit_window_expired");
      const res = await strict.http("PATCH", `/api/messages/${sent.message_id}`, { token: alice.token, json: { content: "x" } });
      assert.equal(res.status, 403, res.text);
      const deleted = await aliceSocket.request("delete_message", { message_id: sent.message_id });
      assert.equal(deleted.message_id, sent.message_id, JSON.stringify(deleted));
      await closeAll(aliceSocket);
    } finally {
      await strict.stop();
    }
  });

  test("the window closes with time: EDIT_WINDOW_SECS=1 accepts edits, then refuses them after a second", async () => {
    // Edits share the sends' rate limit, which this loop would reach: it is off here.
    const quick = await startServer({ env: { EDIT_WINDOW_SECS: "1", RATE_SENDS_PER_SEC: "0" } });
    try {
      const [alice, bob] = await quick.registerMany("alice", "bob");
      const aliceSocket = await connect(quick, alice);
      const sent = await say(aliceSocket, { to_user_id: bob.id }, "v0");
      // Edit until the server refuses: every edit before the refusal is accepted, and the
      // refusal comes once more than the window has passed since sending.
      let answer;
      for (let n = 1; ; n++) {
        answer = await aliceSocket.request("edit_message", { message_id: sent.message_id, content: `v${n}` });
        if (answer.error) break;
        assert.equal(answer.content, `v${n}`);
        assert.ok(Date.parse(answer.edited_at) - Date.parse(sent.sent_at) <= 1_000, "accepted within the window");
        assert.ok(n < 1_000, "the window never closed");
      }
      assert.equal(answer.error.code, "edit_window_expired", JSON.stringify(answer));
      const last = await quick.http("GET", `/api/messages?conversation_id=${sent.conversation_id}`, { token: alice.token });
      assert.ok(Date.now() - Date.parse(last.body.messages[0].sent_at) > 1_000, "refused only after the window");
      await closeAll(aliceSocket);
    } finally {
      await quick.stop();
    }
  });
});

describe("delete", () => {
  test("the sender deletes for everyone: a tombstone keeps its place, the preview falls back, again changes nothing", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const [aliceSocket, bobSocket] = await Promise.all([connect(server, alice), connect(server, bob)]);
    const first = await say(aliceSocket, { to_user_id: bob.id }, "first");
    const second = await say(aliceSocket, { to_user_id: bob.id }, "oops");
    const third = await say(aliceSocket, { to_user_id: bob.id }, "third");
    await bobSocket.expectMany("new_message", 3);
    const id = first.conversation_id;
    await bobSocket.request("react", { message_id: second.message_id, emoji: "👍" });
    await aliceSocket.expect("reaction_changed");

    const ack = await aliceSocket.request("delete_message", { message_id: second.message_id });
    assert.deepEqual(Object.keys(ack).sort(), ["conversation_id", "deleted_at", "message_id", "version"]);
    assert.equal(ack.conversation_id, id);
    assert.match(ack.deleted_at, ISO_UTC);
    assert.deepEqual(await bobSocket.expect("message_deleted"), ack);

    const page = await history(server, bob, id);
    assert.deepEqual(page.messages.map((m) => m.seq), [third.seq, second.seq, first.seq], "order and places kept");
    const tombstone = page.messages[1];
    assert.equal(tombstone.deleted, true);
    assert.equal(tombstone.content, "", "no content");
    assert.deepEqual(tombstone.reactions, [], "its reactions go with it");
    assert.equal(page.messages[0].deleted, false);

    assert.equal((await preview(bob, id)).content, "third", "an older message's deletion leaves the preview");
    await aliceSocket.request("delete_message", { message_id: third.message_id });
    await bobSocket.expect("message_deleted");
    assert.equal((await preview(bob, id)).content, "first", "the preview falls back to the newest standing message");

    // Deleting again answers the first deletion and announces nothing: the next event
    // bob hears is the edit that follows.
    assert.deepEqual(await aliceSocket.request("delete_message", { message_id: second.message_id }), ack);
    assert.deepEqual(await rest(200, alice, "DELETE", `/api/messages/${second.message_id}`), ack);
    await refusedOnSocket(aliceSocket, "edit_message", { message_id: second.message_id, content: "x" }, "message_deleted");
    await rest(409, alice, "PATCH", `/api/messages/${second.message_id}`, { content: "x" });
    await refusedOnSocket(bobSocket, "react", { message_id: second.message_id, emoji: "👍" }, "message_deleted");
    await rest(409, bob, "PUT", `/api/messages/${second.message_id}/reaction`, { emoji: "👍" });
    await aliceSocket.request("edit_message", { message_id: first.message_id, content: "first!" });
    assert.equal((await bobSocket.expect("message_edited")).message_id, first.message_id);
    assert.equal(bobSocket.collect("message_deleted").length, 2, "one message_deleted per deletion");
    assert.equal((await preview(bob, id)).content, "first!", "the preview follows an edit of the fallback");

    // Bob may not delete Alice's message in their direct chat.
    await refusedOnSocket(bobSocket, "delete_message", { message_id: first.message_id }, "not_your_message");
    await rest(403, bob, "DELETE", `/api/messages/${first.message_id}`);
    await closeAll(aliceSocket, bobSocket);
  });

  test("group admins and the owner delete anyone's message; members only their own; leavers are told why", async () => {
    const [owner, admin, member, other] = await server.registerMany("owner", "admin", "member", "other");
    const group = await createGroup(server, owner, [admin, member, other]);
    const id = group.conversation_id;
    await rest(200, owner, "PATCH", `/api/groups/${id}/members/${admin.id}`, { role: "admin" });
    const [ownerSocket, adminSocket, memberSocket, otherSocket] = await Promise.all(
      [owner, admin, member, other].map((u) => connect(server, u)),
    );
    const a = await say(memberSocket, { conversation_id: id }, "spam 1");
    const b = await say(memberSocket, { conversation_id: id }, "spam 2");
    const c = await say(otherSocket, { conversation_id: id }, "fine");

    await refusedOnSocket(otherSocket, "delete_message", { message_id: a.message_id }, "not_your_message");
    const byAdmin = await adminSocket.request("delete_message", { message_id: a.message_id });
    assert.equal(byAdmin.message_id, a.message_id, JSON.stringify(byAdmin));
    const byOwner = await rest(200, owner, "DELETE", `/api/messages/${b.message_id}`);
    for (const device of [ownerSocket, adminSocket, memberSocket, otherSocket]) {
      assert.deepEqual(await device.until("message_deleted", (e) => e.message_id === a.message_id), byAdmin);
      assert.deepEqual(await device.until("message_deleted", (e) => e.message_id === b.message_id), byOwner);
    }
    // Admins delete, they do not edit others' words.
    await refusedOnSocket(adminSocket, "edit_message", { message_id: c.message_id, content: "x" }, "not_your_message");

    // Once out of the group, a former member is told so, for every change.
    await rest(200, other, "POST", `/api/groups/${id}/leave`);
    await refusedOnSocket(otherSocket, "react", { message_id: c.message_id, emoji: "👍" }, "not_member");
    await rest(403, other, "PUT", `/api/messages/${c.message_id}/reaction`, { emoji: "👍" });
    await refusedOnSocket(otherSocket, "delete_message", { message_id: c.message_id }, "not_member");
    await refusedOnSocket(otherSocket, "edit_message", { message_id: c.message_id, content: "x" }, "not_member");
    await closeAll(ownerSocket, adminSocket, memberSocket, otherSocket);
  });
});

describe("unread counts", () => {
  /** `user`'s unread count of `conversationId`, from the conversation list. */
  async function unread(user, conversationId) {
    const item = (await conversationsOf(server, user)).find((c) => c.conversation_id === conversationId);
    assert.ok(item, `${user.display_name}'s list has ${conversationId}`);
    return item.unread_count;
  }

  test("a deleted message stops counting as unread for those who had not read it, and only for them", async () => {
    const [owner, writer, reader, away] = await server.registerMany("owner", "writer", "reader", "away");
    const group = await createGroup(server, owner, [writer, reader, away]);
    const id = group.conversation_id;
    const writerSocket = await connect(server, writer);
    const sent = [];
    for (const text of ["one", "two", "three", "four"]) sent.push(await say(writerSocket, { conversation_id: id }, text));
    const counts = async () => Promise.all([owner, writer, reader, away].map((u) => unread(u, id)));
    assert.deepEqual(await counts(), [4, 0, 4, 4]);

    // The reader has read up to "two"; the owner deletes "two" (read by the reader)
    // and the writer deletes "three" (read by nobody yet).
    const readerSocket = await connect(server, reader);
    const marked = await readerSocket.request("mark_read", { conversation_id: id, up_to_message_id: sent[1].message_id });
    assert.deepEqual(marked, { success: true, messages_marked: 2 });
    assert.deepEqual(await counts(), [4, 0, 2, 4]);
    await rest(200, owner, "DELETE", `/api/messages/${sent[1].message_id}`);
    assert.deepEqual(await counts(), [3, 0, 2, 3], "only those who had not read it lose it from their count");
    await writerSocket.request("delete_message", { message_id: sent[2].message_id });
    assert.deepEqual(await counts(), [2, 0, 1, 2]);

    // Marking read skips the deleted message, and the count stays true afterwards.
    assert.deepEqual(await readerSocket.request("mark_read", { conversation_id: id }), { success: true, messages_marked: 1 });
    const ownerSocket = await connect(server, owner);
    const ownerRead = await ownerSocket.request("mark_read", { conversation_id: id, up_to_message_id: sent[2].message_id });
    assert.deepEqual(ownerRead, { success: true, messages_marked: 1 }, "only 'one' was left to read up to 'three'");
    await say(writerSocket, { conversation_id: id }, "five");
    assert.deepEqual(await counts(), [2, 0, 1, 3]);
    // The reader has read past "four" by now: its deletion counts only for the others.
    await rest(200, writer, "DELETE", `/api/messages/${sent[3].message_id}`);
    assert.deepEqual(await counts(), [1, 0, 1, 2]);
    await closeAll(writerSocket, readerSocket, ownerSocket);
  });
});

describe("replies", () => {
  test("reply_to carries a quote in new_message and history; another conversation's message is refused", async () => {
    const [alice, bob, carol] = await server.registerMany("alice", "bob", "carol");
    const [aliceSocket, bobSocket] = await Promise.all([connect(server, alice), connect(server, bob)]);
    const long = "x".repeat(150);
    const original = await say(aliceSocket, { to_user_id: bob.id }, long);
    await bobSocket.expect("new_message");
    const reply = await say(bobSocket, { to_user_id: alice.id }, "agreed", { reply_to: original.message_id });
    const heard = await aliceSocket.expect("new_message");
    assert.equal(heard.message_id, reply.message_id);
    assert.deepEqual(heard.reply_to, { message_id: original.message_id, from_user_id: alice.id, excerpt: "x".repeat(100) });
    const shown = await inHistory(alice, original.conversation_id, reply.message_id);
    assert.deepEqual(shown.reply_to, heard.reply_to);
    assert.equal((await inHistory(alice, original.conversation_id, original.message_id)).reply_to, null);

    // A message of another conversation, a missing one, or no id at all.
    const elsewhere = await say(aliceSocket, { to_user_id: carol.id }, "hi carol");
    await refusedOnSocket(bobSocket, "send_message", { to_user_id: alice.id, content: "x", reply_to: elsewhere.message_id }, "invalid_payload");
    await refusedOnSocket(bobSocket, "send_message", { to_user_id: alice.id, content: "x", reply_to: 999999999 }, "invalid_payload");
    await refusedOnSocket(bobSocket, "send_message", { to_user_id: alice.id, content: "x", reply_to: "no" }, "invalid_payload");
    // Nothing of those reached alice: the next new_message is this one.
    const next = await say(bobSocket, { to_user_id: alice.id }, "next", { reply_to: String(reply.message_id) });
    const nextHeard = await aliceSocket.expect("new_message");
    assert.equal(nextHeard.message_id, next.message_id, "refused replies were not delivered");
    assert.deepEqual(nextHeard.reply_to, { message_id: reply.message_id, from_user_id: bob.id, excerpt: "agreed" });

    // The quote of a deleted original has no excerpt.
    await aliceSocket.request("delete_message", { message_id: original.message_id });
    assert.deepEqual((await inHistory(bob, original.conversation_id, reply.message_id)).reply_to, {
      message_id: original.message_id,
      from_user_id: alice.id,
      excerpt: null,
    });
    await closeAll(aliceSocket, bobSocket);
  });
});

describe("reactions", () => {
  test("one emoji per user: set, change, clear; counts and the caller's own in history; REST alike", async () => {
    const [alice, bob, carol] = await server.registerMany("alice", "bob", "carol");
    const group = await createGroup(server, alice, [bob, carol]);
    const id = group.conversation_id;
    const [aliceSocket, bobSocket, carolSocket] = await Promise.all([alice, bob, carol].map((u) => connect(server, u)));
    const sent = await say(aliceSocket, { conversation_id: id }, "lunch?");
    const mid = sent.message_id;

    const first = await bobSocket.request("react", { message_id: mid, emoji: "👍" });
    assert.deepEqual({ ...first, version: 0 }, {
      conversation_id: id,
      message_id: mid,
      user_id: bob.id,
      emoji: "👍",
      reactions: [{ emoji: "👍", count: 1 }],
      version: 0,
    });
    assert.deepEqual(await aliceSocket.expect("reaction_changed"), first);
    const second = await rest(200, carol, "PUT", `/api/messages/${mid}/reaction`, { emoji: "👍" });
    assert.deepEqual(second.reactions, [{ emoji: "👍", count: 2 }]);
    assert.equal(second.version, first.version + 1);
    const third = await carolSocket.request("react", { message_id: mid, emoji: "🎉" });
    assert.deepEqual(third.reactions, [{ emoji: "👍", count: 1 }, { emoji: "🎉", count: 1 }], "one reaction per user");
    for (const device of [aliceSocket, bobSocket, carolSocket]) {
      assert.deepEqual(await device.until("reaction_changed", (e) => e.version === third.version), third);
    }

    const asCarol = await inHistory(carol, id, mid);
    assert.deepEqual(asCarol.reactions, third.reactions);
    assert.equal(asCarol.my_reaction, "🎉");
    assert.equal((await inHistory(bob, id, mid)).my_reaction, "👍");
    assert.equal((await inHistory(alice, id, mid)).my_reaction, null);

    const cleared = await bobSocket.request("react", { message_id: mid, emoji: null });
    assert.equal(cleared.emoji, null);
    assert.deepEqual(cleared.reactions, [{ emoji: "🎉", count: 1 }]);
    const restCleared = await rest(200, carol, "PUT", `/api/messages/${mid}/reaction`, { emoji: null });
    assert.deepEqual(restCleared.reactions, []);
    assert.equal((await inHistory(carol, id, mid)).my_reaction, null);

    await refusedOnSocket(bobSocket, "react", { message_id: mid, emoji: "two words" }, "invalid_payload");
    await refusedOnSocket(bobSocket, "react", { message_id: mid, emoji: "" }, "invalid_payload");
    await rest(400, bob, "PUT", `/api/messages/${mid}/reaction`, { emoji: "too long an emoji" });
    const stranger = await server.register("stranger");
    await rest(404, stranger, "PUT", `/api/messages/${mid}/reaction`, { emoji: "👍" });
    await closeAll(aliceSocket, bobSocket, carolSocket);
  });
});

describe("blocks", () => {
  test("across a block in a direct chat, edits and reactions are refused; deleting one's own message is not", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const [aliceSocket, bobSocket] = await Promise.all([connect(server, alice), connect(server, bob)]);
    const sent = await say(aliceSocket, { to_user_id: bob.id }, "before the block");
    await bobSocket.expect("new_message");
    await rest(200, bob, "POST", "/api/blocks", { user_id: alice.id });

    await refusedOnSocket(aliceSocket, "edit_message", { message_id: sent.message_id, content: "after" }, "blocked");
    await refusedOnSocket(bobSocket, "react", { message_id: sent.message_id, emoji: "👎" }, "blocked");
    await rest(403, alice, "PUT", `/api/messages/${sent.message_id}/reaction`, { emoji: "👍" });
    const deleted = await aliceSocket.request("delete_message", { message_id: sent.message_id });
    assert.equal(deleted.message_id, sent.message_id, JSON.stringify(deleted));
    // The deletion is the first change bob hears: nothing refused reached him.
    assert.deepEqual(await bobSocket.expect("message_deleted"), deleted);
    assert.equal(bobSocket.collect("message_edited").length + bobSocket.collect("reaction_changed").length, 0);
    await closeAll(aliceSocket, bobSocket);
  });
});

describe("sync by version", () => {
  test("a device that was away gets every insert, edit, deletion and reaction it missed, in version order", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const aliceSocket = await connect(server, alice);
    let bobSocket = await connect(server, bob);
    const one = await say(aliceSocket, { to_user_id: bob.id }, "one");
    const two = await say(aliceSocket, { to_user_id: bob.id }, "two");
    const three = await say(aliceSocket, { to_user_id: bob.id }, "three");
    const seen = await bobSocket.expectMany("new_message", 3);
    const id = one.conversation_id;
    const cursor = Math.max(...seen.map((m) => m.version));
    await bobSocket.close();

    // While bob is away: an edit, a deletion, a reaction, a new message.
    await aliceSocket.request("edit_message", { message_id: one.message_id, content: "one (edited)" });
    await aliceSocket.request("delete_message", { message_id: two.message_id });
    await aliceSocket.request("react", { message_id: three.message_id, emoji: "🔥" });
    const four = await say(aliceSocket, { to_user_id: bob.id }, "four", { reply_to: one.message_id });

    bobSocket = await connect(server, bob);
    const answer = await bobSocket.request("sync", { changes: [{ conversation_id: id, after_version: cursor }] });
    assert.equal(answer.has_more, false, JSON.stringify(answer));
    assert.deepEqual(
      answer.changes.map((m) => [m.message_id, m.version]),
      [
        [one.message_id, cursor + 1],
        [two.message_id, cursor + 2],
        [three.message_id, cursor + 3],
        [four.message_id, cursor + 4],
      ],
      "each changed message once, at its latest version; versions gap-free",
    );
    const [edited, deleted, reacted, fresh] = answer.changes;
    assert.equal(edited.content, "one (edited)");
    assert.match(edited.edited_at, ISO_UTC);
    assert.deepEqual([deleted.deleted, deleted.content], [true, ""]);
    assert.deepEqual(reacted.reactions, [{ emoji: "🔥", count: 1 }]);
    assert.equal(reacted.my_reaction, null);
    assert.equal(fresh.content, "four");
    assert.deepEqual(fresh.reply_to, { message_id: one.message_id, from_user_id: alice.id, excerpt: "one (edited)" });
    assert.equal(fresh.seq, 4);
    // The new message also comes from bob's queue, as always.
    assert.equal((await bobSocket.until("new_message", (m) => m.message_id === four.message_id)).version, cursor + 4);

    // Asking again from the newest version: nothing more. REST says the same.
    const none = await bobSocket.request("sync", { changes: [{ conversation_id: id, after_version: cursor + 4 }] });
    assert.deepEqual(none, { changes: [], has_more: false });
    const viaRest = await rest(200, bob, "GET", `/api/messages/changes?conversation_id=${id}&after_version=${cursor}`);
    assert.deepEqual(
      viaRest.changes.map((m) => [m.id, m.version, m.deleted]),
      answer.changes.map((m) => [m.message_id, m.version, m.deleted]),
    );

    // The seq form is unchanged: new messages after a seq, tombstones flagged.
    const bySeq = await bobSocket.request("sync", { since: [{ conversation_id: id, after_seq: 1 }] });
    assert.deepEqual(bySeq.messages.map((m) => m.seq), [2, 3, 4]);
    assert.equal(bySeq.messages[0].deleted, true);

    // Refusals: a conversation bob is not in, both forms at once, neither.
    const carol = await server.register("carol");
    const elsewhere = await say(aliceSocket, { to_user_id: carol.id }, "hi");
    await refusedOnSocket(bobSocket, "sync", { changes: [{ conversation_id: elsewhere.conversation_id, after_version: 0 }] }, "conversation_not_found");
    await refusedOnSocket(bobSocket, "sync", { since: [], changes: [] }, "invalid_payload");
    await refusedOnSocket(bobSocket, "sync", {}, "invalid_payload");
    await rest(404, bob, "GET", `/api/messages/changes?conversation_id=${elsewhere.conversation_id}`);
    await closeAll(aliceSocket, bobSocket);
  });

  test("concurrent sends, edits and reactions each take their own version: 1..n, no gaps, no repeats", async () => {
    const [alice, bob, carol] = await server.registerMany("alice", "bob", "carol");
    const group = await createGroup(server, alice, [bob, carol]);
    const id = group.conversation_id;
    const [aliceSocket, bobSocket, carolSocket] = await Promise.all([alice, bob, carol].map((u) => connect(server, u)));
    const first = await Promise.all([1, 2, 3, 4].map((i) => say(aliceSocket, { conversation_id: id }, `m${i}`)));
    // Everything at once: more sends, edits of the first messages, reactions from both
    // other members (and over REST), racing on one counter.
    const acks = await Promise.all([
      ...[5, 6, 7, 8].map((i) => bobSocket.request("send_message", { conversation_id: id, content: `m${i}` })),
      ...first.map((m) => aliceSocket.request("edit_message", { message_id: m.message_id, content: "edited" })),
      ...first.map((m) => bobSocket.request("react", { message_id: m.message_id, emoji: "👍" })),
      ...first.map((m) => carolSocket.request("react", { message_id: m.message_id, emoji: "🎉" })),
      ...first.map((m) => rest(200, alice, "PUT", `/api/messages/${m.message_id}/reaction`, { emoji: "❤️" })),
    ]);
    for (const ack of acks) assert.equal(ack.error, undefined, JSON.stringify(ack));
    // The sends' versions come with new_message; every other change answers its own.
    const sentVersions = (await carolSocket.expectMany("new_message", 8)).map((m) => m.version);
    const changeVersions = acks.filter((ack) => ack.status === undefined).map((ack) => ack.version);
    const all = [...sentVersions, ...changeVersions].sort((x, y) => x - y);
    assert.deepEqual(all, Array.from({ length: 8 + 16 }, (_, i) => i + 1), "versions 1..24, each once");
    const answer = await carolSocket.request("sync", { changes: [{ conversation_id: id, after_version: 0 }] });
    assert.equal(answer.changes.length, 8, "each message once, as it stands");
    const latest = answer.changes.map((m) => m.version);
    assert.deepEqual(latest, [...latest].sort((x, y) => x - y), "in version order");
    assert.equal(Math.max(...latest), 24);
    for (const m of answer.changes.filter((m) => m.seq <= 4)) {
      assert.equal(m.content, "edited");
      assert.deepEqual(m.reactions.map((r) => r.count).reduce((x, y) => x + y), 3);
      assert.equal(m.my_reaction, "🎉");
    }
    await closeAll(aliceSocket, bobSocket, carolSocket);
  });

  test("a queued message edited or deleted while its recipient was away arrives as it now stands", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const aliceSocket = await connect(server, alice);
    const kept = await say(aliceSocket, { to_user_id: bob.id }, "draft");
    const gone = await say(aliceSocket, { to_user_id: bob.id }, "regret");
    await aliceSocket.request("edit_message", { message_id: kept.message_id, content: "final" });
    await aliceSocket.request("delete_message", { message_id: gone.message_id });
    const bobSocket = await connect(server, bob);
    const [first, second] = await bobSocket.expectMany("new_message", 2);
    assert.equal(first.content, "final");
    assert.match(first.edited_at, ISO_UTC);
    assert.deepEqual([second.message_id, second.content, second.deleted], [gone.message_id, "", true]);
    await closeAll(aliceSocket, bobSocket);
  });
});

describe("two nodes, one database", () => {
  // On PostgreSQL two server processes share the database (live events do not cross
  // nodes until the Redis adapter lands, so what is checked is what storage answers:
  // acks, sync and REST). On SQLite the same runs through one node.
  test("changes from both nodes at once take versions 1..n, each once; both nodes answer the same changes", async () => {
    const env = { RATE_SENDS_PER_SEC: "0", RATE_SYNC_PER_SEC: "0" };
    const nodes = backend === "postgres" ? await startCluster(2, { env }) : [await startServer({ env })];
    const [a, b = a] = nodes;
    try {
      const [alice, carol] = await a.registerMany("alice", "carol");
      const bob = await b.register("bob");
      const group = await createGroup(a, alice, [bob, carol]);
      const id = group.conversation_id;
      const [aliceSocket, carolSocket, bobSocket] = await Promise.all([
        connect(a, alice),
        connect(a, carol),
        connect(b, bob),
      ]);
      const base = await Promise.all([1, 2, 3].map((i) => say(aliceSocket, { conversation_id: id }, `m${i}`)));
      const ROUNDS = 5;
      let inserts = base.length;
      const changes = [];
      for (let round = 0; round < ROUNDS; round++) {
        const answers = await Promise.all([
          ...base.map((m) => aliceSocket.request("edit_message", { message_id: m.message_id, content: `r${round}` })),
          ...base.map((m) => bobSocket.request("react", { message_id: m.message_id, emoji: round % 2 ? "👍" : "🎉" })),
          ...base.map((m) =>
            b.http("PUT", `/api/messages/${m.message_id}/reaction`, { token: carol.token, json: { emoji: "🔥" } }).then((r) => r.body),
          ),
          bobSocket.request("send_message", { conversation_id: id, content: `b${round}` }),
          aliceSocket.request("send_message", { conversation_id: id, content: `a${round}` }),
        ]);
        for (const answer of answers) {
          assert.equal(answer?.error, undefined, JSON.stringify(answer));
          if (answer.status === "sent") inserts++;
          else changes.push(answer.version);
        }
      }
      assert.equal(new Set(changes).size, changes.length, "no two changes share a version");
      const total = inserts + changes.length;
      const fromA = await aliceSocket.request("sync", { changes: [{ conversation_id: id, after_version: 0 }] });
      const fromB = await bobSocket.request("sync", { changes: [{ conversation_id: id, after_version: 0 }] });
      assert.equal(fromA.changes.length, inserts, "every message once");
      assert.equal(Math.max(...fromA.changes.map((m) => m.version)), total, "the counter moved once per change: no gaps");
      assert.ok(changes.every((v) => v >= 1 && v <= total));
      const view = (answer) => answer.changes.map((m) => [m.message_id, m.version, m.content, m.reactions]);
      assert.deepEqual(view(fromB), view(fromA), "both nodes answer the same changes");
      for (const m of fromA.changes.filter((m) => m.seq <= base.length)) {
        assert.equal(m.content, `r${ROUNDS - 1}`, "the last round's edit stands");
      }
      await closeAll(aliceSocket, carolSocket, bobSocket);
    } finally {
      await Promise.all(nodes.map((node) => node.stop()));
    }
  });
});
