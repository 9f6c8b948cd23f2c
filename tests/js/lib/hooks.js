// A push-hook receiver for tests: a plain Node HTTP server on a free port that checks
// every hook's signature (HMAC-SHA256 over `timestamp + "." + body`, in
// X-RC-Signature: t=…,v1=…) and timestamp as an operator's bridge would, records what
// came, and answers what the test tells it to (200 by default).

import assert from "node:assert/strict";
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";

/** How old a hook's timestamp may be before the receiver calls it a replay. */
const TOLERANCE_S = 300;

/**
 * Starts a receiver. `answer(hook)` returns the status to answer (and optionally
 * { status, headers }); default 200. Resolves to a HookReceiver.
 */
export async function startReceiver({ answer = () => 200 } = {}) {
  const receiver = new HookReceiver(randomBytes(32).toString("hex"), answer);
  await receiver.listen();
  return receiver;
}

class HookReceiver {
  #server;
  #waiters = new Set();

  constructor(secret, answer) {
    this.secret = secret;
    this.answer = answer;
    /** Every hook received, in arrival order: { at, headers, raw, body, delivery, attempt, status }. */
    this.hooks = [];
  }

  async listen() {
    this.#server = createServer((req, res) => {
      const chunks = [];
      req.on("data", (c) => chunks.push(c));
      req.on("end", () => {
        const raw = Buffer.concat(chunks).toString("utf8");
        const hook = {
          at: Date.now(),
          method: req.method,
          headers: req.headers,
          raw,
          body: JSON.parse(raw),
          delivery: req.headers["x-rc-delivery"],
          attempt: Number(req.headers["x-rc-attempt"]),
          problem: this.#check(req.headers, raw),
        };
        let planned = this.answer(hook);
        if (typeof planned === "number") planned = { status: planned };
        hook.status = planned.status;
        res.writeHead(planned.status, { "content-type": "text/plain", ...(planned.headers ?? {}) });
        res.end("ok");
        this.hooks.push(hook);
        for (const waiter of this.#waiters) waiter();
      });
    });
    await new Promise((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${this.#server.address().port}/hooks`;
  }

  /** Why a hook would be refused by a careful receiver (null: it is ours and fresh). */
  #check(headers, raw) {
    const signature = headers["x-rc-signature"] ?? "";
    const timestamp = headers["x-rc-timestamp"];
    const parts = Object.fromEntries(signature.split(",").map((p) => p.split("=", 2)));
    if (parts.t !== timestamp) return `signature t=${parts.t} is not X-RC-Timestamp ${timestamp}`;
    if (Math.abs(Date.now() / 1000 - Number(timestamp)) > TOLERANCE_S) return `stale timestamp ${timestamp}`;
    const expected = createHmac("sha256", this.secret).update(`${timestamp}.${raw}`).digest();
    const given = Buffer.from(parts.v1 ?? "", "hex");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return "bad signature";
    return null;
  }

  /** The server environment that points hooks here. */
  env(extra = {}) {
    return { PUSH_WEBHOOK_URL: this.url, PUSH_WEBHOOK_SECRET: this.secret, ...extra };
  }

  /** Hooks received so far for `userId`. */
  for(userId) {
    return this.hooks.filter((h) => h.body.user_id === userId);
  }

  /**
   * Resolves to the `n`-th (0-based) hook matching `match`, waiting up to `timeoutMs`.
   * Every hook handed out must carry a valid signature and fresh timestamp.
   */
  async nth(match, n = 0, { timeoutMs = 10_000, what = "hook" } = {}) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.hooks.filter(match);
      if (found.length > n) {
        const hook = found[n];
        assert.equal(hook.problem, null, `${what}: ${hook.problem}`);
        return hook;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`${what}: not received within ${timeoutMs} ms; received: ${JSON.stringify(this.hooks.map((h) => h.body))}`);
      }
      await new Promise((resolve) => {
        const wake = () => {
          this.#waiters.delete(wake);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.#waiters.add(wake);
      });
    }
  }

  /** The first hook for message `messageId` to user `userId`. */
  forMessage(userId, messageId, opts = {}) {
    return this.nth((h) => h.body.user_id === userId && h.body.message_id === messageId, 0, {
      what: `hook for message ${messageId} to user ${userId}`,
      ...opts,
    });
  }

  close() {
    return new Promise((resolve) => this.#server.close(resolve));
  }
}
