// Starts the realtime-chat binary ($RC_BIN) for a tool that drives it from outside (newman,
// schemathesis): `serve` on a random port (PORT=0) with a fresh SQLite database in a
// temporary directory and a random JWT secret. Node built-ins only, so every runner can
// import it whatever its own dependencies. (tests/js/lib/harness.js does the same for the
// socket.io-client suite, with PostgreSQL databases and token minting on top.)
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { captureStderr, serverBinary, stopProcess, waitUntilListening } from "./server-process.mjs";

export { serverBinary };

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
  const log = captureStderr(child);
  const killOnExit = () => child.kill("SIGKILL");
  process.on("exit", killOnExit);

  const stop = async () => {
    await stopProcess(child);
    process.off("exit", killOnExit);
    await rm(workDir, { recursive: true, force: true });
  };

  try {
    const port = await waitUntilListening(child, log);
    const url = `http://127.0.0.1:${port}`;
    console.log(`==> realtime-chat (${serverBinary}) on SQLite at ${url}`);
    return { url, log: log.lines, stop };
  } catch (err) {
    await stop();
    console.error(err.message);
    process.exit(1);
  }
}
