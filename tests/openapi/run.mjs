// Runs schemathesis against a realtime-chat server started here with the OpenAPI document
// it serves at /api/openapi.json: the binary at $RC_BIN, `serve` on a random port
// (PORT=0) with a fresh SQLite database in a temporary directory and a random JWT secret,
// as tests/newman/run.js does. The run registers a user first and authenticates every
// request with `Authorization: Bearer <its token>`.
//
// schemathesis (PyPI, pinned below) lives in a venv at $RC_VENV (default
// ~/.cache/realtime-chat-venv), created or updated here when missing or of another
// version. If it cannot be installed the run is skipped, except under CI=true, where that
// is a failure. Exits non-zero if the server does not start or schemathesis finds
// anything; the server is stopped and its database removed either way.
//
// Three runs, because two operations end the very token the run authenticates with:
// everything but `POST /api/auth/logout` and `POST /api/auth/logout-all` first, then
// each of those two with a fresh user's token (after its first call, the operation
// answers 401, which is documented and still checked).

import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startFreshServer } from "../lib/fresh-server.mjs";

const SCHEMATHESIS_VERSION = "4.32.5";
const venv = process.env.RC_VENV ?? path.join(homedir(), ".cache/realtime-chat-venv");
const schemathesis = path.join(venv, "bin", "schemathesis");
// Test cases per operation and phase: keeps the whole run around a minute on two cores.
const MAX_EXAMPLES = process.env.SCHEMATHESIS_MAX_EXAMPLES ?? "25";
const SEED = process.env.SCHEMATHESIS_SEED;
const TOKEN_ENDING = ["/api/auth/logout", "/api/auth/logout-all"];
const CONFIG = path.join(path.dirname(fileURLToPath(import.meta.url)), "schemathesis.toml");

if (!ensureSchemathesis()) {
  if (process.env.CI === "true") {
    console.error(`CI=true but schemathesis ${SCHEMATHESIS_VERSION} could not be installed in ${venv}`);
    process.exit(1);
  }
  console.log(`==> schemathesis skipped: it could not be installed in ${venv}`);
  process.exit(0);
}

const server = await startFreshServer("openapi");
let failed = true;
try {
  const document = `${server.url}/api/openapi.json`;
  const main = await run(document, await register(server.url), [
    ...TOKEN_ENDING.flatMap((p) => ["--exclude-path", p]),
  ]);
  // One run each, each with its own token: in one run, whichever of the two went first
  // ended the token, and the other answered only 401, which schemathesis fails as
  // "authentication failed" (it did, now and then, by the order it happened to pick).
  const ending = [];
  for (const p of TOKEN_ENDING) ending.push(await run(document, await register(server.url), ["--include-path", p]));
  const runs = [main, ...ending];
  failed = runs.some((c) => c !== 0);
  console.log(`schemathesis: ${failed ? "FAILED" : "no failures"} against ${document}`);
  // The plain closing line CI reads: one per schemathesis run.
  console.log(`${runs.filter((c) => c === 0).length} passed, ${runs.filter((c) => c !== 0).length} failed`);
} catch (err) {
  console.error(`schemathesis could not run: ${err.stack ?? err}`);
} finally {
  await server.stop();
  if (failed && server.log.length > 0) {
    console.error(`--- server stderr (tail) ---\n${server.log.slice(-30).join("\n")}`);
  }
}
process.exitCode = failed ? 1 : 0;

/** Creates or updates the venv; true when the pinned schemathesis is ready. */
function ensureSchemathesis() {
  const installed = () => {
    if (!existsSync(schemathesis)) return false;
    const v = spawnSync(schemathesis, ["--version"], { encoding: "utf8" });
    return v.status === 0 && v.stdout.includes(`version ${SCHEMATHESIS_VERSION}`);
  };
  if (installed()) return true;
  console.log(`==> installing schemathesis ${SCHEMATHESIS_VERSION} into ${venv}`);
  const step = (cmd, args) => spawnSync(cmd, args, { stdio: "inherit" }).status === 0;
  if (!existsSync(path.join(venv, "bin", "pip")) && !step("python3", ["-m", "venv", venv])) {
    console.error("python3 -m venv failed (on Debian: apt-get install -y python3-venv)");
    return false;
  }
  return (
    step(path.join(venv, "bin", "pip"), [
      "install",
      "--quiet",
      "--disable-pip-version-check",
      `schemathesis==${SCHEMATHESIS_VERSION}`,
    ]) && installed()
  );
}

/** Registers a fresh user; resolves to its token. */
async function register(baseUrl) {
  const res = await fetch(`${baseUrl}/api/auth/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      email: `schemathesis-${randomBytes(4).toString("hex")}@example.com`,
      password: `pw-${randomBytes(8).toString("hex")}`,
    }),
  });
  const body = await res.json();
  if (res.status !== 201) throw new Error(`set-up: registering gave ${res.status} ${JSON.stringify(body)}`);
  return body.token;
}

/**
 * One schemathesis run with every default check, positive_data_acceptance included
 * (every request the document allows is accepted); resolves to its exit code.
 * `schemathesis.toml` beside this file names the statuses a valid request may get where
 * the default list is not the whole story (see its comments).
 */
function run(document, token, extra) {
  const args = [
    "--config-file",
    CONFIG,
    "run",
    document,
    "--header",
    `Authorization: Bearer ${token}`,
    "--max-examples",
    MAX_EXAMPLES,
    // One worker: with two, CPython 3.11's `ast` module (hypothesis describes its
    // strategies with it) sometimes fails with "AST constructor recursion depth mismatch".
    "--workers",
    "1",
    "--request-timeout",
    "10",
    ...(SEED ? ["--seed", SEED] : []),
    ...extra,
  ];
  console.log(`==> schemathesis ${args.slice(2, 4).join(" ")} ${extra.join(" ")}`);
  return new Promise((resolve, reject) => {
    const child = spawn(schemathesis, args, {
      stdio: "inherit",
      env: { ...process.env, SCHEMATHESIS_TELEMETRY: "false", NO_COLOR: "1" },
    });
    child.once("error", reject);
    child.once("exit", (code) => resolve(code ?? 1));
  });
}
