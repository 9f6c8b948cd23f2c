// A test-owned TCP proxy that makes a good link look like a phone's: every byte is
// delayed by jitter, and connections can be dropped *silently*, the way a phone that
// leaves Wi-Fi drops them.
//
//   const proxy = await startLossyProxy({ target: server.url, jitterMs: [50, 300] });
//   io(proxy.url, …)            // clients connect to the proxy instead of the server
//   proxy.cutAll()              // every connection goes dead at once
//   proxy.setOffline(true)      // …and no new one gets through until setOffline(false)
//   proxy.startCutting(10_000)  // each connection dies ~10 s (±50 %) after it opened
//   await proxy.close()
//
// Each accepted client connection gets its own upstream connection to the target.
// Bytes in each direction are held for a random delay in [min, max] ms per chunk, in a
// per-direction queue whose release times never decrease (a chunk leaves at
// max(previous chunk's release, arrival + delay)), so each connection's byte order is
// kept and one direction never waits for more than `max` ms.
//
// What a silent cut looks like:
// - to the server: nothing. No FIN, no RST: the upstream socket stays open, and the proxy
//   stops reading it (it is paused) and stops writing to it. What the server writes
//   after the cut piles up in the kernel's buffers: on loopback the kernel still
//   acknowledges it at TCP level until the proxy's receive buffer is full (a few hundred
//   KiB), then the window closes. Nothing of it is forwarded. The server can only learn
//   that the device is gone from its own heartbeat (an Engine.IO ping that is never
//   answered). The upstream socket is destroyed `holdMs` after the cut (default: never,
//   until close()), so a hold longer than the server's heartbeat timeout leaves the
//   heartbeat as the only way the server can notice.
// - to the client: by default its socket is reset at once (`clientCut: "reset"`), as
//   when the phone's own OS sees its interface go down and fails the connection;
//   socket.io-client then reconnects with its usual back-off, through the proxy again,
//   on a fresh upstream connection. `clientCut: "hang"` instead leaves the client
//   socket open and silent too, so the client notices only by its own heartbeat.
// - bytes in flight (read from one side, not yet released to the other) are dropped;
//   they were "in the air" when the link died.
//
// While offline (setOffline(true)), new client connections are reset as soon as they
// are accepted (no upstream connection is made): the phone has no network.

import { EventEmitter } from "node:events";
import net from "node:net";

/**
 * Starts a proxy listening on 127.0.0.1 (a random port unless `port` is given) in front
 * of `target` (an http:// URL or { host, port }). Resolves to the LossyProxy.
 */
export async function startLossyProxy(options) {
  const proxy = new LossyProxy(options);
  await proxy.listen();
  return proxy;
}

let nextId = 1;

