// REST requests the OpenAPI document allows and the server therefore accepts (the forms
// schemathesis's positive_data_acceptance check sends): history with several of
// `offset` / `after_seq` / `before_seq` at once, `PATCH /api/groups/{id}` with nothing to
// change, integers written as integral floats (`5.0`) in JSON bodies, and a conversation
// list `cursor` without `limit`. Each also checks that what stays wrong stays refused.

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "../lib/harness.js";
import { connect } from "../lib/client.js";
import { history, createGroup, groupOf } from "../lib/api.js";

let server;
before(async () => {
  server = await startServer({ env: { RATE_SENDS_PER_SEC: "0" } });
});
after(() => server?.stop());

const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const seqs = (body) => body.messages.map((m) => m.seq);

function assertErrorBody(res, status, what) {
  assert.equal(res.status, status, `${what}: ${res.status} ${res.text}`);
  assert.equal(typeof res.body?.error, "string", `${what}: an { error } body`);
}

/** A JSON body sent verbatim, so numbers keep their spelling (`5.0`). */
function rawJson(method, path, token, text) {
  return server.http(method, path, { token, body: text, headers: { "content-type": "application/json" } });
}

describe("GET /api/messages with more than one paging parameter", () => {
  let alice;
  let carol;
  let conversationId;
  before(async () => {
    [alice, carol] = await server.registerMany("alice", "carol");
    const bob = await server.register("bob");
    const socket = await connect(server, alice);
    for (const i of range(1, 12)) {
      const ack = await socket.request("send_message", { to_user_id: bob.id, content: `m${i}` });
      conversationId = ack.conversation_id;
    }
    await socket.close();
  });
  const page = (query) => history(server, alice, conversationId, query);

  test("after_seq and before_seq read the messages strictly between, oldest first", async () => {
    const between = await page("&after_seq=3&before_seq=9");
    assert.deepEqual(seqs(between), range(4, 8));
    assert.equal(between.has_more, false);
    assert.equal(between.total, 12);
    assert.deepEqual(
      between.messages.map((m) => m.content),
      range(4, 8).map((i) => `m${i}`),
    );

    // Paged: move after_seq to the last seq seen, keep before_seq.
    const pages = [];
    let after = 3;
    for (;;) {
      const body = await page(`&after_seq=${after}&before_seq=9&limit=2`);
      pages.push(seqs(body));
      if (!body.has_more) break;
      after = body.messages.at(-1).seq;
      assert.ok(pages.length < 10, "paging terminates");
    }
    assert.deepEqual(pages, [[4, 5], [6, 7], [8]]);
  });

  test("an empty or inverted range is an empty page, not an error", async () => {
    for (const query of ["&after_seq=5&before_seq=6", "&after_seq=9&before_seq=3", "&after_seq=12&before_seq=100"]) {
      const body = await page(query);
      assert.deepEqual(body.messages, [], query);
      assert.equal(body.has_more, false, query);
      assert.equal(body.total, 12, query);
    }
  });

  test("offset skips that many from where a cursor page starts", async () => {
    assert.deepEqual(seqs(await page("&after_seq=2&offset=3&limit=2")), [6, 7]);
    assert.deepEqual(seqs(await page("&before_seq=10&offset=2&limit=3")), [7, 6, 5]);
    const rangeSkipped = await page("&after_seq=3&before_seq=9&offset=4");
    assert.deepEqual(seqs(rangeSkipped), [8]);
    assert.equal(rangeSkipped.has_more, false);
    const beyond = await page("&after_seq=0&offset=50");
    assert.deepEqual(beyond.messages, []);
    assert.equal(beyond.has_more, false);
    // offset=0 (what many clients always send) changes nothing.
    assert.deepEqual(await page("&offset=0&after_seq=0&limit=5"), await page("&after_seq=0&limit=5"));
    assert.deepEqual(await page("&offset=0&before_seq=13&limit=5"), await page("&before_seq=13&limit=5"));
  });

  test("the seed's forms are unchanged", async () => {
    assert.deepEqual(seqs(await page("&limit=3&offset=2")), [10, 9, 8]);
    assert.deepEqual(seqs(await page("&after_seq=10")), [11, 12]);
    assert.deepEqual(seqs(await page("&before_seq=3")), [2, 1]);
  });

  test("bad numbers are still 400, and a non-member still gets 404", async () => {
    for (const query of [
      "&after_seq=1&before_seq=x",
      "&after_seq=-1&before_seq=5",
      "&offset=x&after_seq=1",
      "&offset=-1&before_seq=5",
      "&after_seq=&before_seq=5",
      "&limit=",
    ]) {
      const res = await server.http("GET", `/api/messages?conversation_id=${conversationId}${query}`, {
        token: alice.token,
      });
      assertErrorBody(res, 400, query);
    }
    const res = await server.http("GET", `/api/messages?conversation_id=${conversationId}&after_seq=0&before_seq=5`, {
      token: carol.token,
    });
    assertErrorBody(res, 404, "non-member");
  });
});

