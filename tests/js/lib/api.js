// Small REST and waiting helpers shared by the realtime-state tests
// (presence, typing, receipts, reliability). Every helper asserts the status it
// expects, so a failing request shows up where it happened, with its body.

import assert from "node:assert/strict";
import { sleep } from "./client.js";

/** The caller's view of a conversation's history: { messages, total, has_more }. */
export async function history(server, user, conversationId, query = "") {
  const res = await server.http("GET", `/api/messages?conversation_id=${conversationId}${query}`, {
    token: user.token,
  });
  assert.equal(res.status, 200, `history of ${conversationId}${query}: ${res.status} ${res.text}`);
  return res.body;
}

/** The caller's conversation list. */
export async function conversationsOf(server, user) {
  const res = await server.http("GET", "/api/conversations", { token: user.token });
  assert.equal(res.status, 200, `conversation list: ${res.status} ${res.text}`);
  return res.body.conversations;
}

/** `GET /api/presence?user_ids=…` as `viewer`; resolves to the `users` array. */
export async function presenceOf(server, viewer, ids) {
  const res = await server.http("GET", `/api/presence?user_ids=${ids.join(",")}`, {
    token: viewer.token,
  });
  assert.equal(res.status, 200, `presence of ${ids}: ${res.status} ${res.text}`);
  return res.body.users;
}

/**
 * Calls `probe` until it returns a truthy value (which is returned), or fails
 * with `what` after `timeoutMs`. For server-side state that trails an event.
 */
export async function eventually(probe, { timeoutMs = 5_000, intervalMs = 50, what = "condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await probe();
    if (last) return last;
    if (Date.now() > deadline) {
      assert.fail(`${what} did not hold within ${timeoutMs} ms (last: ${JSON.stringify(last)})`);
    }
    await sleep(intervalMs);
  }
}

/**
 * `POST /api/groups` as `creator`, with `members` (users) as member_ids and `fields`
 * (name, description, …) added to the body; asserts 201 and resolves to the `group`.
 */
export async function createGroup(server, creator, members, fields = {}) {
  const json = { name: "group", member_ids: members.map((member) => member.id), ...fields };
  const res = await server.http("POST", "/api/groups", { token: creator.token, json });
  assert.equal(res.status, 201, `creating group ${JSON.stringify(json.name)}: ${res.status} ${res.text}`);
  return res.body.group;
}

/** `GET /api/groups/{id}` as `user`; asserts 200 and resolves to the `group`. */
export async function groupOf(server, user, groupId) {
  const res = await server.http("GET", `/api/groups/${groupId}`, { token: user.token });
  assert.equal(res.status, 200, `group ${groupId}: ${res.status} ${res.text}`);
  return res.body.group;
}
