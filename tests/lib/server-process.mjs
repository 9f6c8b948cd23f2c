// The realtime-chat process as every test runner starts it: which binary, how its
// stderr is kept, how its port is learnt, how it is stopped. Node built-ins only, so
// the socket.io-client suite, the browser test and the newman/schemathesis runners can
// all import it whatever their own dependencies.
import { homedir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";

/** Path of the server binary under test. */
export const serverBinary =
  process.env.RC_BIN ?? path.join(homedir(), ".cache/realtime-chat-target/debug/realtime-chat");

const READY_LINE = /^realtime-chat listening on 127\.0\.0\.1:(\d+)\s*$/;
const START_TIMEOUT_MS = Number(process.env.RC_START_TIMEOUT_MS ?? 60_000);
/** How long a stopped server may drain before it is killed. */
const STOP_TIMEOUT_MS = 5_000;

/** The last 200 lines of the server's stderr (echoed with RC_SERVER_LOG=1). */
export function captureStderr(child) {
  const log = { lines: [] };
  createInterface({ input: child.stderr }).on("line", (line) => {
    if (process.env.RC_SERVER_LOG) process.stderr.write(`[server] ${line}\n`);
    log.lines.push(line);
    if (log.lines.length > 200) log.lines.shift();
  });
  return log;
}

/** Resolves to the port of the line `realtime-chat listening on 127.0.0.1:PORT`. */
export function waitUntilListening(child, log) {
  return new Promise((resolve, reject) => {
    const fail = (why) => {
      clearTimeout(timer);
      reject(new Error(`${why}\n--- server stderr (tail) ---\n${log.lines.slice(-30).join("\n")}`));
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

/** SIGTERM (the server drains), then SIGKILL if it is still there after a while. */
export async function stopProcess(child) {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}
