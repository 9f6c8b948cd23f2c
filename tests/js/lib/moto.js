// A real S3-compatible server for tests: moto's standalone server (PyPI `moto[server]`),
// installed once into its own venv, started on a free local port per test file.
// Without Python or network the S3 tests are skipped, except under CI=true, where a
// missing install fails the run (as tests/openapi/run.mjs does for schemathesis).

import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { homedir } from "node:os";
import path from "node:path";

const MOTO_VERSION = "5.2.5";
const venv = process.env.RC_MOTO_VENV ?? path.join(homedir(), ".cache/realtime-chat-moto-venv");
const motoServer = path.join(venv, "bin", "moto_server");

/**
 * Makes sure moto is installed; resolves to null when ready, or to the reason it is not
 * (throws instead under CI=true).
 */
export function ensureMoto() {
  const installed = () =>
    existsSync(motoServer) &&
    spawnSync(path.join(venv, "bin", "python"), ["-c", `import moto; assert moto.__version__ == "${MOTO_VERSION}"`]).status === 0;
  if (installed()) return null;
  const step = (cmd, args) => spawnSync(cmd, args, { stdio: "inherit" }).status === 0;
  const ok =
    (existsSync(path.join(venv, "bin", "pip")) || step("python3", ["-m", "venv", venv])) &&
    step(path.join(venv, "bin", "pip"), ["install", "--quiet", "--disable-pip-version-check", `moto[server]==${MOTO_VERSION}`]) &&
    installed();
  if (ok) return null;
  const why = `moto[server] ${MOTO_VERSION} could not be installed in ${venv}`;
  if (process.env.CI === "true") throw new Error(`CI=true but ${why}`);
  return why;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** Starts moto's server; resolves to { url, stop } once it answers. */
export async function startMoto() {
  const port = await freePort();
  const child = spawn(motoServer, ["-H", "127.0.0.1", "-p", String(port)], { stdio: ["ignore", "pipe", "pipe"] });
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const res = await fetch(`${url}/moto-api/`);
      if (res.status < 500) break;
    } catch {
      // Not listening yet.
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`moto_server did not start on ${url}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    /** Creates a bucket (moto does not check signatures). */
    async createBucket(name) {
      const res = await fetch(`${url}/${name}`, { method: "PUT" });
      if (res.status !== 200) throw new Error(`creating bucket ${name}: ${res.status} ${await res.text()}`);
    },
    /** The keys stored in a bucket under a prefix. */
    async keys(bucket, prefix = "") {
      const res = await fetch(`${url}/${bucket}?list-type=2&prefix=${encodeURIComponent(prefix)}`);
      const xml = await res.text();
      return [...xml.matchAll(/<Key>([^<]+)<\/Key>/g)].map((m) => m[1]);
    },
    async stop() {
      child.kill("SIGTERM");
      await exited;
    },
  };
}
