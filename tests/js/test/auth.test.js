// The Socket.IO handshake: who gets in, who is refused and with which words,
// and that both transports (websocket, long-polling with upgrade) carry chat.

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, nowSeconds, unsignedToken } from "../lib/harness.js";
import { connect, open, closeAll } from "../lib/client.js";

let server;
before(async () => {
  server = await startServer();
});
after(() => server?.stop());

/** The connect_error message the server refuses this handshake `auth` with. */
async function refusalFor(auth, opts = {}) {
  const error = await open(server, { auth, name: "intruder", ...opts }).refusal();
  return error.message;
}

describe("handshake refusals", () => {
  let alice;
  before(async () => {
    alice = await server.register("alice");
  });

  test("no auth at all is refused: authentication token missing", async () => {
    assert.equal(await refusalFor(undefined), "authentication token missing");
  });

  test("auth without a token is refused: authentication token missing", async () => {
    assert.equal(await refusalFor({}), "authentication token missing");
  });

  test("a token that is not a JWT is refused: malformed token", async () => {
    assert.equal(await refusalFor({ token: "not-a-jwt" }), "malformed token");
  });

  test("a token signed with another secret is refused: invalid token signature", async () => {
    const forged = server.token({ sub: String(alice.id) }, { secret: "x".repeat(40) });
    assert.equal(await refusalFor({ token: forged }), "invalid token signature");
  });

  test("an expired token is refused: token expired", async () => {
    const expired = server.token({ sub: String(alice.id), exp: nowSeconds() - 3600 });
    assert.equal(await refusalFor({ token: expired }), "token expired");
  });

  test("an unsigned alg:none token is refused: unsupported token algorithm", async () => {
    const unsigned = unsignedToken({ sub: String(alice.id), exp: nowSeconds() + 3600 });
    assert.equal(await refusalFor({ token: unsigned }), "unsupported token algorithm");
  });

  test("an HS512 token, even with the right secret, is refused: unsupported token algorithm", async () => {
    const hs512 = server.token({ sub: String(alice.id) }, { algorithm: "HS512" });
    assert.equal(await refusalFor({ token: hs512 }), "unsupported token algorithm");
  });

  test("a token without any user id claim is refused: token has no user id", async () => {
    assert.equal(await refusalFor({ token: server.token({}) }), "token has no user id");
  });

  test("a token whose sub is not a number is refused: token has no user id", async () => {
    const token = server.token({ sub: "alice" });
    assert.equal(await refusalFor({ token }), "token has no user id");
  });

  test("a valid token for a user that does not exist is refused: user not found", async () => {
    assert.equal(await refusalFor({ token: server.token({ sub: "987654321" }) }), "user not found");
  });

  test("a seed-style user_id token for a user that does not exist is refused: user not found", async () => {
    const token = server.token({ user_id: 987654321 });
    assert.equal(await refusalFor({ token }), "user not found");
  });

  test("a token without exp is refused", async () => {
    const token = server.token({ sub: String(alice.id), exp: undefined });
    const message = await refusalFor({ token });
    assert.equal(typeof message, "string");
    assert.ok(message.length > 0, "the refusal says why");
  });

  test("a refusal over long-polling says the same words: token expired", async () => {
    const expired = server.token({ sub: String(alice.id), exp: nowSeconds() - 3600 });
    const message = await refusalFor({ token: expired }, { transports: ["polling", "websocket"] });
    assert.equal(message, "token expired");
  });

  test("a refused socket is not registered as the user's device", async () => {
    const [sender, bob] = await server.registerMany("sender", "bob");
    const senderSocket = await connect(server, sender);
    // Bob's identity, but with tokens the server must refuse.
    const expired = server.token({ sub: String(bob.id), exp: nowSeconds() - 3600 });
    const forged = server.token({ sub: String(bob.id) }, { secret: "y".repeat(40) });
    assert.equal(await refusalFor({ token: expired }), "token expired");
    assert.equal(await refusalFor({ token: forged }), "invalid token signature");

    senderSocket.emit("send_message", { to_user_id: bob.id, content: "are you there?" });
    const sent = await senderSocket.expect("message_sent");
    // Nobody of bob's is online, so the message must wait in the queue...
    await senderSocket.expectNone("message_delivered");

    // ...and reach bob when he really connects.
    const bobSocket = await connect(server, bob);
    const received = await bobSocket.expect("new_message");
    assert.equal(received.message_id, sent.message_id);
    assert.equal(received.content, "are you there?");
    await closeAll(senderSocket, bobSocket);
  });
});

