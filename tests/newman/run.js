// Runs the Postman collection (postman/) with newman against a realtime-chat server
// started here: the binary at $RC_BIN, `serve` on a random port (PORT=0) with a fresh
// SQLite database in a temporary directory and a random JWT secret. The port is read
// from the server's stdout line "realtime-chat listening on 127.0.0.1:PORT", as
// tests/js/lib/harness.js does. Exits non-zero if the server does not start or any
// request or assertion fails; the server is stopped and its database removed either way.
//
// NEWMAN_ITERATIONS (default 2) runs the collection that many times against the same
// server: the second run proves it can be re-run (unique e-mails per run).

import path from "node:path";
import { fileURLToPath } from "node:url";
import newman from "newman";
import { startFreshServer } from "../lib/fresh-server.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const postmanDir = path.resolve(here, "../../postman");
const collection = path.join(postmanDir, "realtime-chat.postman_collection.json");
const environment = path.join(postmanDir, "realtime-chat.postman_environment.json");

const ITERATIONS = Number(process.env.NEWMAN_ITERATIONS ?? 2);

const server = await startFreshServer("newman");
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
