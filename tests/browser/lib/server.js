// Starts the real realtime-chat binary on a random port against a fresh SQLite database,
// the way tests/js/lib/harness.js does (the minimum of it, so this package needs nothing
// from tests/js). `restart()` stops the process and starts it again on the same port
// with the same database and secret: the page's socket must find its way back by itself.

import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";

const READY_LINE = /^realtime-chat listening on 127\.0\.0\.1:(\d+)\s*$/;
const START_TIMEOUT_MS = Number(process.env.RC_START_TIMEOUT_MS ?? 60_000);

/** Path of the server binary under test. */
export const serverBinary =
  process.env.RC_BIN ?? path.join(homedir(), ".cache/realtime-chat-target/debug/realtime-chat");

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
  #lines = [];

  constructor({ workDir, env }) {
    this.workDir = workDir;
    this.env = env;
    this.port = null;
    this.url = null;
  }

  /** The last lines the server wrote to stderr (for diagnosing failures). */
  get log() {
    return this.#lines.join("\n");
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
    createInterface({ input: child.stderr }).on("line", (line) => {
      if (process.env.RC_SERVER_LOG) process.stderr.write(`[server] ${line}\n`);
      this.#lines.push(line);
      if (this.#lines.length > 200) this.#lines.shift();
    });
    this.port = await this.#waitUntilListening(child);
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
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    }
    running.delete(child);
    this.#child = null;
  }

  #waitUntilListening(child) {
    return new Promise((resolve, reject) => {
      const fail = (why) => {
        clearTimeout(timer);
        reject(new Error(`${why}\n--- server stderr (tail) ---\n${this.#lines.slice(-30).join("\n")}`));
      };
      const timer = setTimeout(
        () => fail(`server did not print its listening line within ${START_TIMEOUT_MS} ms`),
        START_TIMEOUT_MS,
      );
      child.once("error", (err) => fail(`could not start ${serverBinary}: ${err.message}`));
      child.once("exit", (code, signal) => fail(`server exited during start-up (code ${code}, signal ${signal})`));
      createInterface({ input: child.stdout }).on("line", (line) => {
        const match = READY_LINE.exec(line);
        if (match) {
          clearTimeout(timer);
          child.removeAllListeners("exit");
          child.removeAllListeners("error");
          resolve(Number(match[1]));
        }
      });
    });
  }
}
