// Full-text search (`GET /api/search`): every word of `q`, whole words, any case, over
// the conversations the caller is a current member of, never deleted messages; ranked
// (relevance, then newest), paged by cursor. The expectations are the same on SQLite
// (FTS5, bm25) and PostgreSQL (GIN, ts_rank): the file runs unchanged on both.
//
// Each test's users are fresh, and each searches words of its own, so what other tests
// stored cannot be found (search only reaches the caller's conversations) and cannot
// change an order asserted here (only relative orders both engines agree on are).

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { backend, startServer, ISO_UTC } from "../lib/harness.js";
import { connect, closeAll } from "../lib/client.js";
import { history, createGroup, eventually } from "../lib/api.js";

let server;
before(async () => {
  // These tests search far faster than a person; the rate has its own test below.
  server = await startServer({ env: { RATE_LOOKUPS_PER_SEC: "0" } });
});
after(() => server?.stop());

/** Sends `content` from `socket` to `target`; resolves to the ack. */
async function say(socket, target, content) {
  const ack = await socket.request("send_message", { ...target, content });
  assert.equal(ack?.status, "sent", `${socket.name} saying "${content}": ${JSON.stringify(ack)}`);
  return ack;
}

/** Sends each text in turn (so ids and seqs follow the list); resolves to their message ids. */
async function sayAll(socket, target, texts) {
  const ids = [];
  for (const text of texts) ids.push((await say(socket, target, text)).message_id);
  return ids;
}

/** `GET /api/search` with `params` as `user`, which must answer `status`; resolves to the body. */
async function search(user, params, status = 200) {
  const query = new URLSearchParams(params).toString();
  const res = await server.http("GET", `/api/search?${query}`, { token: user.token });
  assert.equal(res.status, status, `search ${query} as ${user.display_name}: ${res.status} ${res.text}`);
  if (status >= 400) assert.equal(typeof res.body?.error, "string", `an { error } body: ${res.text}`);
  if (status === 200) {
    assert.ok(Array.isArray(res.body.hits), res.text);
    assert.ok(res.body.next_cursor === null || typeof res.body.next_cursor === "string", res.text);
  }
  return res.body;
}

/** The ids of the messages `user` finds for `q` (one page of up to 50). */
async function found(user, q, extra = {}) {
  return (await search(user, { q, limit: "50", ...extra })).hits.map((h) => h.message.id);
}

/** Every hit for `q`, following `next_cursor` page by page with `limit`. */
async function allPages(user, q, limit) {
  const ids = [];
  let cursor;
  for (let page = 0; page < 50; page++) {
    const body = await search(user, cursor ? { q, limit: String(limit), cursor } : { q, limit: String(limit) });
    assert.ok(body.hits.length <= limit, `a page holds at most ${limit}`);
    ids.push(...body.hits.map((h) => h.message.id));
    if (body.next_cursor === null) return ids;
    assert.equal(body.hits.length, limit, "a page before the last is full");
    cursor = body.next_cursor;
  }
  assert.fail("paging did not end");
}

/** Two users with a direct chat, both connected. */
async function pair() {
  const [alice, bob] = await server.registerMany("alice", "bob");
  const [aliceSocket, bobSocket] = await Promise.all([connect(server, alice), connect(server, bob)]);
  return { alice, bob, aliceSocket, bobSocket, toBob: { to_user_id: bob.id } };
}

