// Two people chat through the bundled test page in real headless Chromium, against the
// real server on SQLite: Alice in a desktop-sized window, Bob on a phone-sized one.
// The steps run in order and share the two windows.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { io } from "socket.io-client";
import { Person, launchChromium, skipReason } from "../lib/browser.js";
import { startServer } from "../lib/server.js";

const XSS = "<img src=x onerror=alert(1)>";
const PHONE = { width: 390, height: 780 };

function credentials(label) {
  const tag = randomBytes(4).toString("hex");
  return { email: `${label}-${tag}@example.com`, password: `pw-${tag}-secret`, displayName: label };
}

describe("the test page in headless Chromium", { skip: skipReason() ?? false }, () => {
  let server;
  let browser;
  let alice;
  let bob;
  let aliceId;
  let bobId;

  before(async () => {
    // A short presence grace, so "last seen" shows without a long wait.
    server = await startServer({ env: { PRESENCE_GRACE_MS: "300" } });
    browser = await launchChromium();
    [alice, bob] = await Promise.all([
      Person.open(browser, "alice", `${server.url}/`),
      Person.open(browser, "bob", `${server.url}/test_client.html`, { viewport: PHONE }),
    ]);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it("two people register through the page and connect over websocket", async () => {
    await alice.$("#register-form").waitFor();
    await alice.screenshot("01-login");
    aliceId = await alice.register(credentials("Alice"));
    bobId = await bob.register(credentials("Bob"));
    assert.notEqual(aliceId, bobId);
    // The CSP's connect-src 'self' lets the same-origin websocket upgrade through.
    await Promise.all([alice.connected("websocket"), bob.connected("websocket")]);
    await alice.$("#no-conversations").waitFor();
  });

  it("a direct chat: delivered while unread, an unread count, read once opened", async () => {
    await alice.$("#new-chat-btn").click();
    await alice.$("#new-chat-user").fill(String(bobId));
    await alice.$("#new-chat-text").fill("Hello Bob");
    await alice.$("#new-chat-form button[type=submit]").click();
    await alice.$("#conv-title", { hasText: `User #${bobId}` }).waitFor();
    await alice.ticks("Hello Bob", "delivered");

    const fromAlice = bob.conversation(`User #${aliceId}`);
    await fromAlice.locator(".badge.unread", { hasText: /^1$/ }).waitFor();
    await fromAlice.locator(".dot.online").waitFor();
    await fromAlice.locator(".preview", { hasText: "Hello Bob" }).waitFor();
    await bob.screenshot("02-bob-phone-unread");

    await bob.openConversation(`User #${aliceId}`);
    await bob.message("Hello Bob").waitFor();
    await alice.ticks("Hello Bob", "read");
    // Bob has not written to Alice yet, so the server keeps his presence from her.
    assert.equal(await alice.$("#conv-subtitle", { hasText: "online" }).count(), 0);
    await bob.$("#back-btn").click();
    await fromAlice.waitFor();
    assert.equal(await fromAlice.locator(".badge.unread").count(), 0);
    await bob.openConversation(`User #${aliceId}`);
  });

  it("typing shows on the other side and ends with the message", async () => {
    await bob.type("Hi Alice");
    await alice.$("#typing-line", { hasText: `User #${bobId} is typing` }).waitFor();
    await alice.screenshot("03-alice-sees-typing");
    await bob.$("#composer-input").press("Enter");
    await alice.message("Hi Alice").waitFor();
    await alice.page.waitForFunction(() => document.getElementById("typing-line").textContent === "");
    // Alice has the conversation open, so she reads it at once.
    await bob.ticks("Hi Alice", "read");
  });

  it("a message with markup shows as text and runs nothing", async () => {
    await alice.send(XSS);
    await bob.message(XSS).waitFor();
    assert.equal(await bob.message(XSS).locator(".content").textContent(), XSS);
    await bob.$("#back-btn").click();
    await bob.conversation(`User #${aliceId}`).locator(".preview", { hasText: XSS }).waitFor();
    await bob.openConversation(`User #${aliceId}`);
    // A round trip after it, so an injected handler would have had its chance to run.
    await alice.send("after the markup");
    await bob.message("after the markup").waitFor();
    for (const person of [alice, bob]) {
      assert.equal(await person.$("#message-list img, #conversation-list img").count(), 0);
      assert.deepEqual(person.dialogs, [], `${person.name} saw a dialog`);
    }
    await bob.screenshot("04-bob-phone-markup-as-text");
  });

  it("a group: created on the page, its messages reach the other member, members managed", async () => {
    const name = "Trip <b>plans</b>";
    await alice.$("#new-group-btn").click();
    await alice.$("#new-group-name").fill(name);
    await alice.$("#new-group-members").fill(String(bobId));
    await alice.$("#new-group-form button[type=submit]").click();
    await alice.$("#conv-title", { hasText: name }).waitFor();
    await alice.$("#conv-subtitle", { hasText: "2 members" }).waitFor();
    await alice.send("Group hello");

    await bob.$("#back-btn").click();
    await bob.conversation(name).locator(".badge.unread", { hasText: /^1$/ }).waitFor();
    await bob.openConversation(name);
    await bob.message("Group hello").waitFor();
    await alice.ticks("Group hello", "read");
    await bob.send("Group reply");
    await alice.message("Group reply").waitFor();

    await alice.$("#members-btn").click();
    const bobRow = alice.$(`#member-list li[data-user-id="${bobId}"]`);
    await bobRow.and(alice.$('[data-role="member"]')).waitFor();
    await bobRow.getByRole("button", { name: "Make admin" }).click();
    await alice.$(`#member-list li[data-user-id="${bobId}"][data-role="admin"]`).waitFor();

    // Bob sees his new role in his own member panel.
    await bob.$("#members-btn").click();
    await bob.$(`#member-list li[data-user-id="${bobId}"][data-role="admin"]`).waitFor();
    await alice.screenshot("05-alice-group-members");
    await bob.$("#members-btn").click();
    await alice.$("#members-btn").click();
  });

  it("REST and socket refusals are shown in plain words", async () => {
    // A socket refusal: the server's `error` event.
    await alice.$("#new-chat-btn").click();
    await alice.$("#new-chat-user").fill(String(aliceId));
    await alice.$("#new-chat-text").fill("talking to myself");
    await alice.$("#new-chat-form button[type=submit]").click();
    await alice.notice(/The server refused a request: .+ \(invalid_recipient\)/);
    await alice.$("#new-chat-form .cancel").click();

    // A REST refusal: `{ error }` with its status.
    const carol = await Person.open(browser, "carol", `${server.url}/`);
    try {
      await carol.$("#login-email").fill("nobody@example.com");
      await carol.$("#login-password").fill("wrong password");
      await carol.$("#login-form button[type=submit]").click();
      await carol.notice("Logging in failed: invalid email or password (HTTP 401)");
      await carol.$("#token-input").fill("not-a-token");
      await carol.$("#token-form button[type=submit]").click();
      await carol.notice(/Using the token failed: .+ \(HTTP 401\)/);
      await carol.screenshot("06-login-refused");

      // A pasted token is a second device of its user.
      await carol.$("#token-input").fill(await alice.token());
      await carol.$("#token-form button[type=submit]").click();
      await carol.$("#me-id", { hasText: String(aliceId) }).waitFor();
      await carol.connected();
      await carol.conversation(`User #${bobId}`).waitFor();
      assert.deepEqual([carol.dialogs, carol.pageErrors, carol.cspViolations], [[], [], []]);
    } finally {
      await carol.context.close();
    }
  });

  it("a reload brings back the session, the open conversation and its history; older pages load on scroll", async () => {
    // 40 more messages from Alice's second device, so the history is longer than a page.
    const token = await alice.token();
    const { conversations } = await (
      await fetch(`${server.url}/api/conversations`, { headers: { authorization: `Bearer ${token}` } })
    ).json();
    const direct = conversations.find((c) => c.kind === "direct" && c.other_user_id === bobId);
    const device = io(server.url, { auth: { token }, transports: ["websocket"] });
    try {
      for (let i = 1; i <= 40; i++) {
        const sent = await device
          .timeout(10_000)
          .emitWithAck("send_message", { conversation_id: direct.conversation_id, content: `history ${i}` });
        assert.equal(sent.error, undefined, JSON.stringify(sent.error));
      }
    } finally {
      device.disconnect();
    }

    await bob.openConversation(`User #${aliceId}`);
    await bob.message("history 40").waitFor();
    await bob.page.reload();
    await bob.$("#conv-title", { hasText: `User #${aliceId}` }).waitFor();
    await bob.message("history 40").waitFor();
    await bob.connected();
    assert.equal(await bob.message("Hello Bob").count(), 0, "the first page is the newest messages only");
    await bob.screenshot("07-bob-phone-after-reload");

    await bob.$("#older-btn").scrollIntoViewIfNeeded();
    await bob.message("Hello Bob").waitFor();
    await bob.$("#history-start").waitFor();
    const seqs = await bob.$("#message-list .msg").evaluateAll((items) => items.map((li) => Number(li.dataset.seq)));
    assert.deepEqual(
      seqs,
      seqs.map((_, i) => i + 1),
      "the whole history, in order, without gaps or repeats",
    );
    assert.equal(await bob.$("#message-list .msg .content").first().textContent(), "Hello Bob");
  });

  it("when the server restarts the page reconnects by itself and catches up with sync", async () => {
    // Entries logged so far are marked, so the sync looked for below is a new one.
    await bob.$("#event-list li").evaluateAll((items) => items.forEach((li) => (li.dataset.old = "1")));
    await server.restart({
      whileDown: async () => {
        await bob.$('#status[data-state="reconnecting"]').waitFor();
        await bob.notice("Cannot connect to the server");
        await bob.screenshot("08-bob-phone-server-down");
      },
    });
    await Promise.all([alice.connected(), bob.connected()]);
    // The event log (collapsed) records what the page emitted after the reconnect.
    await bob.$("#event-list li:not([data-old])", { hasText: "→ sync" }).first().waitFor({ state: "attached" });
    await bob.$("#notices .notice", { hasText: "Cannot connect" }).waitFor({ state: "detached" });

    await bob.send("back again");
    const fromBob = alice.conversation(`User #${bobId}`);
    await fromBob.locator(".badge.unread", { hasText: /^1$/ }).waitFor();
    await alice.openConversation(`User #${bobId}`);
    await alice.message("back again").waitFor();
    await bob.ticks("back again", "read");
    // Now that Bob has written to her, Alice may see that he is online.
    await alice.$("#conv-subtitle", { hasText: "online" }).waitFor();
    assert.equal(await bob.$("#notices .notice").count(), 0, "no error left on Bob's page");
  });

  it("presence: when Bob leaves, Alice sees him offline with a last-seen time", async () => {
    await alice.$("#conv-subtitle", { hasText: "online" }).waitFor();
    for (const person of [alice, bob]) {
      assert.deepEqual(person.dialogs, [], `${person.name}: dialogs`);
      assert.deepEqual(person.pageErrors, [], `${person.name}: uncaught errors`);
      assert.deepEqual(person.cspViolations, [], `${person.name}: CSP violations`);
    }
    await bob.context.close();
    await alice.$("#conv-subtitle", { hasText: "last seen" }).waitFor();
    await alice.conversation(`User #${bobId}`).locator(".dot:not(.online)").waitFor();
    await alice.screenshot("09-alice-bob-last-seen");
    assert.deepEqual([alice.dialogs, alice.pageErrors, alice.cspViolations], [[], [], []]);
  });
});
