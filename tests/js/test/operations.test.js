// Operating the server: the command line (user create, token, migrate, --help),
// configuration errors, the embedded default's generated secret, and /health
// when the database goes away.

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import pg from "pg";
import { startServer, serverBinary, backend } from "../lib/harness.js";
import { connect, closeAll } from "../lib/client.js";

/** Runs the binary with exactly `env` (plus PATH/HOME), never the developer's .env. */
function cli(args, { env = {}, cwd } = {}) {
  const res = spawnSync(serverBinary, args, {
    cwd: cwd ?? tmpdir(),
    env: { PATH: process.env.PATH, HOME: process.env.HOME, RUST_LOG: "error", ...env },
    encoding: "utf8",
    timeout: 60_000,
  });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

describe("command line", () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(() => server?.stop());
  const env = () => ({ DATABASE_URL: server.databaseUrl, JWT_SECRET: server.secret });

  test("user create makes a user whose printed token connects as that user", async () => {
    const email = `cli-${Date.now()}@example.com`;
    const res = cli(["user", "create", "--email", email, "--password", "a long password"], { env: env() });
    assert.equal(res.code, 0, res.stderr);
    const id = Number(/created user (\d+)/.exec(res.stdout)?.[1]);
    const token = /token: (\S+)/.exec(res.stdout)?.[1];
    assert.ok(id > 0 && token, res.stdout);

    const socket = await connect(server, { token, display_name: "cli user" });
    assert.equal((await socket.expect("authenticated")).user_id, id);
    await closeAll(socket);

    const login = await server.http("POST", "/api/auth/login", {
      json: { email, password: "a long password" },
    });
    assert.equal(login.status, 200);
    assert.equal(login.body.user.id, id);
  });

  test("user create refuses a taken email and a short password", () => {
    const taken = `taken-${Date.now()}@example.com`;
    assert.equal(cli(["user", "create", "--email", taken, "--password", "password1"], { env: env() }).code, 0);
    const again = cli(["user", "create", "--email", taken, "--password", "password1"], { env: env() });
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /email already registered/);
    const short = cli(["user", "create", "--email", `s-${taken}`, "--password", "short"], { env: env() });
    assert.notEqual(short.code, 0);
    assert.match(short.stderr, /at least 8 characters/);
  });

  test("token prints a JWT the REST API accepts, and refuses unknown users", async () => {
    const alice = await server.register("alice");
    const res = cli(["token", "--user-id", String(alice.id)], { env: env() });
    assert.equal(res.code, 0, res.stderr);
    const me = await server.http("GET", "/api/me", { token: res.stdout.trim() });
    assert.equal(me.status, 200);
    assert.equal(me.body.id, alice.id);

    const unknown = cli(["token", "--user-id", "987654"], { env: env() });
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /user 987654: user not found/);
    assert.equal(unknown.stdout, "");
  });

  test("migrate succeeds on an up-to-date database", () => {
    const res = cli(["migrate"], { env: env() });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /migrations applied/);
  });

  test("every command has --help", () => {
    for (const args of [[], ["serve"], ["migrate"], ["user"], ["user", "create"], ["token"]]) {
      const res = cli([...args, "--help"]);
      assert.equal(res.code, 0, `${args.join(" ")} --help: ${res.stderr}`);
      assert.match(res.stdout, /Usage:/);
    }
  });
});

