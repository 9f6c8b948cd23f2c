// Starts the real realtime-chat binary against a fresh database and gives the
// tests what they need to talk to it: its URL, a REST helper, registered users
// and tokens minted with the server's own JWT secret.
//
// Backend: SQLite in a fresh temporary directory, or, when TEST_DATABASE_URL is
// set, a freshly created PostgreSQL database that is dropped afterwards. An
// unreachable Postgres is an error (the test fails), never a silent skip.
//
// startCluster(n) starts n servers ("nodes") on one shared PostgreSQL database with
// one JWT secret, as several nodes of one deployment run; lib/redis.js joins them over
// a private Redis (startRedisCluster). A node can be killed (terminate("SIGKILL")) and
// started again on its port (restart()).

import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import jwt from "jsonwebtoken";
import pg from "pg";
import { captureStderr, serverBinary, stopProcess, waitUntilListening } from "../../lib/server-process.mjs";

export { serverBinary };

/** An ISO-8601 UTC timestamp, as every timestamp on the wire must be. */
export const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

/** "postgres" when TEST_DATABASE_URL is set, otherwise "sqlite". */
export const backend = process.env.TEST_DATABASE_URL ? "postgres" : "sqlite";

const running = new Set();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/**
 * Starts a server on a random port with a fresh database.
 * `env` adds or overrides server environment variables (e.g. MAX_MESSAGE_BYTES).
 */
export async function startServer({ env = {} } = {}) {
  return spawnServer({ database: await freshDatabase(), secret: newSecret(), env });
}

/**
 * Starts `n` servers (nodes) on ONE fresh PostgreSQL database, sharing one JWT secret
 * (a token from one node is valid on every other), each on its own random port.
 * Resolves to n Server objects; the database is dropped when the last of them stops.
 * `env` is given to every node, `envOf(i)` adds node i's own (e.g. NODE_ID).
 * PostgreSQL only (TEST_DATABASE_URL): several nodes sharing storage is PostgreSQL's job.
 */
export async function startCluster(n, { env = {}, envOf = () => ({}) } = {}) {
  if (backend !== "postgres") {
    throw new Error("startCluster: several nodes share one PostgreSQL database; set TEST_DATABASE_URL");
  }
  const handles = sharedDrop(await freshDatabase(), n);
  const secret = newSecret();
  const start = (database, i) => spawnServer({ database, secret, env: { ...env, ...envOf(i) } });
  // The first node applies the migrations alone; the others find the schema in place.
  // (Nodes migrating one fresh database at once race: one of them exits with a
  // duplicate-key error on pg_type, as `realtime-chat migrate` run twice at once does.)
  const first = await Promise.allSettled([start(handles[0], 0)]);
  const rest = first[0].status === "fulfilled"
    ? await Promise.allSettled(handles.slice(1).map((handle, i) => start(handle, i + 1)))
    : [];
  const results = [...first, ...rest];
  const failed = results.find((r) => r.status === "rejected");
  if (failed) {
    await Promise.all(results.filter((r) => r.status === "fulfilled").map((r) => r.value.stop()));
    await Promise.all(handles.map((handle) => handle.drop()));
    throw failed.reason;
  }
  return results.map((r) => r.value);
}

function newSecret() {
  return randomBytes(32).toString("hex");
}

/** n handles on `database`, each dropping at most once; the last drop really drops it. */
function sharedDrop(database, n) {
  let left = n;
  return Array.from({ length: n }, () => {
    let dropped = false;
    return {
      ...database,
      async drop() {
        if (dropped) return;
        dropped = true;
        if (--left === 0) await database.drop();
      },
    };
  });
}

/** Spawns `realtime-chat serve` on `database`; drops it if the server does not start. */
async function spawnServer({ database, secret, env }) {
  let started;
  try {
    started = await spawnProcess({ database, secret, env, port: 0 });
  } catch (err) {
    await database.drop();
    throw err;
  }
  return new Server({ ...started, secret, database, env });
}