/** One client connection through the proxy, with its own upstream connection. */
class Connection {
  constructor(proxy, client) {
    this.id = nextId++;
    this.proxy = proxy;
    this.client = client;
    this.openedAt = Date.now();
    /** "open", "cut" (silently dropped) or "closed" (ended by either side, or close()). */
    this.state = "open";
    this.upstream = net.connect({ host: proxy.target.host, port: proxy.target.port, allowHalfOpen: true });
    this.upstream.setNoDelay(true);
    client.setNoDelay(true);
    this.toServer = new Lane(this, this.upstream, "up");
    this.toClient = new Lane(this, client, "down");
    this.cutTimer = null;
    this.holdTimer = null;
    this.ended = { client: false, upstream: false };

    client.on("data", (chunk) => this.toServer.push(chunk));
    this.upstream.on("data", (chunk) => this.toClient.push(chunk));
    // An ordinary end (FIN) on one side ends the other once what was queued has left.
    client.on("end", () => this.#ended("client", this.toServer));
    this.upstream.on("end", () => this.#ended("upstream", this.toClient));
    // Errors are followed by "close" with hadError set.
    client.on("error", () => {});
    this.upstream.on("error", () => {});
    client.on("close", (hadError) => this.#closed("client", hadError));
    this.upstream.on("close", (hadError) => this.#closed("upstream", hadError));
  }

  /** Drops the connection silently (see the top of the file). */
  cut() {
    if (this.state !== "open") return false;
    this.state = "cut";
    this.cutAt = Date.now();
    clearTimeout(this.cutTimer);
    clearTimeout(this.endTimer);
    const dropped = this.toServer.drop() + this.toClient.drop();
    this.proxy.stats.cuts += 1;
    this.proxy.stats.droppedBytes += dropped;
    // The server's side: stop reading, never write, never close (until the hold ends).
    this.upstream.pause();
    const hold = this.proxy.holdMs;
    if (Number.isFinite(hold)) {
      this.holdTimer = setTimeout(() => this.upstream.destroy(), hold);
      this.holdTimer.unref?.();
    }
    // The client's side: its OS noticed (reset), or it hangs until its own heartbeat.
    if (this.proxy.clientCut === "reset") this.client.resetAndDestroy();
    else this.client.pause();
    this.proxy.emit("cut", this);
    return true;
  }

  /** Closes both sides at once (clean shutdown; the server sees the connection end). */
  destroy() {
    this.state = "closed";
    clearTimeout(this.cutTimer);
    clearTimeout(this.holdTimer);
    clearTimeout(this.endTimer);
    this.toServer.drop();
    this.toClient.drop();
    this.client.destroy();
    this.upstream.destroy();
    this.proxy.connections.delete(this);
  }

  #ended(side, lane) {
    this.ended[side] = true;
    lane.pushEnd();
    // The other side normally answers with its own end; if it does not, do not linger.
    if (!this.endTimer) {
      this.endTimer = setTimeout(() => this.#hardClose(), 5_000 + this.proxy.jitterMs[1]);
      this.endTimer.unref?.();
    }
  }

  #closed(side, hadError) {
    if (this.state === "cut") {
      // The cut client socket closing is what a cut does; the held upstream closing
      // (hold over, or the server gave up on it) ends the connection's life.
      if (side === "upstream") this.#forget();
      return;
    }
    if (this.state !== "open") return;
    const other = side === "client" ? this.upstream : this.client;
    // A side that went away without a clean end (reset, error): the other goes at once.
    // After clean ends, once both sockets are closed.
    if (hadError || !this.ended[side] || other.destroyed) this.#hardClose();
  }

  #hardClose() {
    if (this.state !== "open") return;
    this.state = "closed";
    clearTimeout(this.cutTimer);
    clearTimeout(this.endTimer);
    this.toServer.drop();
    this.toClient.drop();
    this.client.destroy();
    this.upstream.destroy();
    this.#forget();
  }

  #forget() {
    clearTimeout(this.holdTimer);
    this.proxy.connections.delete(this);
  }
}

/** One direction of one connection: a queue of chunks with non-decreasing release times. */
class Lane {
  #queue = []; // { at, chunk } or { at, end: true }
  #timer = null;
  #lastRelease = 0;

  constructor(connection, to, direction) {
    this.connection = connection;
    this.to = to;
    this.direction = direction;
  }

  push(chunk) {
    if (this.connection.state !== "open") return;
    const stats = this.connection.proxy.stats;
    if (this.direction === "up") stats.bytesUp += chunk.length;
    else stats.bytesDown += chunk.length;
    this.#enqueue({ chunk });
  }

  pushEnd() {
    if (this.connection.state !== "open") return;
    this.#enqueue({ end: true });
  }