describe(`search (${backend})`, () => {
  test("a hit is the message as history shows it, with a snippet marking the searched words", async () => {
    const { alice, bob, aliceSocket, bobSocket, toBob } = await pair();
    const [id] = await sayAll(aliceSocket, toBob, ["Lunch at the Harbour? harbour views, HARBOUR prices"]);
    // Once delivered, the message stays as it is while both reads below look at it.
    await aliceSocket.expect("message_delivered");
    const body = await search(bob, { q: "harbour" });
    assert.equal(body.hits.length, 1);
    assert.equal(body.next_cursor, null, "one page: no cursor");
    const [hit] = body.hits;
    const shown = (await history(server, bob, hit.message.conversation_id)).messages.find((m) => m.id === id);
    assert.deepEqual(hit.message, shown, "the hit's message is history's item");
    assert.match(hit.message.sent_at, ISO_UTC);
    assert.equal(hit.snippet.map((s) => s.text).join(""), hit.message.content, "a short text is shown whole");
    assert.deepEqual(
      hit.snippet.filter((s) => s.match).map((s) => s.text),
      ["Harbour", "harbour", "HARBOUR"],
      "every occurrence, in any case, is marked",
    );
    assert.deepEqual((await search(alice, { q: "HARBOUR views" })).hits.map((h) => h.message.id), [id], "the sender finds it too");
    await closeAll(aliceSocket, bobSocket);
  });

  test("every word must match, as a whole word, in any case; accents stay distinct", async () => {
    const { bob, aliceSocket, bobSocket, toBob } = await pair();
    const [both, onlyRed, apple, umlaut, accent] = await sayAll(aliceSocket, toBob, [
      "the red kite flies",
      "a red balloon",
      "applesauce is not an apple",
      "Ärger im Büro",
      "un café noir",
    ]);
    assert.deepEqual((await found(bob, "kite RED")).sort(), [both]);
    assert.deepEqual((await found(bob, "red")).sort((a, b) => a - b), [both, onlyRed]);
    assert.deepEqual(await found(bob, "apple"), [apple], "applesauce is another word, but the message names apple");
    assert.deepEqual(await found(bob, "app"), [], "no prefix matching");
    assert.deepEqual(await found(bob, "ärger"), [umlaut], "non-ASCII letters fold case");
    assert.deepEqual(await found(bob, "café"), [accent]);
    assert.deepEqual(await found(bob, "cafe"), [], "accents are not folded, on either database");
    assert.deepEqual(await found(bob, "red zeppelin"), [], "a missing word: no hit");
    await closeAll(aliceSocket, bobSocket);
  });

  test("ranked: more occurrences first, a short message before a long one, then newest first", async () => {
    const { bob, aliceSocket, bobSocket, toBob } = await pair();
    const [once, twice] = await sayAll(aliceSocket, toBob, ["kiwi lime tart", "kiwi kiwi tart"]);
    assert.deepEqual(await found(bob, "kiwi"), [twice, once], "two occurrences rank above one (same length)");

    const [short, long] = await sayAll(aliceSocket, toBob, [
      "mango salsa",
      "we had rice, beans, a salad, some bread and, for dessert, mango",
    ]);
    assert.deepEqual(await found(bob, "mango"), [short, long], "the same word in a short message ranks above a long one");
    assert.deepEqual(await found(bob, "mango"), [short, long], "the order is stable");

    const plums = await sayAll(aliceSocket, toBob, ["plum", "plum", "plum"]);
    assert.deepEqual(await found(bob, "plum"), plums.toReversed(), "equal relevance: newest first");
    await closeAll(aliceSocket, bobSocket);
  });

  test("pages follow next_cursor: together exactly the one-page answer, in its order", async () => {
    const { bob, aliceSocket, bobSocket, toBob } = await pair();
    const texts = [];
    for (let i = 0; i < 11; i++) {
      // Three kinds of relevance, interleaved in time, with ties inside each kind.
      texts.push(["cedar", "cedar cedar", "a cedar in the garden by the old wall"][i % 3]);
    }
    const ids = await sayAll(aliceSocket, toBob, texts);
    const whole = await found(bob, "cedar");
    assert.deepEqual([...whole].sort((a, b) => a - b), ids, "one page holds every hit");
    assert.deepEqual(await allPages(bob, "cedar", 4), whole, "pages of 4 (4, 4, 3) give the same hits in the same order");
    assert.deepEqual(await allPages(bob, "cedar", 1), whole, "pages of 1 too");
    assert.deepEqual(await allPages(bob, "cedar", 11), whole, "one full page: then no further page");

    // The default page is 20, the largest 50 (larger limits are capped).
    const many = await sayAll(aliceSocket, toBob, Array.from({ length: 52 }, (_, i) => `birch ${i}`));
    assert.equal((await search(bob, { q: "birch" })).hits.length, 20);
    const capped = await search(bob, { q: "birch", limit: "1000" });
    assert.equal(capped.hits.length, 50);
    assert.equal(typeof capped.next_cursor, "string");
    const rest = await search(bob, { q: "birch", limit: "1000", cursor: capped.next_cursor });
    assert.equal(rest.hits.length, 2);
    assert.equal(rest.next_cursor, null);
    assert.equal(new Set([...capped.hits, ...rest.hits].map((h) => h.message.id)).size, many.length);
    await closeAll(aliceSocket, bobSocket);
  });

  test("only conversations the caller is a current member of: not others', not one they left", async () => {
    const [alice, bob, carol, dave] = await server.registerMany("alice", "bob", "carol", "dave");
    const sockets = await Promise.all([alice, bob, carol, dave].map((u) => connect(server, u)));
    const [aliceSocket, bobSocket, carolSocket] = sockets;
    const secret = await say(carolSocket, { to_user_id: dave.id }, "the secret walnut recipe");
    const mine = await say(aliceSocket, { to_user_id: bob.id }, "a walnut for bob");
    const group = await createGroup(server, alice, [bob, carol]);
    const inGroup = await say(bobSocket, { conversation_id: group.conversation_id }, "walnut cake in the group");

    assert.deepEqual((await found(alice, "walnut")).sort((a, b) => a - b), [mine.message_id, inGroup.message_id]);
    assert.deepEqual(await found(carol, "walnut", { conversation_id: String(group.conversation_id) }), [inGroup.message_id]);
    await search(alice, { q: "walnut", conversation_id: String(secret.conversation_id) }, 404);
    await search(alice, { q: "walnut", conversation_id: "999999999" }, 404);

    const left = await server.http("POST", `/api/groups/${group.conversation_id}/leave`, { token: alice.token });
    assert.equal(left.status, 200, left.text);
    assert.deepEqual(await found(alice, "walnut"), [mine.message_id], "the group is gone from alice's search");
    await search(alice, { q: "walnut", conversation_id: String(group.conversation_id) }, 404);
    assert.deepEqual(await found(carol, "walnut", { conversation_id: String(group.conversation_id) }), [inGroup.message_id], "those who stay still find it");
    // A message sent after she left is not hers to find either.
    const later = await say(bobSocket, { conversation_id: group.conversation_id }, "walnut bread later");
    assert.deepEqual(await found(carol, "walnut bread"), [later.message_id]);
    assert.deepEqual(await found(alice, "walnut bread"), []);
    await closeAll(...sockets);
  });

  test("an edit changes what is found; a deleted message is found no more", async () => {
    const { alice, bob, aliceSocket, bobSocket, toBob } = await pair();
    const sent = await say(aliceSocket, toBob, "meet at the walrus pub");
    const kept = await say(aliceSocket, toBob, "the walrus is closed on Sundays");
    assert.deepEqual((await found(bob, "walrus")).sort((a, b) => a - b), [sent.message_id, kept.message_id]);

    const edited = await aliceSocket.request("edit_message", { message_id: sent.message_id, content: "meet at the narwhal pub" });
    assert.equal(edited.error, undefined, JSON.stringify(edited));
    assert.deepEqual(await found(bob, "walrus"), [kept.message_id], "the old word is gone");
    const [hit] = (await search(bob, { q: "narwhal" })).hits;
    assert.equal(hit.message.id, sent.message_id, "the new word is found");
    assert.equal(hit.message.content, "meet at the narwhal pub");
    assert.equal(hit.message.edited_at, edited.edited_at);
    assert.equal(hit.message.version, edited.version);

    const gone = await server.http("DELETE", `/api/messages/${sent.message_id}`, { token: alice.token });
    assert.equal(gone.status, 200, gone.text);
    assert.deepEqual(await found(bob, "narwhal"), [], "a tombstone has no words");
    assert.deepEqual(await found(bob, "pub"), [], "none of them");
    assert.deepEqual(await found(bob, "walrus"), [kept.message_id], "the other message stays");
    // Deleting the one that stays leaves nothing at all.
    const deleted = await aliceSocket.request("delete_message", { message_id: kept.message_id });
    assert.equal(deleted.error, undefined, JSON.stringify(deleted));
    assert.deepEqual(await found(alice, "walrus"), []);
    await closeAll(aliceSocket, bobSocket);
  });

  test("query syntax is read as plain words: never an error, never an operator", async () => {
    const { bob, aliceSocket, bobSocket, toBob } = await pair();
    const [orMessage, nearMessage, starMessage] = await sayAll(aliceSocket, toBob, [
      "either tea or coffee",
      "near the quay: alpha dock",
      "beta* testers (and NOT gamma)",
    ]);
    const attempts = [
      '"', '""', '"unterminated', "*", "**", "OR", "AND", "NOT", "NEAR(", "NEAR(a b)", "NEAR(alpha, 5)",
      "-", "-alpha", ":", "content:alpha", "col:alpha", "^alpha", "alpha +beta", "(", ")", "((", "{alpha beta}",
      "alpha*", "'", "'; DROP TABLE messages; --", "%", "_", "\\", "a & b | !c", "<->", "alpha <-> beta", ":*",
      "alpha:*", "~", "[", "]", "\u{00a0}", "\u{200b}", "😀", "a\u{0000}b",
    ];
    for (const q of attempts) await search(bob, { q });

    assert.deepEqual(await found(bob, "OR"), [orMessage], "OR is the word or");
    assert.deepEqual(await found(bob, "coffee OR"), [orMessage], "…and required, like any word");
    assert.deepEqual(await found(bob, "NEAR(alpha"), [nearMessage], "NEAR( is the word near");
    assert.deepEqual(await found(bob, 'quay: "alpha'), [nearMessage], "quotes and colons are not syntax");
    assert.deepEqual(await found(bob, "beta*"), [starMessage], "* is no prefix operator");
    assert.deepEqual(await found(bob, "NOT gamma"), [starMessage], "NOT is the word not");
    assert.deepEqual(await found(bob, "-gamma"), [starMessage], "- excludes nothing");
    assert.deepEqual(await found(bob, "\" * - :"), [], "no word: no hit");
    await closeAll(aliceSocket, bobSocket);
  });

  test("refusals: a missing, blank or overlong q, a bad cursor or limit, no token", async () => {
    const { bob, aliceSocket, bobSocket, toBob } = await pair();
    await say(aliceSocket, toBob, "spruce");
    for (const params of [{}, { q: "" }, { q: "   " }, { q: "\t\n" }, { q: "x".repeat(201) }]) {
      await search(bob, params, 400);
    }
    assert.deepEqual(await found(bob, `spruce ${"y".repeat(193)}`), [], "200 characters are accepted");
    for (const cursor of ["abc", "1", "1:x", ":5", "-1:5", "1:-5", "1e5:5", "1:99999999999999999999"]) {
      await search(bob, { q: "spruce", cursor }, 400);
    }
    for (const limit of ["0", "-1", "abc", ""]) await search(bob, { q: "spruce", limit }, 400);
    await search(bob, { q: "spruce", conversation_id: "-1" }, 400);
    await search(bob, { q: "spruce", conversation_id: "abc" }, 400);
    const anonymous = await server.http("GET", "/api/search?q=spruce");
    assert.equal(anonymous.status, 401, anonymous.text);
    // After every refusal, the same search still answers.
    assert.equal((await found(bob, "spruce")).length, 1);
    await closeAll(aliceSocket, bobSocket);
  });
});

