// Runs the Postman collection (postman/) with newman against a realtime-chat server
// started here: the binary at $RC_BIN, `serve` on a random port (PORT=0) with a fresh
// SQLite database in a temporary directory and a random JWT secret. The port is read
// from the server's stdout line "realtime-chat listening on 127.0.0.1:PORT", as
// tests/js/lib/harness.js does. Exits non-zero if the server does not start or any
// request or assertion fails; the server is stopped and its database removed either way.
//
// NEWMAN_ITERATIONS (default 2) runs the collection that many times against the same
// server: the second run proves it can be re-run (unique e-mails per run).

import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import newman from "newman";

const here = path.dirname(fileURLToPath(import.meta.url));
const postmanDir = path.resolve(here, "../../postman");
const collection = path.join(postmanDir, "realtime-chat.postman_collection.json");
const environment = path.join(postmanDir, "realtime-chat.postman_environment.json");

const serverBinary =
  process.env.RC_BIN ?? path.join(homedir(), ".cache/realtime-chat-target/debug/realtime-chat");
const READY_LINE = /^realtime-chat listening on 127\.0\.0\.1:(\d+)\s*$/;
const START_TIMEOUT_MS = Number(process.env.RC_START_TIMEOUT_MS ?? 60_000);
const ITERATIONS = Number(process.env.NEWMAN_ITERATIONS ?? 2);

const server = await startServer();
let failed = true;
try {
  const summary = await runCollection(server.url);
  const { requests, assertions, testScripts, prerequestScripts } = summary.run.stats;
  failed =
    summary.run.failures.length > 0 ||
    requests.failed > 0 ||
    assertions.failed > 0 ||
    testScripts.failed > 0 ||
    prerequestScripts.failed > 0 ||
    assertions.total === 0;
  const line = `newman: ${requests.total} requests, ${assertions.total - assertions.failed} of ${assertions.total} assertions passed (${ITERATIONS} iteration(s))`;
  console.log(failed ? `${line}: FAILED` : line);
  // The plain closing line CI reads.
  console.log(`${assertions.total - assertions.failed} passed, ${assertions.failed} failed`);
} catch (err) {
  console.error(`newman could not run the collection: ${err.stack ?? err}`);
} finally {
  await server.stop();
  if (failed && server.log.length > 0) {
    console.error(`--- server stderr (tail) ---\n${server.log.slice(-30).join("\n")}`);
  }
}
process.exitCode = failed ? 1 : 0;

function runCollection(baseUrl) {
  return new Promise((resolve, reject) => {
    newman.run(
      {
        collection,
        environment,
        envVar: [{ key: "baseUrl", value: baseUrl }],
        iterationCount: ITERATIONS,
        reporters: ["cli"],
        color: process.stdout.isTTY ? "on" : "off",
        reporter: { cli: { noSuccessAssertions: process.env.NEWMAN_VERBOSE !== "1" } },
        timeoutRequest: 10_000,
      },
      (err, summary) => (err ? reject(err) : resolve(summary)),
    );
  });
}

async function startServer() {
  const workDir = await mkdtemp(path.join(tmpdir(), "rc-newman-"));
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
