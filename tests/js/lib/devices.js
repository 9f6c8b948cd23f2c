// Clients that outlive a node: what the multi-node tests use to count sent against
// received when nodes die or Redis goes away.
//
// - Device: a receiving app following docs/PROTOCOL.md's client recipe 2. It tracks the
//   highest gap-free `seq` per conversation, calls `sync` from it on every (re)connect
//   and whenever a live `new_message` skips a seq, and keeps every arrival (live or by
//   sync) so a test can count copies. `moveTo(node)` reconnects it to another node, as
//   a load balancer sends a client whose node died to a survivor. A device made with
//   { recipe: false } only listens to `new_message` (the seed's clients): what it gets
//   is what the server handed it by itself.
// - Sender: sends numbered messages, each with its own client_msg_id, keeping a window
//   in flight; a send cut off by a dying connection stays "unanswered", and
//   `resendUnanswered()` sends exactly those again, in order and with the same
//   client_msg_id, over whatever socket the sender has now.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { connect } from "./client.js";

// One clock for every arrival and send in this process (event-loop order).
let tick = 0;
/** A process-wide counter: "this happened before that" without wall clocks. */
export const stamp = () => ++tick;

/** A receiving device following the client recipe (or not, with recipe: false). */
export class Device {
  constructor(user, { name = user.display_name, recipe = true } = {}) {
    this.user = user;
    this.name = name;
    this.recipe = recipe;
    this.client = null;
    this.node = null;
    this.arrivals = []; // { id, conversation_id, seq, from, content, via, at, connection }
    this.connections = 0;
    this.conflicts = []; // one seq of one conversation seen with two message ids
    this.syncFailures = [];
    this.#known = new Map(); // conversation id -> Map(seq -> message)
    this.#contig = new Map(); // conversation id -> highest gap-free seq
  }

  #known;
  #contig;
  #syncing = null;
  #syncAgain = false;