describe("rate", () => {
  test("RATE_LOOKUPS_PER_SEC bounds one user's searches and key-bundle fetches, not another's", async () => {
    const limited = await startServer({ env: { RATE_LOOKUPS_PER_SEC: "1" } });
    try {
      const [alice, bob] = await limited.registerMany("alice", "bob");
      const get = (user, path) => limited.http("GET", path, { token: user.token });
      // A burst of two, then one a second: the third lookup at once is refused.
      assert.equal((await get(alice, "/api/search?q=anything")).status, 200);
      assert.equal((await get(alice, `/api/users/${bob.id}/keys`)).status, 200, "bundles spend the same tokens");
      const refused = await get(alice, "/api/search?q=anything");
      assert.equal(refused.status, 429, refused.text);
      assert.equal(typeof refused.body.error, "string");
      assert.ok(Number(refused.headers.get("retry-after")) >= 1, `Retry-After: ${refused.headers.get("retry-after")}`);
      assert.equal((await get(alice, `/api/users/${bob.id}/keys`)).status, 429);
      assert.equal((await get(bob, "/api/search?q=anything")).status, 200, "bob has his own tokens");
      const retryAfterMs = Number(refused.headers.get("retry-after")) * 1000;
      await eventually(async () => (await get(alice, "/api/search?q=anything")).status === 200, {
        timeoutMs: retryAfterMs + 3_000,
        intervalMs: 250,
        what: "alice's tokens come back",
      });
    } finally {
      await limited.stop();
    }
  });
});
