// Typing indicators: forwarded to the other member's devices (never back to the
// typer), throttled, self-expiring, ended by sending a message or by
// is_typing:false, and refused to non-members.
//
// The server runs with short TYPING_THROTTLE_MS / TYPING_TIMEOUT_MS, so every
// timing rule is observable in about a second.

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "../lib/harness.js";
import { connect, closeAll, sleep } from "../lib/client.js";

const THROTTLE_MS = 400;
const TIMEOUT_MS = 1_000;
/** How late an expiry may come before we call it missing. */
const SLACK_MS = 2_000;

let server;
before(async () => {
  server = await startServer({
    env: { TYPING_THROTTLE_MS: String(THROTTLE_MS), TYPING_TIMEOUT_MS: String(TIMEOUT_MS) },
  });
});
after(() => server?.stop());

/**
 * alice and bob, connected, with a direct conversation (alice's first message,
 * already received by bob). Extra devices are opened with `aliceDevices` /
 * `bobDevices` (default one each).
 */
async function chat({ aliceDevices = 1, bobDevices = 1 } = {}) {
  const [alice, bob] = await server.registerMany("alice", "bob");
  const aliceSockets = [];
  for (let i = 0; i < aliceDevices; i++) {
    aliceSockets.push(await connect(server, alice, { name: `alice device ${i + 1}` }));
  }
  const bobSockets = [];
  for (let i = 0; i < bobDevices; i++) {
    bobSockets.push(await connect(server, bob, { name: `bob device ${i + 1}` }));
  }
  const ack = await aliceSockets[0].request("send_message", { to_user_id: bob.id, content: "hi" });
  assert.equal(ack.status, "sent", JSON.stringify(ack));
  for (const device of bobSockets) await device.expect("new_message");
  return { alice, bob, aliceSockets, bobSockets, conversationId: ack.conversation_id };
}

describe("forwarding", () => {
  test("typing reaches every device of the other member, never the typer's own devices", async () => {
    const { alice, aliceSockets, bobSockets, conversationId } = await chat({
      aliceDevices: 2,
      bobDevices: 2,
    });
    const [alicePhone, aliceLaptop] = aliceSockets;

    alicePhone.emit("typing", { conversation_id: conversationId, is_typing: true });
    for (const device of bobSockets) {
      assert.deepEqual(
        await device.expect("typing"),
        { conversation_id: conversationId, user_id: alice.id, is_typing: true },
        device.name,
      );
    }

    // Stopping is forwarded at once (well before the indicator would expire).
    alicePhone.emit("typing", { conversation_id: conversationId, is_typing: false });
    for (const device of bobSockets) {
      assert.deepEqual(
        await device.expect("typing", { timeoutMs: TIMEOUT_MS / 2 }),
        { conversation_id: conversationId, user_id: alice.id, is_typing: false },
        device.name,
      );
    }
    await alicePhone.expectNone("typing", { withinMs: 0 });
    await aliceLaptop.expectNone("typing", { withinMs: 0 });
    for (const device of bobSockets) await device.expectNone("typing", { withinMs: 100 });
    assert.deepEqual(alicePhone.collect("error"), []);
    await closeAll(aliceSockets, bobSockets);
  });

  test("to_user_id (number or numeric string) names the direct chat with that user", async () => {
    const { alice, bob, aliceSockets, bobSockets, conversationId } = await chat();
    const [aliceSocket] = aliceSockets;
    const [bobSocket] = bobSockets;

    aliceSocket.emit("typing", { to_user_id: bob.id, is_typing: true });
    assert.deepEqual(await bobSocket.expect("typing"), {
      conversation_id: conversationId,
      user_id: alice.id,
      is_typing: true,
    });
    aliceSocket.emit("typing", { to_user_id: String(bob.id), is_typing: false });
    assert.deepEqual(await bobSocket.expect("typing", { timeoutMs: TIMEOUT_MS / 2 }), {
      conversation_id: conversationId,
      user_id: alice.id,
      is_typing: false,
    });

    // bob answers the same way; alice hears it under the same conversation id.
    bobSocket.emit("typing", { to_user_id: alice.id, is_typing: true });
    assert.deepEqual(await aliceSocket.expect("typing"), {
      conversation_id: conversationId,
      user_id: bob.id,
      is_typing: true,
    });
    await closeAll(aliceSocket, bobSocket);
  });
});

