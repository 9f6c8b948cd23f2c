// Starts the real realtime-chat binary on a random port against a fresh SQLite database,
// the way tests/js/lib/harness.js does (the minimum of it, so this package needs nothing
// from tests/js). `restart()` stops the process and starts it again on the same port
// with the same database and secret: the page's socket must find its way back by itself.

import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { captureStderr, serverBinary, stopProcess, waitUntilListening } from "../../lib/server-process.mjs";

export { serverBinary };

const running = new Set();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/** Starts a server on a random port with a fresh SQLite database. */
export async function startServer({ env = {} } = {}) {
  const workDir = await mkdtemp(path.join(tmpdir(), "rc-browser-"));
  const server = new Server({
    workDir,
    env: {
      DATABASE_URL: `sqlite://${path.join(workDir, "chat.db")}?mode=rwc`,
      JWT_SECRET: randomBytes(32).toString("hex"),
      HOST: "127.0.0.1",
      RUST_LOG: process.env.RC_RUST_LOG ?? "warn",
      ...env,
    },
  });
  try {
    await server.spawn("0");
  } catch (err) {
    await rm(workDir, { recursive: true, force: true });
    throw err;
  }
  return server;
}

class Server {
  #child = null;
  #log = { lines: [] };

  constructor({ workDir, env }) {
    this.workDir = workDir;
    this.env = env;
    this.port = null;
    this.url = null;
  }

  /** The last lines the server wrote to stderr (for diagnosing failures). */
  get log() {
    return this.#log.lines.join("\n");
  }

  async spawn(port) {
    const child = spawn(serverBinary, ["serve"], {
      // A scratch working directory, so no .env from the repository is read.
      cwd: this.workDir,
      env: { ...process.env, ...this.env, PORT: port },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.#child = child;
    running.add(child);
    this.#log = captureStderr(child);
    this.port = await waitUntilListening(child, this.#log);
    this.url = `http://127.0.0.1:${this.port}`;
  }

  /**
   * Stops the process and starts it again on the same port and database; `whileDown`
   * runs in between (to watch clients notice the outage).
   */
  async restart({ whileDown = async () => {} } = {}) {
    await this.#kill();
    await whileDown();
    await this.spawn(String(this.port));
  }

  /** Stops the server and removes its database. */
  async stop() {
    await this.#kill();
    await rm(this.workDir, { recursive: true, force: true });
  }

  async #kill() {
    const child = this.#child;
    if (!child) return;
    await stopProcess(child);
    running.delete(child);
    this.#child = null;
  }
}
