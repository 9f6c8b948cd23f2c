// A thin wrapper over the unmodified npm socket.io-client, so tests read like
// the protocol: `alice.emit("send_message", …)`, `await bob.expect("new_message")`.
//
// Every event the server sends is recorded from the moment the socket is
// created (before it connects), because the server may emit queued messages
// before or after `authenticated`: nothing can slip past a listener attached
// too late. `expect` hands out recorded events of one name in arrival order.

import assert from "node:assert/strict";
import { io } from "socket.io-client";

/** How long `expect` waits by default. */
export const DEFAULT_TIMEOUT_MS = 5_000;

/**
 * Opens a socket for `user` (an object with a `token`, as returned by
 * server.register) and resolves once the server has authenticated it.
 * opts.transports defaults to websocket only; opts.name labels failures.
 */
export async function connect(server, user, opts = {}) {
  const client = open(server, { auth: { token: user.token }, name: user.display_name, ...opts });
  await client.ready();
  return client;
}

/**
 * Starts connecting with the given handshake `auth` (omit it to send none) and
 * returns at once; use client.ready() or client.refusal() to learn the outcome.
 */
export function open(server, { auth, transports = ["websocket"], name = "client", ...rest } = {}) {
  const socket = io(server.url, {
    ...(auth === undefined ? {} : { auth }),
    transports,
    forceNew: true,
    reconnection: false,
    autoConnect: false,
    timeout: DEFAULT_TIMEOUT_MS,
    ...rest,
  });
  const client = new Client(socket, name);
  socket.connect();
  return client;
}

/** One connected (or connecting) Socket.IO client. */
export class Client {
  #received = new Map(); // event name -> payloads, in arrival order
  #consumed = new Map(); // event name -> how many `expect` has handed out
  #waiters = new Set();
  #outcome;
  #unproven = false; // a new_message arrived since the last heartbeat ping