/** Spawns the binary on `port` (0: any) and resolves to { child, port, log } once it listens. */
async function spawnProcess({ database, secret, env, port }) {
  const child = spawn(serverBinary, ["serve"], {
    // A scratch working directory, so no .env from the repository is read.
    cwd: database.workDir,
    env: {
      ...process.env,
      DATABASE_URL: database.url,
      JWT_SECRET: secret,
      HOST: "127.0.0.1",
      PORT: String(port),
      RUST_LOG: process.env.RC_RUST_LOG ?? "warn",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  const log = captureStderr(child);
  try {
    return { child, port: await waitUntilListening(child, log), log };
  } catch (err) {
    child.kill("SIGKILL");
    running.delete(child);
    throw err;
  }
}

/** A running server under test. */
class Server {
  #child;
  #database;
  #env;
  #log;
  #users = 0;

  constructor({ child, port, secret, database, env, log }) {
    this.#child = child;
    this.#database = database;
    this.#env = env;
    this.#log = log;
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.secret = secret;
    this.databaseUrl = database.url;
  }

  /** The last lines the server wrote to stderr (for diagnosing failures). */
  get log() {
    return this.#log.lines.join("\n");
  }

  /**
   * Sends one HTTP request. `json` is sent as a JSON body, `body` verbatim.
   * Resolves to { status, body (parsed JSON or null), text, headers }.
   */
  async http(method, urlPath, { token, json, body, headers = {} } = {}) {
    const init = { method, headers: { ...headers } };
    if (token !== undefined) init.headers.authorization = `Bearer ${token}`;
    if (json !== undefined) {
      init.headers["content-type"] = "application/json";
      init.body = JSON.stringify(json);
    } else if (body !== undefined) {
      init.body = body;
    }
    const res = await fetch(this.url + urlPath, init);
    const text = await res.text();
    let parsed = null;
    try {
      parsed = JSON.parse(text);
    } catch {
      // Not JSON: tests that care look at `text`.
    }
    return { status: res.status, body: parsed, text, headers: res.headers };
  }

  /**
   * Registers a new user with a unique e-mail through the public REST API.
   * Resolves to { id, email, password, display_name, created_at, token }.
   */
  async register(label = "user") {
    const n = ++this.#users;
    const email = `${label}-${n}-${randomBytes(4).toString("hex")}@example.com`;
    const password = `pw-${randomBytes(6).toString("hex")}`;
    let res;
    for (;;) {
      res = await this.http("POST", "/api/auth/register", {
        json: { email, password, display_name: `${label} ${n}` },
      });
      // Password hashing is bounded (HASH_CONCURRENCY/HASH_QUEUE): tests that register
      // dozens of users at once wait as a well-behaved client would.
      if (res.status !== 503) break;
      await new Promise((r) => setTimeout(r, 1000 * Number(res.headers.get("retry-after") ?? 1)));
    }
    if (res.status !== 201) {
      throw new Error(`set-up: registering ${email} gave ${res.status} ${res.text}`);
    }
    return { ...res.body.user, password, token: res.body.token };
  }

  /** Registers several users at once: registerMany("alice", "bob"). */
  registerMany(...labels) {
    return Promise.all(labels.map((label) => this.register(label)));
  }

  /**
   * Mints an HS256 token with this server's secret. `claims` are used as given
   * (e.g. { sub: "5" } or the seed's { user_id: 5 }); `exp` defaults to an hour
   * from now unless `exp` is given (pass exp: undefined explicitly to omit it).
   */
  token(claims, { secret = this.secret, algorithm = "HS256" } = {}) {
    const payload = { ...claims };
    if (!("exp" in claims)) payload.exp = nowSeconds() + 3600;
    if (payload.exp === undefined) delete payload.exp;
    return jwt.sign(payload, secret, { algorithm, noTimestamp: true });
  }

  /**
   * Sends `signal` to the server and waits for it to exit, keeping its database (stop()
   * still removes it). Resolves to { code, signal, ms }: the exit and how long it took.
   */
  async terminate(signal = "SIGTERM") {
    const child = this.#child;
    const started = Date.now();
    if (child.exitCode !== null || child.signalCode !== null) {
      return { code: child.exitCode, signal: child.signalCode, ms: 0 };
    }
    const exited = new Promise((resolve) => child.once("exit", (code, sig) => resolve({ code, signal: sig })));
    child.kill(signal);
    const { code, signal: sig } = await exited;
    return { code, signal: sig, ms: Date.now() - started };
  }

  /** True while the server process runs. */
  get running() {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /**
   * Starts the server again (after terminate) on the same port, database, secret and
   * environment, as a restarted node of a deployment comes back behind its address.
   */
  async restart() {
    if (this.running) throw new Error(`restart: the server on port ${this.port} is still running`);
    running.delete(this.#child);
    const { child, log } = await spawnProcess({
      database: this.#database,
      secret: this.secret,
      env: this.#env,
      port: this.port,
    });
    this.#child = child;
    this.#log = log;
  }

  /** Stops the server and removes its database. */
  async stop() {
    const child = this.#child;
    await stopProcess(child);
    running.delete(child);
    await this.#database.drop();
  }
}

/** Seconds since the epoch, as JWT `exp` wants them. */
export function nowSeconds() {
  return Math.floor(Date.now() / 1000);
}

/** An unsigned `alg: none` token, as an attacker would craft it by hand. */
export function unsignedToken(claims) {
  const part = (obj) => Buffer.from(JSON.stringify(obj)).toString("base64url");
  return `${part({ alg: "none", typ: "JWT" })}.${part(claims)}.`;
}

async function freshDatabase() {
  const workDir = await mkdtemp(path.join(tmpdir(), "rc-test-"));
  const removeWorkDir = () => rm(workDir, { recursive: true, force: true });
  if (backend === "sqlite") {
    return {
      workDir,
      url: `sqlite://${path.join(workDir, "chat.db")}?mode=rwc`,
      drop: removeWorkDir,
    };
  }

  const adminUrl = process.env.TEST_DATABASE_URL;
  const name = `rc_test_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5_000 });
  try {
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
  } catch (err) {
    await removeWorkDir();
    throw new Error(
      `TEST_DATABASE_URL is set but PostgreSQL at ${adminUrl} is not usable: ${err.message}`,
    );
  } finally {
    await admin.end().catch(() => {});
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    workDir,
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: adminUrl });
      try {
        await client.connect();
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end().catch(() => {});
        await removeWorkDir();
      }
    },
  };
}