  /** Forgets everything queued; returns the number of bytes dropped. */
  drop() {
    clearTimeout(this.#timer);
    this.#timer = null;
    const bytes = this.#queue.reduce((sum, item) => sum + (item.chunk?.length ?? 0), 0);
    this.#queue = [];
    return bytes;
  }

  #enqueue(item) {
    const [min, max] = this.connection.proxy.jitterMs;
    const delay = max > 0 ? min + Math.random() * (max - min) : 0;
    item.at = Math.max(this.#lastRelease, Date.now() + delay);
    this.#lastRelease = item.at;
    this.#queue.push(item);
    if (this.#timer === null) this.#schedule();
  }

  #schedule() {
    if (this.#queue.length === 0) return;
    this.#timer = setTimeout(() => this.#release(), Math.max(0, this.#queue[0].at - Date.now()));
  }

  #release() {
    this.#timer = null;
    if (this.connection.state !== "open") return;
    const now = Date.now();
    while (this.#queue.length > 0 && this.#queue[0].at <= now) {
      const item = this.#queue.shift();
      if (item.end) this.to.end();
      else if (!this.to.destroyed) this.to.write(item.chunk);
    }
    this.#schedule();
  }
}

export class LossyProxy extends EventEmitter {
  /**
   * target: http://host:port URL or { host, port }.
   * jitterMs: [min, max] delay per chunk and direction ([0, 0]: none).
   * cutEveryMs / cutJitter: each connection is cut cutEveryMs × (1 ± cutJitter) after
   *   it opened (0: never; see startCutting).
   * holdMs: how long a cut connection's upstream socket is kept open (paused) before it
   *   is destroyed; Infinity (default) keeps it until close().
   * clientCut: "reset" (default: the client's socket is reset at the cut) or "hang".
   */
  constructor({
    target,
    port = 0,
    jitterMs = [0, 0],
    cutEveryMs = 0,
    cutJitter = 0.5,
    holdMs = Infinity,
    clientCut = "reset",
  }) {
    super();
    if (typeof target === "string") {
      const url = new URL(target);
      target = { host: url.hostname, port: Number(url.port) };
    }
    if (!["reset", "hang"].includes(clientCut)) throw new Error(`clientCut: ${clientCut}`);
    this.target = target;
    this.requestedPort = port;
    this.jitterMs = jitterMs;
    this.cutEveryMs = cutEveryMs;
    this.cutJitter = cutJitter;
    this.holdMs = holdMs;
    this.clientCut = clientCut;
    this.offline = false;
    /** Live and held (cut, upstream still open) connections. */
    this.connections = new Set();
    this.stats = { accepted: 0, refused: 0, cuts: 0, bytesUp: 0, bytesDown: 0, droppedBytes: 0 };
    this.server = net.createServer({ allowHalfOpen: true }, (client) => this.#accept(client));
  }

  listen() {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.requestedPort, "127.0.0.1", () => {
        this.port = this.server.address().port;
        this.url = `http://127.0.0.1:${this.port}`;
        resolve(this);
      });
    });
  }

  /** Connections currently forwarding (not cut). */
  get open() {
    return [...this.connections].filter((c) => c.state === "open");
  }

  /** Connections cut whose upstream socket is still held open. */
  get held() {
    return [...this.connections].filter((c) => c.state === "cut");
  }

  /** Cuts one connection silently; false if it was not open. */
  cut(connection) {
    return connection.cut();
  }

  /** Cuts every open connection silently; returns how many were cut. */
  cutAll() {
    let n = 0;
    for (const connection of this.open) if (connection.cut()) n += 1;
    return n;
  }

  /**
   * offline = true: cuts every open connection and resets new ones on accept, until
   * setOffline(false).
   */
  setOffline(offline) {
    this.offline = offline;
    if (offline) this.cutAll();
  }

  /**
   * Cuts every connection (open now or opened later) everyMs × (1 ± jitter) after it
   * opened (connections already open: counted from this call). Each connection is cut
   * once; its client's reconnection is a new connection with its own timer.
   */
  startCutting(everyMs = this.cutEveryMs, jitter = this.cutJitter) {
    this.cutEveryMs = everyMs;
    this.cutJitter = jitter;
    this.cuttingSince = Date.now();
    for (const connection of this.open) this.#scheduleCut(connection);
  }

  /** No more timed cuts (connections already cut stay cut). */
  stopCutting() {
    this.cutEveryMs = 0;
    for (const connection of this.connections) clearTimeout(connection.cutTimer);
  }

  /** Closes the listener and every connection, held ones included. */
  async close() {
    this.stopCutting();
    for (const connection of [...this.connections]) connection.destroy();
    await new Promise((resolve) => this.server.close(() => resolve()));
  }

  #accept(client) {
    if (this.offline) {
      this.stats.refused += 1;
      client.on("error", () => {});
      client.resetAndDestroy();
      return;
    }
    this.stats.accepted += 1;
    const connection = new Connection(this, client);
    this.connections.add(connection);
    this.#scheduleCut(connection);
    this.emit("connection", connection);
  }

  #scheduleCut(connection) {
    clearTimeout(connection.cutTimer);
    if (!(this.cutEveryMs > 0)) return;
    const spread = 1 + this.cutJitter * (2 * Math.random() - 1);
    // Counted from the connection's start, or from startCutting() for older ones.
    const due = Math.max(connection.openedAt, this.cuttingSince ?? 0) + this.cutEveryMs * spread;
    connection.cutTimer = setTimeout(() => connection.cut(), Math.max(0, due - Date.now()));
  }
}