describe("timing", () => {
  test("throttle: one true per interval is forwarded, and again once the interval has passed", async () => {
    const { alice, aliceSockets, bobSockets, conversationId } = await chat();
    const [aliceSocket] = aliceSockets;
    const [bobSocket] = bobSockets;
    const typing = { conversation_id: conversationId, is_typing: true };
    const started = Date.now();

    aliceSocket.emit("typing", typing);
    aliceSocket.emit("typing", typing); // within the throttle interval
    assert.equal((await bobSocket.expect("typing")).is_typing, true);
    await bobSocket.expectNone("typing", { withinMs: THROTTLE_MS / 2 });

    // Past the interval (and still typing): forwarded again.
    await sleep(started + THROTTLE_MS + 150 - Date.now());
    const lastKeystroke = Date.now();
    aliceSocket.emit("typing", typing);
    assert.deepEqual(await bobSocket.expect("typing", { timeoutMs: TIMEOUT_MS / 2 }), {
      conversation_id: conversationId,
      user_id: alice.id,
      is_typing: true,
    });

    // Then nothing more is typed: it ends by itself, timed from the last keystroke.
    const stopped = await bobSocket.expect("typing", { timeoutMs: TIMEOUT_MS + SLACK_MS });
    const after = Date.now() - lastKeystroke;
    assert.deepEqual(stopped, { conversation_id: conversationId, user_id: alice.id, is_typing: false });
    assert.ok(after >= TIMEOUT_MS - 100, `expired ${after} ms after the last keystroke, before the ${TIMEOUT_MS} ms timeout`);
    await bobSocket.expectNone("typing", { withinMs: 200 });
    await closeAll(aliceSocket, bobSocket);
  });

  test("the throttle is per conversation: typing in two chats is forwarded to both", async () => {
    const { alice, aliceSockets, bobSockets, conversationId } = await chat();
    const [aliceSocket] = aliceSockets;
    const [bobSocket] = bobSockets;
    const carol = await server.register("carol");
    const carolSocket = await connect(server, carol);
    const ack = await aliceSocket.request("send_message", { to_user_id: carol.id, content: "hey" });
    await carolSocket.expect("new_message");

    aliceSocket.emit("typing", { conversation_id: conversationId, is_typing: true });
    aliceSocket.emit("typing", { conversation_id: ack.conversation_id, is_typing: true });
    assert.deepEqual(await bobSocket.expect("typing"), {
      conversation_id: conversationId,
      user_id: alice.id,
      is_typing: true,
    });
    assert.deepEqual(await carolSocket.expect("typing"), {
      conversation_id: ack.conversation_id,
      user_id: alice.id,
      is_typing: true,
    });
    // Each only hears about its own conversation.
    await bobSocket.expectNone("typing", { withinMs: 200 });
    await carolSocket.expectNone("typing", { withinMs: 0 });
    await closeAll(aliceSocket, bobSocket, carolSocket);
  });

  test("a throttled keystroke is still a follow-up: the indicator lasts until the timeout after it", async () => {
    const { alice, aliceSockets, bobSockets, conversationId } = await chat();
    const [aliceSocket] = aliceSockets;
    const [bobSocket] = bobSockets;
    const typing = { conversation_id: conversationId, is_typing: true };

    const started = Date.now();
    aliceSocket.emit("typing", typing);
    assert.equal((await bobSocket.expect("typing")).is_typing, true);
    await sleep(started + 300 - Date.now());
    aliceSocket.emit("typing", typing); // throttled: not forwarded, but alice is still typing
    const stopped = await bobSocket.expect("typing", { timeoutMs: TIMEOUT_MS + SLACK_MS });
    const after = Date.now() - started;
    assert.deepEqual(stopped, { conversation_id: conversationId, user_id: alice.id, is_typing: false });
    assert.ok(
      after >= 300 + TIMEOUT_MS - 100,
      `ended ${after} ms after the first keystroke, i.e. before ${TIMEOUT_MS} ms after the second (at 300 ms)`,
    );
    await closeAll(aliceSocket, bobSocket);
  });

  test("a typing:true without follow-up expires: receivers get is_typing:false after the timeout", async () => {
    const { alice, aliceSockets, bobSockets, conversationId } = await chat();
    const [aliceSocket] = aliceSockets;
    const [bobSocket] = bobSockets;

    const emitted = Date.now();
    aliceSocket.emit("typing", { conversation_id: conversationId, is_typing: true });
    assert.equal((await bobSocket.expect("typing")).is_typing, true);
    const stopped = await bobSocket.expect("typing", { timeoutMs: TIMEOUT_MS + SLACK_MS });
    const after = Date.now() - emitted;
    assert.deepEqual(stopped, { conversation_id: conversationId, user_id: alice.id, is_typing: false });
    assert.ok(after >= TIMEOUT_MS - 100, `expired after ${after} ms, before the ${TIMEOUT_MS} ms timeout`);
    await closeAll(aliceSocket, bobSocket);
  });

  test("sending a message ends the indicator at once", async () => {
    const { alice, bob, aliceSockets, bobSockets, conversationId } = await chat();
    const [aliceSocket] = aliceSockets;
    const [bobSocket] = bobSockets;

    aliceSocket.emit("typing", { conversation_id: conversationId, is_typing: true });
    assert.equal((await bobSocket.expect("typing")).is_typing, true);

    aliceSocket.emit("send_message", { to_user_id: bob.id, content: "done typing" });
    // Well before the timeout would have ended it.
    const stopped = await bobSocket.expect("typing", { timeoutMs: TIMEOUT_MS / 2 });
    assert.deepEqual(stopped, { conversation_id: conversationId, user_id: alice.id, is_typing: false });
    assert.equal((await bobSocket.expect("new_message")).content, "done typing");
    await closeAll(aliceSocket, bobSocket);
  });
});