describe("PATCH /api/groups/{id} with nothing to change", () => {
  let alice;
  let bob;
  let dave;
  let group;
  before(async () => {
    [alice, bob, dave] = await server.registerMany("alice", "bob", "dave");
    group = await createGroup(server, alice, [bob], { name: "Unchanged", description: "as it was" });
  });

  test("answers 200 with the group as it is, and announces nothing", async () => {
    const bobSocket = await connect(server, bob);
    try {
      const empties = [{}, { name: null }, { description: null }, { name: null, description: null }, { unknown: 1 }];
      for (const body of empties) {
        const res = await server.http("PATCH", `/api/groups/${group.conversation_id}`, {
          token: alice.token,
          json: body,
        });
        assert.equal(res.status, 200, `${JSON.stringify(body)}: ${res.text}`);
        assert.deepEqual(res.body.group, group, JSON.stringify(body));
      }
      await bobSocket.expectNone("group_updated");
      assert.deepEqual(await groupOf(server, alice, group.conversation_id), group);
    } finally {
      await bobSocket.close();
    }
  });

  test("keeps the checks a change gets: 403 for a plain member, 404 for a non-member", async () => {
    const path = `/api/groups/${group.conversation_id}`;
    const asMember = await server.http("PATCH", path, { token: bob.token, json: {} });
    assertErrorBody(asMember, 403, "plain member");
    const asStranger = await server.http("PATCH", path, { token: dave.token, json: {} });
    assertErrorBody(asStranger, 404, "non-member");
  });

  test("a body of the wrong shape is still 400, an invalid name still 422", async () => {
    const path = `/api/groups/${group.conversation_id}`;
    for (const text of ["[]", "null", '{"name": 5}', '{"description": ["x"]}', "{"]) {
      assertErrorBody(await rawJson("PATCH", path, alice.token, text), 400, text);
    }
    assertErrorBody(await server.http("PATCH", path, { token: alice.token, json: { name: "   " } }), 422, "blank name");
  });
});

describe("integers written as integral floats in JSON bodies", () => {
  let alice;
  let bob;
  let carol;
  let dave;
  before(async () => {
    [alice, bob, carol, dave] = await server.registerMany("alice", "bob", "carol", "dave");
  });

  test("member ids like 5.0 are the ids 5", async () => {
    const created = await rawJson(
      "POST",
      "/api/groups",
      alice.token,
      `{"name": "floats", "member_ids": [${bob.id}.0]}`,
    );
    assert.equal(created.status, 201, created.text);
    const id = created.body.group.conversation_id;
    const byId = (a, b) => a - b;
    assert.deepEqual(created.body.group.members.map((m) => m.user_id).sort(byId), [alice.id, bob.id].sort(byId));

    const body = `{"user_ids": [${carol.id}.0, ${dave.id}]}`;
    const added = await rawJson("POST", `/api/groups/${id}/members`, alice.token, body);
    assert.equal(added.status, 200, added.text);
    assert.equal(added.body.group.members.length, 4);
  });

  test("POST /api/blocks takes user_id 7.0 and 7e0", async () => {
    const res = await rawJson("POST", "/api/blocks", alice.token, `{"user_id": ${bob.id}.0}`);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body.users.map((u) => u.user_id), [bob.id]);
    const again = await rawJson("POST", "/api/blocks", alice.token, `{"user_id": ${carol.id}e0}`);
    assert.equal(again.status, 200, again.text);
    assert.equal(again.body.users.length, 2);
  });

  test("a fraction, a number beyond i64, or a string is still 400", async () => {
    for (const text of [
      `{"user_id": ${bob.id}.5}`,
      '{"user_id": 1e19}',
      '{"user_id": 9223372036854775808}',
      `{"user_id": "${bob.id}"}`,
    ]) {
      assertErrorBody(await rawJson("POST", "/api/blocks", dave.token, text), 400, text);
    }
    const mixed = await rawJson("POST", "/api/groups", dave.token, `{"name": "x", "member_ids": [${bob.id}.0, 2.5]}`);
    assertErrorBody(mixed, 400, "a fraction among whole floats");
    assert.match(mixed.body.error, /2\.5/, "the error names what was written");
  });
});

describe("GET /api/conversations with cursor and no limit", () => {
  test("reads a page of the largest size (200) after the cursor", async () => {
    const alice = await server.register("alice");
    const others = await server.registerMany("b", "c", "d");
    for (const other of others) await createGroup(server, alice, [other], { name: `with ${other.id}` });
    const whole = await server.http("GET", "/api/conversations", { token: alice.token });
    assert.equal(whole.status, 200, whole.text);
    const ids = whole.body.conversations.map((c) => c.conversation_id);
    assert.equal(ids.length, 3);

    const first = await server.http("GET", "/api/conversations?limit=1", { token: alice.token });
    assert.equal(first.status, 200, first.text);
    const cursor = first.body.next_cursor;
    assert.equal(typeof cursor, "string");
    const rest = await server.http("GET", `/api/conversations?cursor=${encodeURIComponent(cursor)}`, {
      token: alice.token,
    });
    assert.equal(rest.status, 200, rest.text);
    assert.deepEqual(rest.body.conversations.map((c) => c.conversation_id), ids.slice(1));
    assert.equal(rest.body.next_cursor, null, "the last page says so");
    const explicit = await server.http("GET", `/api/conversations?limit=200&cursor=${encodeURIComponent(cursor)}`, {
      token: alice.token,
    });
    assert.deepEqual(rest.body, explicit.body);

    const refused = ["cursor=x", "cursor=12", "cursor=1.y", "limit=0&cursor=1.1", "limit=x", "limit=", "limit=&cursor="];
    for (const query of refused) {
      assertErrorBody(await server.http("GET", `/api/conversations?${query}`, { token: alice.token }), 400, query);
    }
  });
});