  constructor(socket, name) {
    this.socket = socket;
    this.name = name;
    socket.onAny((event, payload) => this.#record(event, payload));
    // Engine packets in arrival order (Socket.IO events are dispatched a tick later): a
    // ping after a message means its pong, sent at once, proves the message arrived.
    socket.io.on("open", () => {
      socket.io.engine.on("packet", ({ type, data }) => {
        if (type === "message" && String(data).includes('["new_message"')) this.#unproven = true;
        if (type === "ping") this.#unproven = false;
      });
    });
    this.#outcome = new Promise((resolve) => {
      socket.once("connect", () => resolve({ connected: true }));
      socket.once("connect_error", (error) => resolve({ connected: false, error }));
    });
    this.#outcome.catch(() => {});
  }

  /** Resolves when the server has accepted the socket and said `authenticated`. */
  async ready({ timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
    const outcome = await withTimeout(this.#outcome, timeoutMs, `${this.name}: no connect`);
    if (!outcome.connected) {
      throw new Error(`${this.name}: connection refused: ${outcome.error.message}`);
    }
    await this.#nth("authenticated", 0, timeoutMs);
  }

  /** Resolves to the connect_error the server refused this socket with. */
  async refusal({ timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
    const outcome = await withTimeout(this.#outcome, timeoutMs, `${this.name}: no connect_error`);
    if (outcome.connected) {
      this.close();
      throw new Error(`${this.name}: expected the connection to be refused, but it connected`);
    }
    return outcome.error;
  }

  /** The engine.io transport in use: "polling" or "websocket". */
  get transport() {
    return this.socket.io.engine?.transport?.name;
  }

  /** Emits an event with the given arguments, exactly as a client app would. */
  emit(event, ...args) {
    this.socket.emit(event, ...args);
  }

  /**
   * Emits `event` with an acknowledgement callback (socket.io-client's
   * `emitWithAck`) and resolves to the server's answer; rejects if none comes
   * within `timeoutMs`.
   */
  async request(event, payload, { timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
    try {
      return await this.socket.timeout(timeoutMs).emitWithAck(event, payload);
    } catch (error) {
      throw new Error(`${this.name}: no acknowledgement for "${event}" within ${timeoutMs} ms ` +
        `(${error.message}); received so far: ${this.#summary()}`);
    }
  }

  /** The next not-yet-expected `event` payload, waiting for it if need be. */
  expect(event, { timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
    const index = this.#consumed.get(event) ?? 0;
    this.#consumed.set(event, index + 1);
    return this.#nth(event, index, timeoutMs).catch((error) => {
      // Give the slot back, so one missing event does not shift later expects.
      if (this.#consumed.get(event) === index + 1) this.#consumed.set(event, index);
      throw error;
    });
  }

  /** The next `count` not-yet-expected `event` payloads, in arrival order. */
  async expectMany(event, count, { timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
    const first = this.#consumed.get(event) ?? 0;
    this.#consumed.set(event, first + count);
    if (count > 0) await this.#nth(event, first + count - 1, timeoutMs);
    return this.#list(event).slice(first, first + count);
  }

  /** The first `event` payload (received already or later) that `matches`. */
  until(event, matches, { timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
    const list = this.#list(event);
    return withTimeout(
      new Promise((resolve) => {
        const check = () => {
          const found = list.find(matches);
          if (found === undefined) return false;
          this.#waiters.delete(check);
          resolve(found);
          return true;
        };
        if (!check()) this.#waiters.add(check);
      }),
      timeoutMs,
      `${this.name}: no matching "${event}" within ${timeoutMs} ms`,
    );
  }

  /** Every `event` payload received so far (a live array, consumed or not). */
  collect(event) {
    return this.#list(event);
  }

  /** Asserts that no further `event` arrives within `withinMs`. */
  async expectNone(event, { withinMs = 400 } = {}) {
    await sleep(withinMs);
    const unexpected = this.#list(event).slice(this.#consumed.get(event) ?? 0);
    assert.deepEqual(unexpected, [], `${this.name}: expected no "${event}", got some`);
  }

  /** Resolves once the engine has upgraded from long-polling to websocket. */
  upgraded({ timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
    if (this.transport === "websocket") return Promise.resolve();
    const engine = this.socket.io.engine;
    return withTimeout(
      new Promise((resolve) => engine.once("upgrade", () => resolve())),
      timeoutMs,
      `${this.name}: transport was not upgraded to websocket`,
    );
  }

  /**
   * Disconnects and waits until the server has seen it go. A message counts as delivered
   * only once the server's next heartbeat ping is answered (docs/PROTOCOL.md, "Delivery
   * guarantee"); like an app that lingers a moment, wait for that ping first, so that
   * what this client got is not handed to it again on its next connect.
   */
  async close() {
    if (this.socket.connected && this.#unproven) {
      await withTimeout(
        new Promise((resolve) => this.socket.io.once("ping", resolve)),
        2_000,
        "no ping",
      ).catch(() => {});
    }
    if (this.socket.connected) {
      const gone = new Promise((resolve) => this.socket.once("disconnect", resolve));
      this.socket.disconnect();
      await gone;
      // The server learns of the disconnect asynchronously; give it a moment
      // so a following "recipient is offline" step really is offline.
      await sleep(100);
    } else {
      this.socket.disconnect();
    }
  }

  #list(event) {
    let list = this.#received.get(event);
    if (!list) this.#received.set(event, (list = []));
    return list;
  }

  #record(event, payload) {
    this.#list(event).push(payload);
    for (const waiter of this.#waiters) waiter();
  }

  #nth(event, index, timeoutMs) {
    const list = this.#list(event);
    if (index < list.length) return Promise.resolve(list[index]);
    return new Promise((resolve, reject) => {
      const check = () => {
        if (index < list.length) {
          done();
          resolve(list[index]);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.name}: expected "${event}" #${index + 1} within ${timeoutMs} ms; ` +
          `received so far: ${this.#summary()}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
    });
  }

  #summary() {
    const parts = [...this.#received].map(([event, list]) => `${event}×${list.length}`);
    const last = [...this.#received.values()].flat().slice(-1)[0];
    return `${parts.join(", ") || "nothing"}${last ? `; last: ${JSON.stringify(last).slice(0, 200)}` : ""}`;
  }
}

/** Closes every given client (ignores ones already closed). */
export async function closeAll(...clients) {
  await Promise.all(clients.flat().filter(Boolean).map((client) => client.close()));
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function withTimeout(promise, ms, message) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
