// GET /api/openapi.json, the OpenAPI 3.1 description generated from the handlers'
// annotations (src/http/openapi.rs): it must describe exactly the REST routes that
// src/http/mod.rs registers under /api, plus /health (same paths, same methods), so a
// route added without its annotation fails here. Also: Bearer security everywhere but
// register, login and health; every operation documents its `{ error }` answers; the
// API reference page at /docs is served by the binary itself.

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { startServer } from "../lib/harness.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const ROUTER_RS = "src/http/mod.rs";
const PUBLIC = new Set(["POST /api/auth/register", "POST /api/auth/login", "GET /health"]);

/** "METHOD /path" for every `.route("/path", get(..).post(..))` of the router. */
function registeredRoutes() {
  const source = readFileSync(ROOT + ROUTER_RS, "utf8");
  const routes = new Set();
  for (const [, path, handlers] of source.matchAll(/\.route\(\s*"([^"]+)",\s*([\s\S]*?)\)\s*(?=\.route|\.merge|\n\})/g)) {
    if (!(path.startsWith("/api/") || path === "/health")) continue;
    for (const [, method] of handlers.matchAll(/\b(get|post|patch|put|delete)\(/g)) {
      routes.add(`${method.toUpperCase()} ${path}`);
    }
  }
  return routes;
}

describe("OpenAPI document", () => {
  let server;
  let doc;
  before(async () => {
    server = await startServer();
    const res = await server.http("GET", "/api/openapi.json");
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type"), /application\/json/);
    doc = res.body;
  });
  after(() => server?.stop());

  test("is OpenAPI 3.1", () => {
    assert.match(doc.openapi, /^3\.1\./);
  });

  test("describes every route of the router, and nothing else", () => {
    const registered = registeredRoutes();
    assert.ok(registered.size >= 20, `parsed only ${registered.size} routes from ${ROUTER_RS}`);
    const described = new Set(
      Object.entries(doc.paths).flatMap(([path, item]) =>
        Object.keys(item)
          .filter((k) => ["get", "post", "patch", "put", "delete"].includes(k))
          .map((m) => `${m.toUpperCase()} ${path}`),
      ),
    );
    assert.deepEqual([...registered].filter((r) => !described.has(r)).sort(), [], "routes not in the document");
    assert.deepEqual([...described].filter((r) => !registered.has(r)).sort(), [], "document paths with no route");
  });

  test("asks for the Bearer token everywhere but register, login and health", () => {
    assert.equal(doc.components.securitySchemes.bearer.scheme, "bearer");
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const name = `${method.toUpperCase()} ${path}`;
        if (PUBLIC.has(name)) assert.equal(op.security, undefined, name);
        else assert.deepEqual(op.security, [{ bearer: [] }], name);
        if (!PUBLIC.has(name)) assert.ok(op.responses["401"], `${name} documents 401`);
        for (const [status, response] of Object.entries(op.responses)) {
          if (Number(status) >= 400 && path !== "/health") {
            assert.equal(
              response.content["application/json"].schema.$ref,
              "#/components/schemas/ErrorBody",
              `${name} ${status} is { error }`,
            );
          }
        }
      }
    }
  });

  test("/docs serves the API reference page from the binary", async () => {
    const page = await server.http("GET", "/docs/");
    assert.equal(page.status, 200);
    assert.match(page.text, /swagger-ui/i);
    assert.doesNotMatch(page.text, /https?:\/\//, "no CDN");
    const init = await server.http("GET", "/docs/swagger-initializer.js");
    assert.equal(init.status, 200);
    assert.match(init.text, /\/api\/openapi\.json/);
    const bundle = await server.http("GET", "/docs/swagger-ui-bundle.js");
    assert.equal(bundle.status, 200);
  });
});