describe("successful handshake", () => {
  test("the token from registration connects and the server says authenticated", async () => {
    const alice = await server.register("alice");
    const socket = await connect(server, alice);
    const hello = await socket.expect("authenticated");
    assert.equal(hello.user_id, alice.id);
    assert.equal(typeof hello.message, "string");
    await socket.close();
  });

  test("a token with the user id in sub connects as that user", async () => {
    const alice = await server.register("alice");
    const socket = await connect(server, { token: server.token({ sub: String(alice.id) }) });
    assert.equal((await socket.expect("authenticated")).user_id, alice.id);
    await socket.close();
  });

  test("a seed-style token with a numeric user_id claim connects as that user", async () => {
    const alice = await server.register("alice");
    const socket = await connect(server, { token: server.token({ user_id: alice.id }) });
    assert.equal((await socket.expect("authenticated")).user_id, alice.id);
    await socket.close();
  });
});

describe("transports", () => {
  let alice;
  let bob;
  before(async () => {
    [alice, bob] = await server.registerMany("alice", "bob");
  });

  test("websocket only: connects on websocket and carries messages", async () => {
    const aliceSocket = await connect(server, alice, { transports: ["websocket"] });
    const bobSocket = await connect(server, bob, { transports: ["websocket"] });
    assert.equal(aliceSocket.transport, "websocket");

    aliceSocket.emit("send_message", { to_user_id: bob.id, content: "over websocket" });
    const sent = await aliceSocket.expect("message_sent");
    const received = await bobSocket.expect("new_message");
    assert.equal(received.message_id, sent.message_id);
    assert.equal(received.content, "over websocket");
    await closeAll(aliceSocket, bobSocket);
  });

  test("long-polling upgrades to websocket and then carries messages both ways", async () => {
    const aliceClient = open(server, {
      auth: { token: alice.token },
      transports: ["polling", "websocket"],
      name: "alice (polling)",
    });
    assert.equal(aliceClient.transport, "polling", "the handshake starts on long-polling");
    await aliceClient.ready();
    await aliceClient.upgraded();
    assert.equal(aliceClient.transport, "websocket");

    const bobSocket = await connect(server, bob);
    aliceClient.emit("send_message", { to_user_id: bob.id, content: "after upgrade" });
    const sent = await aliceClient.expect("message_sent");
    assert.equal((await bobSocket.expect("new_message")).message_id, sent.message_id);
    assert.equal((await aliceClient.expect("message_delivered")).message_id, sent.message_id);

    bobSocket.emit("send_message", { to_user_id: alice.id, content: "reply" });
    const reply = await aliceClient.expect("new_message");
    assert.equal(reply.content, "reply");
    assert.equal(reply.from_user_id, bob.id);
    await closeAll(aliceClient, bobSocket);
  });

  test("long-polling without upgrade carries messages both ways", async () => {
    const aliceClient = await connect(server, alice, { transports: ["polling"] });
    assert.equal(aliceClient.transport, "polling");
    const bobSocket = await connect(server, bob);

    aliceClient.emit("send_message", { to_user_id: bob.id, content: "over polling" });
    const sent = await aliceClient.expect("message_sent");
    assert.equal((await bobSocket.expect("new_message")).message_id, sent.message_id);

    bobSocket.emit("send_message", { to_user_id: alice.id, content: "polled reply" });
    assert.equal((await aliceClient.expect("new_message")).content, "polled reply");
    assert.equal(aliceClient.transport, "polling");
    await closeAll(aliceClient, bobSocket);
  });
});