describe("refusals", () => {
  test("a non-member using someone else's conversation_id is refused and nobody hears it", async () => {
    const { alice, aliceSockets, bobSockets, conversationId } = await chat();
    const carol = await server.register("carol");
    const carolSocket = await connect(server, carol);

    carolSocket.emit("typing", { conversation_id: conversationId, is_typing: true });
    const error = await carolSocket.expect("error");
    assert.equal(error.code, "conversation_not_found");
    assert.equal(typeof error.message, "string");

    // With an acknowledgement, the refusal also answers it.
    const answer = await carolSocket.request("typing", { conversation_id: conversationId, is_typing: true });
    assert.equal(answer?.error?.code, "conversation_not_found", JSON.stringify(answer));
    assert.equal(typeof answer.error.message, "string");
    assert.equal((await carolSocket.expect("error")).code, "conversation_not_found");

    // A conversation that does not exist, and a direct chat that does not exist, look the same.
    for (const payload of [
      { conversation_id: 987654321, is_typing: true },
      { to_user_id: alice.id, is_typing: true },
    ]) {
      const refused = await carolSocket.request("typing", payload);
      assert.equal(refused?.error?.code, "conversation_not_found", JSON.stringify(payload));
    }

    for (const device of [...aliceSockets, ...bobSockets]) {
      await device.expectNone("typing", { withinMs: 200 });
    }
    await carolSocket.expectNone("typing", { withinMs: 0 });
    await closeAll(aliceSockets, bobSockets, carolSocket);
  });

  const invalid = [
    ["neither conversation_id nor to_user_id", () => ({ is_typing: true })],
    ["both conversation_id and to_user_id", (c) => ({ conversation_id: c.conversationId, to_user_id: c.bob.id, is_typing: true })],
    ["is_typing missing", (c) => ({ conversation_id: c.conversationId })],
    ["is_typing not a boolean", (c) => ({ conversation_id: c.conversationId, is_typing: "yes" })],
    ["conversation_id not an id", () => ({ conversation_id: "abc", is_typing: true })],
    ["payload not an object", () => "typing"],
  ];
  test("malformed typing payloads are refused with invalid_payload", async () => {
    const c = await chat();
    const [aliceSocket] = c.aliceSockets;
    for (const [what, payload] of invalid) {
      const answer = await aliceSocket.request("typing", payload(c));
      assert.equal(answer?.error?.code, "invalid_payload", `${what}: ${JSON.stringify(answer)}`);
      assert.equal((await aliceSocket.expect("error")).code, "invalid_payload", what);
    }
    await c.bobSockets[0].expectNone("typing", { withinMs: 200 });
    await closeAll(c.aliceSockets, c.bobSockets);
  });
});