  /** Connects (or reconnects) the device to `node`; resolves once authenticated and, with the recipe, synced. */
  async moveTo(node) {
    if (this.client?.socket.connected) this.client.socket.disconnect();
    this.connections += 1;
    const connection = this.connections;
    this.node = node;
    const client = await connect(node, this.user, { name: `${this.name} (${connection}: ${node.url})` });
    this.client = client;
    client.socket.on("new_message", (m) => this.#arrive(m, "live", connection));
    // Messages recorded before the listener (the offline queue can precede `authenticated`).
    for (const m of client.collect("new_message")) this.#arrive(m, "live", connection);
    if (this.recipe) await this.sync();
    return client;
  }

  /** Tells the device of a conversation it should keep (an app knows its conversation list). */
  watch(conversationId) {
    if (!this.#known.has(conversationId)) {
      this.#known.set(conversationId, new Map());
      this.#contig.set(conversationId, 0);
    }
  }

  /** True once message `id` arrived (by any way). */
  has(id) {
    return this.arrivals.some((a) => a.id === id);
  }

  /** The device's messages of a conversation by seq (first arrival of each). */
  messages(conversationId) {
    return [...(this.#known.get(conversationId)?.values() ?? [])].sort((x, y) => x.seq - y.seq);
  }

  /**
   * Messages the server handed again as `new_message` after the device already had
   * them (live, offline queue or sync): [{ id, seq, via, at }]. A `sync` answer
   * overlapping what arrived live is the client's own asking, not counted.
   */
  copies() {
    const seen = new Set();
    const copies = [];
    for (const a of this.arrivals) {
      if (seen.has(a.id) && a.via === "live") copies.push(a);
      seen.add(a.id);
    }
    return copies;
  }

  /** Resolves once every id in `ids` has arrived (waiting up to timeoutMs). */
  async awaitAll(ids, { timeoutMs = 15_000 } = {}) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const missing = ids.filter((id) => !this.has(id));
      if (missing.length === 0) return;
      if (Date.now() > deadline) {
        const raw = this.client?.collect("new_message") ?? [];
        assert.fail(`${this.name}: ${missing.length} of ${ids.length} messages never arrived ` +
          `(first missing: ${missing.slice(0, 5).join(", ")}); ${this.arrivals.length} arrivals ` +
          `(the socket of connection ${this.connections}, ${this.client?.socket.connected ? "connected" : "disconnected"}, ` +
          `got ${raw.length} new_message: ${raw.slice(-3).map((m) => m.message_id).join(", ")}), ` +
          `sync failures: ${JSON.stringify(this.syncFailures.slice(0, 3))}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  #arrive(m, via, connection) {
    this.arrivals.push({
      id: m.message_id, conversation_id: m.conversation_id, seq: m.seq, from: m.from_user_id,
      content: m.content, via, at: stamp(), connection,
    });
    this.watch(m.conversation_id);
    const bySeq = this.#known.get(m.conversation_id);
    const known = bySeq.get(m.seq);
    if (known && known.message_id !== m.message_id) this.conflicts.push([known, m]);
    if (!known) bySeq.set(m.seq, m);
    let contig = this.#contig.get(m.conversation_id);
    while (bySeq.has(contig + 1)) contig += 1;
    this.#contig.set(m.conversation_id, contig);
    if (this.recipe && via === "live" && m.seq > contig + 1) this.sync();
  }

  /** Calls `sync` from the gap-free position of every known conversation until nothing is missing. */
  sync() {
    if (this.#syncing) {
      this.#syncAgain = true;
      return this.#syncing;
    }
    this.#syncing = (async () => {
      try {
        do {
          this.#syncAgain = false;
          await this.#syncOnce();
        } while (this.#syncAgain);
      } finally {
        this.#syncing = null;
      }
    })();
    return this.#syncing;
  }

  async #syncOnce() {
    const client = this.client;
    const connection = this.connections;
    for (;;) {
      if (this.#known.size === 0 || !client.socket.connected) return;
      const since = [...this.#contig].map(([conversation_id, after_seq]) => ({ conversation_id, after_seq }));
      let answer;
      try {
        answer = await client.socket.timeout(5_000).emitWithAck("sync", { since });
      } catch (err) {
        this.syncFailures.push(err.message); // cut off: the next connect syncs again
        return;
      }
      if (!Array.isArray(answer?.messages)) {
        this.syncFailures.push(answer);
        return;
      }
      for (const m of answer.messages) this.#arrive(m, "sync", connection);
      if (!answer.has_more) return;
    }
  }
}

/**
 * Sends `${label} #i` messages to `target` ({ to_user_id } or { conversation_id }),
 * each with its own client_msg_id, WINDOW in flight, over `sender.client`.
 */
export class Sender {
  constructor(user, target, label, { window = 4, ackTimeoutMs = 10_000 } = {}) {
    this.user = user;
    this.target = target;
    this.label = label;
    this.window = window;
    this.ackTimeoutMs = ackTimeoutMs;
    this.client = null;
    this.sends = []; // { i, payload, ack (or null), error, at, answeredAt }
    this.refusals = []; // answers that were not `sent`
  }

  /** Acknowledged sends, in sending order. */
  get acked() {
    return this.sends.filter((s) => s.ack?.status === "sent");
  }

  /** Sends without an acknowledgement (cut off or timed out). */
  get unanswered() {
    return this.sends.filter((s) => !s.ack);
  }

  /**
   * Keeps sending new messages until `shouldStop()` is true or the socket goes; resolves
   * once every send in flight has been answered or cut off.
   */
  async run(shouldStop, { paceMs = 0 } = {}) {
    const lane = async () => {
      while (!shouldStop() && this.client.socket.connected) {
        await this.#send(this.#next());
        if (paceMs) await new Promise((r) => setTimeout(r, paceMs));
      }
    };
    await Promise.all(Array.from({ length: this.window }, lane));
  }

  /** Sends `count` new messages (window in flight); resolves when all are answered or cut off. */
  async sendCount(count) {
    const items = Array.from({ length: count }, () => this.#next());
    let k = 0;
    const lane = async () => {
      while (k < items.length) await this.#send(items[k++]);
    };
    await Promise.all(Array.from({ length: this.window }, lane));
    return items;
  }

  /** Sends every unanswered message again, in order, with its client_msg_id; asserts each is acknowledged. */
  async resendUnanswered() {
    const again = this.unanswered;
    let k = 0;
    const lane = async () => {
      while (k < again.length) await this.#send(again[k++]);
    };
    await Promise.all(Array.from({ length: this.window }, lane));
    for (const s of again) {
      assert.equal(s.ack?.status, "sent", `${this.label} resend of #${s.i}: ${JSON.stringify(s.ack ?? s.error)}`);
    }
    return again;
  }

  #next() {
    const i = this.sends.length;
    const item = {
      i,
      payload: { ...this.target, content: `${this.label} #${i}`, client_msg_id: randomUUID() },
      ack: null,
      error: null,
      at: null,
      tries: 0,
    };
    this.sends.push(item);
    return item;
  }

  async #send(item) {
    item.at = stamp();
    item.tries += 1;
    try {
      const ack = await this.client.socket.timeout(this.ackTimeoutMs).emitWithAck("send_message", item.payload);
      if (ack?.status === "sent") {
        item.ack = ack;
        item.error = null;
      } else {
        item.error = ack;
        this.refusals.push({ i: item.i, answer: ack });
      }
    } catch (err) {
      item.error = err.message; // cut off with the connection, or no answer in time
    }
    item.answeredAt = stamp();
  }
}
