// Starts the realtime-chat binary ($RC_BIN) for a tool that drives it from outside (newman,
// schemathesis): `serve` on a random port (PORT=0) with a fresh SQLite database in a
// temporary directory and a random JWT secret, the port read from the line
// `realtime-chat listening on 127.0.0.1:PORT`. Node built-ins only, so every runner can
// import it whatever its own dependencies. (tests/js/lib/harness.js does the same for the
// socket.io-client suite, with PostgreSQL databases and token minting on top.)
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";

export const serverBinary =
  process.env.RC_BIN ?? path.join(homedir(), ".cache/realtime-chat-target/debug/realtime-chat");
const READY_LINE = /^realtime-chat listening on 127\.0\.0\.1:(\d+)\s*$/;
const START_TIMEOUT_MS = Number(process.env.RC_START_TIMEOUT_MS ?? 60_000);

/** Resolves to { url, log, stop }; exits the process if the server does not start. */
export async function startFreshServer(label) {
  const workDir = await mkdtemp(path.join(tmpdir(), `rc-${label}-`));
  const child = spawn(serverBinary, ["serve"], {
    // A scratch working directory, so no .env from the repository is read.
    cwd: workDir,
    env: {
      ...process.env,
      DATABASE_URL: `sqlite://${path.join(workDir, "chat.db")}?mode=rwc`,
      JWT_SECRET: randomBytes(32).toString("hex"),
      HOST: "127.0.0.1",
      PORT: "0",
      RUST_LOG: process.env.RC_RUST_LOG ?? "warn",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const log = [];
  createInterface({ input: child.stderr }).on("line", (line) => {
    if (process.env.RC_SERVER_LOG) process.stderr.write(`[server] ${line}\n`);
    log.push(line);
    if (log.length > 200) log.shift();
  });
  const killOnExit = () => child.kill("SIGKILL");
  process.on("exit", killOnExit);

  const stop = async () => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    }
    process.off("exit", killOnExit);
    await rm(workDir, { recursive: true, force: true });
  };

  try {
    const port = await new Promise((resolve, reject) => {
      const fail = (why) => {
        clearTimeout(timer);
        reject(new Error(`${why}\n--- server stderr (tail) ---\n${log.slice(-30).join("\n")}`));
      };
      const timer = setTimeout(
        () => fail(`server did not print its listening line within ${START_TIMEOUT_MS} ms`),
        START_TIMEOUT_MS,
      );
      child.once("error", (err) => fail(`could not start ${serverBinary}: ${err.message}`));
      child.once("exit", (code, signal) =>
        fail(`server exited during start-up (code ${code}, signal ${signal})`),
      );
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
    const url = `http://127.0.0.1:${port}`;
    console.log(`==> realtime-chat (${serverBinary}) on SQLite at ${url}`);
    return { url, log, stop };
  } catch (err) {
    await stop();
    console.error(err.message);
    process.exit(1);
  }
}
