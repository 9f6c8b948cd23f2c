// A private redis-server for the multi-node tests, and clusters of nodes joined over it.
//
// Each Redis is Debian's `redis-server` (RC_REDIS_SERVER overrides the path) on a free
// 127.0.0.1 port, with no persistence (`--save "" --appendonly no`) and its own `--dir`
// in a temporary directory: a Redis anyone else runs (the shared one on 6379) is never
// touched. `redis.kill()` takes it away as a crash would (SIGKILL), `redis.restart()`
// brings it back empty on the same port, so the nodes' REDIS_URL stays valid.
//
// A missing redis-server fails the run under CI=true (redisMissing() says why, and
// requireRedis() throws); elsewhere the multi-node files mark their tests skipped with
// that reason, so a run without Redis never passes as if it had tested several nodes.

import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { startCluster } from "./harness.js";

/** Path of the redis-server binary. */
export const redisBinary = process.env.RC_REDIS_SERVER ?? "/usr/bin/redis-server";

const READY_TIMEOUT_MS = 10_000;

const running = new Set();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/**
 * Why the Redis tests cannot run here (redis-server missing or not runnable), or null
 * when they can. Under CI=true a missing redis-server is not a reason to skip:
 * requireRedis() throws instead.
 */
export function redisMissing() {
  const probe = spawnSync(redisBinary, ["--version"], { encoding: "utf8" });
  if (probe.error || probe.status !== 0) {
    return `${redisBinary} is not runnable (${probe.error?.message ?? `exit ${probe.status}`}); ` +
      "apt-get install redis-server, or set RC_REDIS_SERVER";
  }
  return null;
}

/** Throws when redis-server is missing and CI=true; otherwise returns the skip reason (or null). */
export function requireRedis() {
  const missing = redisMissing();
  if (missing && process.env.CI === "true") {
    throw new Error(`CI=true: the multi-node tests need redis-server and cannot be skipped: ${missing}`);
  }
  return missing;
}

/** Starts a private redis-server on a free port; resolves to a Redis. */
export async function startRedis() {
  const dir = await mkdtemp(path.join(tmpdir(), "rc-redis-"));
  const redis = new Redis(await freePort(), dir);
  try {
    await redis.start();
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return redis;
}

/** One private redis-server process (restartable on the same port). */
class Redis {
  #child = null;
  #log = [];

  constructor(port, dir) {
    this.port = port;
    this.dir = dir;
    this.url = `redis://127.0.0.1:${port}`;
  }

  /** The last lines redis-server printed (for diagnosing failures). */
  get log() {
    return this.#log.join("");
  }

  /** True while the process runs. */
  get up() {
    return this.#child !== null;
  }

  /** Spawns redis-server and resolves once it answers PING. */
  async start() {
    if (this.#child) throw new Error("redis-server is already running");
    const child = spawn(redisBinary, [
      "--port", String(this.port),
      "--bind", "127.0.0.1",
      "--save", "",
      "--appendonly", "no",
      "--dir", this.dir,
      "--daemonize", "no",
      "--loglevel", "warning",
    ], { stdio: ["ignore", "pipe", "pipe"] });
    this.#child = child;
    running.add(child);
    const keep = (chunk) => {
      this.#log.push(chunk.toString());
      if (this.#log.length > 50) this.#log.shift();
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
    child.once("exit", () => {
      running.delete(child);
      if (this.#child === child) this.#child = null;
    });
    const spawnError = new Promise((_, reject) => child.once("error", reject));
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      const outcome = await Promise.race([
        ping(this.port).then((ok) => (ok ? "ready" : "not yet")),
        exited.then((exit) => `exited ${JSON.stringify(exit)}`),
        spawnError,
      ]).catch((err) => `could not start: ${err.message}`);
      if (outcome === "ready") return;
      if (outcome !== "not yet" || Date.now() > deadline) {
        child.kill("SIGKILL");
        throw new Error(`redis-server on port ${this.port}: ${outcome === "not yet" ? "no PONG in time" : outcome}\n${this.log}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Takes Redis away at once (SIGKILL by default: a crash, no goodbye to clients). */
  async kill(signal = "SIGKILL") {
    const child = this.#child;
    if (!child) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill(signal);
    await exited;
  }

  /** Starts redis-server again on the same port (empty: nothing was persisted). */
  async restart() {
    await this.kill();
    await this.start();
  }

  /** Stops redis-server and removes its directory. */
  async stop() {
    await this.kill();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * A private Redis and `n` nodes joined over it: one PostgreSQL database, one JWT secret,
 * REDIS_URL pointing at the Redis, NODE_ID "node-a", "node-b", … `env` goes to every node.
 * Resolves to { redis, nodes, stop() }; a node can be killed (node.terminate("SIGKILL"))
 * or restarted (node.restart()) on its own.
 */
export async function startRedisCluster(n, { env = {} } = {}) {
  const redis = await startRedis();
  let nodes;
  try {
    nodes = await startCluster(n, {
      env: { ...env, REDIS_URL: redis.url },
      envOf: (i) => ({ NODE_ID: nodeName(i) }),
    });
  } catch (err) {
    await redis.stop();
    throw err;
  }
  return {
    redis,
    nodes,
    async stop() {
      await Promise.all(nodes.map((node) => node.stop()));
      await redis.stop();
    },
  };
}

/** "node-a", "node-b", … */
export function nodeName(i) {
  return `node-${String.fromCharCode(97 + i)}`;
}

/** Resolves to true when something on `port` answers a Redis PING with +PONG. */
function ping(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    let answer = "";
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once("error", () => done(false));
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.on("data", (chunk) => {
      answer += chunk;
      if (answer.includes("\r\n")) done(answer.startsWith("+PONG"));
    });
  });
}

/** A port nothing listens on right now (the kernel's pick, released at once). */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}
