// The page and its scripts as the server serves them: paths, content types, the
// Content-Security-Policy, and the vendored client being the npm package's own file.

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { startServer } from "../lib/server.js";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const require = createRequire(import.meta.url);

let server;
before(async () => {
  server = await startServer();
});
after(() => server?.stop());

async function get(urlPath) {
  const res = await fetch(server.url + urlPath);
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

/** The CSP as a map from directive to its sources. */
function directives(csp) {
  return new Map(
    csp
      .split(";")
      .map((d) => d.trim().split(/\s+/))
      .filter((parts) => parts[0])
      .map(([name, ...sources]) => [name, sources]),
  );
}

describe("the test page", () => {
  for (const urlPath of ["/", "/test_client.html"]) {
    it(`GET ${urlPath} is the page, as HTML, with a CSP that allows no inline script`, async () => {
      const res = await get(urlPath);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), "text/html; charset=utf-8");
      assert.equal(res.headers.get("x-content-type-options"), "nosniff");
      const file = await readFile(path.join(repo, "test_client.html"));
      assert.ok(res.body.equals(file), "served page differs from test_client.html: rebuild the server");

      const csp = res.headers.get("content-security-policy");
      assert.ok(csp, "Content-Security-Policy header missing");
      const policy = directives(csp);
      assert.deepEqual(policy.get("default-src"), ["'none'"]);
      assert.deepEqual(policy.get("script-src"), ["'self'"]);
      assert.deepEqual(policy.get("connect-src"), ["'self'"]);
      assert.deepEqual(policy.get("frame-ancestors"), ["'none'"]);
    });
  }

  it("carries no inline script or event-handler attribute, and loads scripts by relative URL", async () => {
    const html = (await get("/")).body.toString("utf8");
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)];
    assert.deepEqual(
      scripts.map(([, attrs]) => /\bsrc="([^"]+)"/.exec(attrs)?.[1]),
      ["static/socket.io.min.js", "static/test_client.js"],
    );
    for (const [, , body] of scripts) assert.equal(body.trim(), "", "inline script body");
    assert.doesNotMatch(html, /\son[a-z]+\s*=/i, "inline event handler attribute");
    assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//i, "absolute or off-site URL");
  });

  it("GET /static/test_client.js is the page's script, as JavaScript, building no markup from data", async () => {
    const res = await get("/static/test_client.js");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/javascript; charset=utf-8");
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");
    const source = await readFile(path.join(repo, "static/test_client.js"));
    assert.ok(res.body.equals(source), "served script differs from static/test_client.js: rebuild the server");
    const markup = /\.(inner|outer)HTML\s*[+]?=|insertAdjacentHTML\(|document\.write(ln)?\(|\beval\(|new Function\(/;
    const hit = markup.exec(source.toString("utf8"));
    assert.equal(hit, null, `static/test_client.js builds markup from strings: ${hit?.[0]}`);
  });

  it("GET /static/socket.io.min.js is npm socket.io-client's dist file, at the recorded version", async () => {
    const res = await get("/static/socket.io.min.js");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/javascript; charset=utf-8");
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");

    const note = await readFile(path.join(repo, "static/SOCKET_IO_CLIENT_VERSION"), "utf8");
    const recorded = note.split("\n")[0].trim();
    const pkgPath = require.resolve("socket.io-client/package.json");
    const pkg = JSON.parse(await readFile(pkgPath, "utf8"));
    assert.equal(
      pkg.version,
      recorded,
      "tests/browser pins another socket.io-client than static/SOCKET_IO_CLIENT_VERSION records",
    );
    const upstream = await readFile(path.join(path.dirname(pkgPath), "dist/socket.io.min.js"));
    assert.ok(
      res.body.equals(upstream),
      `static/socket.io.min.js differs from socket.io-client ${pkg.version}'s dist/socket.io.min.js: re-vendor it`,
    );
    assert.match(res.body.subarray(0, 200).toString("utf8"), new RegExp(`Socket\\.IO v${recorded.replace(/\./g, "\\.")}`));
  });

  it("an unknown static path is a 404, not the page", async () => {
    const res = await get("/static/nope.js");
    assert.equal(res.status, 404);
  });
});