describe("configuration errors stop start-up with one line naming the variable", () => {
  const cases = [
    ["a short JWT_SECRET", { JWT_SECRET: "too-short" }, /JWT_SECRET: must be at least 32 bytes/],
    [
      "PostgreSQL without JWT_SECRET",
      { DATABASE_URL: "postgres://nobody@127.0.0.1:1/none" },
      /JWT_SECRET: required with PostgreSQL/,
    ],
    ["an unsupported DATABASE_URL", { DATABASE_URL: "mysql://x/y" }, /DATABASE_URL: must start with/],
    ["a non-numeric PORT", { PORT: "abc" }, /PORT: `abc` is not a valid value/],
    ["a zero MAX_MESSAGE_BYTES", { MAX_MESSAGE_BYTES: "0" }, /MAX_MESSAGE_BYTES: must be between/],
    ["a negative EDIT_WINDOW_SECS", { EDIT_WINDOW_SECS: "-1" }, /EDIT_WINDOW_SECS: `-1` is not a valid value/],
    ["an EDIT_WINDOW_SECS over ten years", { EDIT_WINDOW_SECS: "315360001" }, /EDIT_WINDOW_SECS: must be at most/],
    ["a CORS origin without scheme", { CORS_ORIGINS: "example.com" }, /CORS_ORIGINS: `example.com`/],
    ["a PUSH_WEBHOOK_URL without its secret", { PUSH_WEBHOOK_URL: "https://hooks.example/rc" }, /PUSH_WEBHOOK_SECRET: required/],
    ["a PUSH_WEBHOOK_URL that is not http(s)", { PUSH_WEBHOOK_URL: "ftp://hooks.example", PUSH_WEBHOOK_SECRET: "s".repeat(32) }, /PUSH_WEBHOOK_URL: must be an http/],
    ["an unknown PUSH_INCLUDE", { PUSH_WEBHOOK_URL: "https://hooks.example/rc", PUSH_WEBHOOK_SECRET: "s".repeat(32), PUSH_INCLUDE: "content" }, /PUSH_INCLUDE: must be none, sender or preview/],
  ];
  for (const [what, env, message] of cases) {
    test(what, async () => {
      const dir = await mkdtemp(path.join(tmpdir(), "rc-config-"));
      try {
        const res = cli(["serve"], { env: { DATABASE_URL: `sqlite://${dir}/x.db?mode=rwc`, ...env }, cwd: dir });
        assert.equal(res.code, 2, res.stderr);
        const lines = res.stderr.trim().split("\n");
        assert.equal(lines.length, 1, `one line: ${res.stderr}`);
        assert.match(lines[0], message);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});

/** Starts `serve` in `cwd` with only `env`; resolves to { url, stop }. */
function serveIn(cwd, env = {}) {
  const child = spawn(serverBinary, ["serve"], {
    cwd,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, RUST_LOG: "warn", PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("server did not start")), 60_000);
    child.once("exit", (code) => reject(new Error(`server exited with ${code}`)));
    createInterface({ input: child.stdout }).on("line", (line) => {
      const port = /listening on 127\.0\.0\.1:(\d+)/.exec(line)?.[1];
      if (!port) return;
      clearTimeout(timer);
      child.removeAllListeners("exit");
      resolve({
        url: `http://127.0.0.1:${port}`,
        stop: () => new Promise((done) => (child.once("exit", done), child.kill("SIGTERM"))),
      });
    });
  });
}

test("the embedded default needs no configuration and keeps its generated secret across restarts", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "rc-default-"));
  try {
    let server = await serveIn(dir);
    const reg = await fetch(`${server.url}/api/auth/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: "first@example.com", password: "password1" }),
    });
    assert.equal(reg.status, 201);
    const { token } = await reg.json();
    await server.stop();

    const secretFile = await stat(path.join(dir, "realtime-chat.db.jwt-secret"));
    assert.equal(secretFile.mode & 0o777, 0o600, "the secret is readable by its owner only");
    await stat(path.join(dir, "realtime-chat.db"));

    server = await serveIn(dir);
    const me = await fetch(`${server.url}/api/me`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(me.status, 200, "a token issued before the restart still works");
    await server.stop();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("GET /health answers 503 once the database is gone", { skip: backend !== "postgres" && "PostgreSQL only: an open SQLite file cannot vanish" }, async () => {
  const server = await startServer();
  try {
    assert.equal((await server.http("GET", "/health")).status, 200);
    const name = new URL(server.databaseUrl).pathname.slice(1);
    const admin = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL });
    await admin.connect();
    try {
      await admin.query(`DROP DATABASE ${name} WITH (FORCE)`);
    } finally {
      await admin.end();
    }
    const res = await server.http("GET", "/health");
    assert.equal(res.status, 503);
    const { node, ...rest } = res.body;
    assert.deepEqual(rest, { status: "unavailable", database: "disconnected", redis: "unused" });
    assert.ok(node, "the node still names itself");
  } finally {
    await server.stop();
  }
});
