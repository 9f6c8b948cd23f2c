// docs/asyncapi.yaml, the AsyncAPI 3.0 description of the Socket.IO events: it must
// parse and validate with @asyncapi/parser, and say what the code says, so the two
// cannot drift: every event of src/socket/events.rs both ways and nothing else, the
// fields of each payload struct (names, required vs optional, JSON types), which events
// the handlers acknowledge and with what, every error code of src/domain/error.rs and
// every handshake refusal. The examples must match their schemas.
//
// No server: this file reads the YAML and the Rust sources only.

import { describe, test, before } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Parser, DiagnosticSeverity } from "@asyncapi/parser";
import Ajv from "ajv";
import addFormats from "ajv-formats";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const DOC = "docs/asyncapi.yaml";
const EVENTS_RS = "src/socket/events.rs";
const CONNECT_RS = "src/socket/connect.rs";
const ERROR_RS = "src/domain/error.rs";

/**
 * Where each payload struct of events.rs appears in the document: as the payload of
 * messages (components/messages keys) or as named schemas (components/schemas keys).
 * `shared`: several events send the struct, each event's message carrying the fields
 * it sets (a subset), all of them together exactly the struct's. `alsoRequired`: fields
 * serde lets through but the server refuses without (`why`).
 */
const PAYLOADS = {
  // Client → server.
  SendMessage: { messages: ["send_message"] },
  TypingIn: { messages: ["typing_in"] },
  MarkReadIn: { messages: ["mark_read"] },
  SyncIn: { messages: ["sync"] },
  SyncSince: { schemas: ["SyncSince"] },
  SyncChangesSince: { schemas: ["SyncChangesSince"] },
  EditMessageIn: { messages: ["edit_message"] },
  DeleteMessageIn: { messages: ["delete_message"] },
  ReactIn: { messages: ["react"] },
  EncryptedIn: { schemas: ["EncryptedIn"] },
  EnvelopeIn: { schemas: ["EnvelopeIn"] },
  AuthRefresh: { messages: ["auth_refresh"] },
  AuthPayload: {
    schemas: ["HandshakeAuth"],
    alsoRequired: ["token"],
    why: "a handshake without auth.token is refused: 'authentication token missing'",
  },
  // Acknowledgements.
  MarkReadAck: { messages: ["mark_read_ack"] },
  SyncAck: { messages: ["sync_ack"] },
  SyncedMessage: { schemas: ["SyncedMessage"] },
  SyncChangesAck: { messages: ["sync_changes_ack"] },
  ChangedMessage: { schemas: ["ChangedMessage"] },
  ReplyQuote: { schemas: ["ReplyQuote"] },
  ReactionCount: { schemas: ["ReactionCount"] },
  AuthRefreshed: { messages: ["auth_refresh_ack"] },
  AckError: { messages: ["ack_error"] },
  ErrorBody: { schemas: ["ErrorBody"] },
  // Server → client.
  Authenticated: { messages: ["authenticated"] },
  MessageSent: { messages: ["message_sent", "send_message_ack"] },
  NewMessage: { messages: ["new_message"] },
  MessageDelivered: { messages: ["message_delivered"] },
  MessageRead: { messages: ["message_read"] },
  ConversationRead: { messages: ["conversation_read"] },
  TypingOut: { messages: ["typing_out"] },
  UserOnline: { messages: ["user_online"] },
  UserOffline: { messages: ["user_offline"] },
  Pong: { messages: ["pong"] },
  MessageEdited: { messages: ["message_edited", "edit_message_ack"] },
  MessageDeleted: { messages: ["message_deleted", "delete_message_ack"] },
  ReactionChanged: { messages: ["reaction_changed", "react_ack"] },
  PrekeysLow: { messages: ["prekeys_low"] },
  ErrorEvent: { messages: ["error"] },
  GroupEventOut: {
    messages: [
      "group_created",
      "member_added",
      "member_removed",
      "member_left",
      "role_changed",
      "group_updated",
    ],
    shared: true,
  },
};

/** The message every refused request's ack carries. */
const ACK_ERROR = PAYLOADS.AckError.messages[0];

// ---- Reading the Rust sources --------------------------------------------------

function readSource(file) {
  return readFileSync(path.join(ROOT, file), "utf8");
}

/** Every `.rs` file under src/, relative to the repository. */
function rustFiles(dir = "src") {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const rel = `${dir}/${entry.name}`;
    if (entry.isDirectory()) return rustFiles(rel);
    return entry.name.endsWith(".rs") ? [rel] : [];
  });
}

/**
 * The event constants of events.rs, `pub const NAME: &str = "event";`, with their
 * direction from the section they stand in (`// Client → server.` or
 * `// Server → client.`); a constant whose doc comment says "Both directions" goes
 * both ways. Returns Map<event, { constant, in, out }>.
 */
function eventConstants(src) {
  const events = new Map();
  let section = null;
  let docs = [];
  for (const line of src.split("\n")) {
    if (/^\/\/\s*Client\s*→\s*server/i.test(line)) section = "in";
    else if (/^\/\/\s*Server\s*→\s*client/i.test(line)) section = "out";
    if (/^\s*\/\/\//.test(line)) {
      docs.push(line);
      continue;
    }
    const m = /^\s*pub const (\w+)\s*:\s*&(?:'static\s+)?str\s*=\s*"([^"]+)"\s*;/.exec(line);
    if (m) {
      const [, constant, event] = m;
      assert.ok(
        section,
        `${EVENTS_RS}: ${constant} stands under neither "// Client → server." nor "// Server → client."`,
      );
      assert.ok(!events.has(event), `${EVENTS_RS}: event "${event}" is defined twice`);
      const both = docs.some((d) => /both directions/i.test(d));
      events.set(event, { constant, in: both || section === "in", out: both || section === "out" });
    }
    docs = [];
  }
  return events;
}

/**
 * The structs of events.rs: Map<name, { serialize, deserialize, fields }>, each field
 * `{ name, type, option, optional, nullable }` under serde's rules: a field is left out
 * of the JSON when it has `skip_serializing_if`, and may be left out by the client when
 * a Deserialize struct has it as `Option` or `#[serde(default)]`; a serialised `Option`
 * without `skip_serializing_if` is always there, possibly `null`.
 */
function payloadStructs(src) {
  const structs = new Map();
  const re =
    /((?:^[ \t]*(?:#\[[^\n]*\]|\/\/\/[^\n]*)[ \t]*\n)*)^pub struct (\w+)(?:<[^>{]*>)?\s*\{([\s\S]*?)^\}/gm;
  for (const [, head, name, body] of src.matchAll(re)) {
    const derive = /#\[derive\(([^)]*)\)\]/.exec(head)?.[1] ?? "";
    const serialize = /\bSerialize\b/.test(derive);
    const deserialize = /\bDeserialize\b/.test(derive);
    const structSerde = [...head.matchAll(/#\[serde\(([^\n]*)\)\]/g)].map((m) => m[1]).join(", ");
    assert.ok(
      !/\b(rename_all|tag|untagged|content|transparent)\b/.test(structSerde),
      `${EVENTS_RS}: struct ${name} has #[serde(${structSerde})], which this test does not model; teach it`,
    );
    const fields = [];
    let attrs = [];
    for (const line of body.split("\n")) {
      const text = line.trim();
      if (text === "" || text.startsWith("//")) continue;
      if (text.startsWith("#[")) {
        attrs.push(text);
        continue;
      }
      const f = /^(?:pub(?:\([^)]*\))?\s+)?(\w+)\s*:\s*(.+?)\s*,?$/.exec(text);
      assert.ok(f, `${EVENTS_RS}: cannot read the field line "${text}" of struct ${name}`);
      const serde = attrs
        .filter((a) => a.startsWith("#[serde("))
        .map((a) => a.slice("#[serde(".length, -2))
        .join(", ");
      attrs = [];
      assert.ok(
        !/\bflatten\b/.test(serde),
        `${EVENTS_RS}: ${name}.${f[1]} is #[serde(flatten)], which this test does not model; teach it`,
      );
      const type = f[2].replace(/\s+/g, " ");
      const option = /^Option\s*</.test(type);
      const skip = /\bskip_serializing_if\b/.test(serde);
      const byDefault = /\bdefault\b/.test(serde);
      const optional = skip || (deserialize && (option || byDefault));
      fields.push({
        name: /\brename\s*=\s*"([^"]+)"/.exec(serde)?.[1] ?? f[1],
        type,
        option,
        optional,
        nullable: serialize && option && !skip,
      });
    }
    structs.set(name, { serialize, deserialize, fields });
  }
  return structs;
}

/** The JSON types a Rust field type serialises as (Option<T>: T's). */
function jsonTypes(rustType) {
  const t = rustType.replace(/\s+/g, "");
  const inner = /^Option<(.+)>$/.exec(t);
  if (inner) return jsonTypes(inner[1]);
  if (/^[iu](8|16|32|64|128|size)$/.test(t)) return ["integer"];
  if (/^f(32|64)$/.test(t)) return ["number"];
  if (/^(String|&('\w+)?str|Cow<('\w+,)?str>)$/.test(t)) return ["string"];
  if (t === "bool") return ["boolean"];
  if (/^(Vec<.+>|&('\w+)?\[.+\])$/.test(t)) return ["array"];
  // An id a client may send as a number or a numeric string.
  if (t === "IdField") return ["integer", "string"];
  // A stored JSON array relayed unparsed (an encrypted message's envelopes).
  if (t === "Box<RawValue>") return ["array"];
  return ["object"];
}

/** The body of a top-level `fn name(...)` in `src`, with its parameter list. */
function rustFn(src, name) {
  const start = new RegExp(`^pub (?:async )?fn ${name}\\s*(?:<[^>]*>)?\\s*\\(`, "m").exec(src);
  if (!start) return null;
  const rest = src.slice(start.index);
  const end = rest.search(/^\}/m);
  const text = end === -1 ? rest : rest.slice(0, end + 1);
  const params = text.slice(0, text.indexOf("{"));
  return { params, body: text.slice(params.length) };
}

/** The `#[error("…")]` messages of `enum name`, following `#[error(transparent)]` variants. */
function errorMessages(name, files = rustFiles()) {
  for (const file of files) {
    const src = readSource(file);
    const m = new RegExp(`^pub enum ${name}\\s*\\{([\\s\\S]*?)^\\}`, "m").exec(src);
    if (!m) continue;
    const body = m[1];
    const own = [...body.matchAll(/#\[error\("((?:[^"\\]|\\.)*)"\)\]/g)].map((x) => x[1]);
    const nested = [...body.matchAll(/#\[error\(transparent\)\]\s*\w+\(\s*(?:#\[from\]\s*)?(\w+)\s*\)/g)].map(
      (x) => x[1],
    );
    return [...own, ...nested.flatMap((inner) => errorMessages(inner, files))];
  }
  assert.fail(`no "pub enum ${name}" under src/`);
}

// ---- Reading the document ------------------------------------------------------

/** The JSON types a schema allows, through allOf/oneOf/anyOf. */
function schemaTypes(schema) {
  const types = new Set();
  const visit = (s) => {
    if (!s || typeof s !== "object") return;
    for (const t of [].concat(s.type ?? [])) types.add(t);
    for (const key of ["allOf", "oneOf", "anyOf"]) for (const sub of s[key] ?? []) visit(sub);
  };
  visit(schema);
  return types;
}

const sorted = (items) => [...items].sort();

/** Items of `a` not in `b`. */
const minus = (a, b) => [...a].filter((x) => !new Set(b).has(x));

function describeSet(label, items) {
  return items.length ? `${label}: ${items.join(", ")}` : null;
}

/** Asserts `items` is empty, naming its items. */
function assertNone(items, what) {
  assert.ok(items.length === 0, `${what}: ${[...items].join(", ")}`);
}

/**
 * Asserts the items `actual` has (as `actualName` says) are the items `expected` has
 * (as `expectedName` says), naming each one only one side has.
 */
function assertSameSet(actual, expected, what, actualName, expectedName) {
  const problems = [
    describeSet(`in ${expectedName}, not in ${actualName}`, minus(expected, actual)),
    describeSet(`in ${actualName}, not in ${expectedName}`, minus(actual, expected)),
  ]
    .filter(Boolean)
    .join("; ");
  assert.ok(problems === "", `${what}: ${problems}`);
}

// ---- The tests -------------------------------------------------------------------

let parsed; // { document, diagnostics }
let events; // Map<event, { constant, in, out }>
let structs; // Map<struct, { serialize, deserialize, fields }>

before(async () => {
  parsed = await new Parser().parse(readSource(DOC), { source: path.join(ROOT, DOC) });
  events = eventConstants(readSource(EVENTS_RS));
  structs = payloadStructs(readSource(EVENTS_RS));
});

/** The parsed document; fails (pointing at the validation test) if it did not parse. */
function doc() {
  assert.ok(parsed.document, `${DOC} did not parse or validate: see "validates with @asyncapi/parser"`);
  return parsed.document;
}

function componentMessage(key) {
  const message = doc().json().components?.messages?.[key];
  assert.ok(message, `${DOC}: no components/messages/${key}`);
  return message;
}

function componentSchema(key) {
  const schema = doc().json().components?.schemas?.[key];
  assert.ok(schema, `${DOC}: no components/schemas/${key}`);
  return schema;
}

/** The receive (client → server) or send (server → client) operations, by channel address. */
function operationsByAddress(action) {
  const byAddress = new Map();
  for (const op of doc().operations().all()) {
    if (op.action() !== action) continue;
    for (const channel of op.channels().all()) {
      const address = channel.address();
      assert.ok(!byAddress.has(address), `${DOC}: two ${action} operations on "${address}"`);
      byAddress.set(address, op);
    }
  }
  return byAddress;
}

describe(`${DOC}`, () => {
  test("validates with @asyncapi/parser (AsyncAPI 3.0): no errors", () => {
    const errors = parsed.diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
    const notes = parsed.diagnostics.filter((d) => d.severity !== DiagnosticSeverity.Error);
    const show = (d) => `  [${d.code}] ${d.message} at ${d.path.join("/") || "(root)"}`;
    if (notes.length) {
      console.log(`${DOC}: ${notes.length} warning(s)/note(s) from @asyncapi/parser:\n${notes.map(show).join("\n")}`);
    }
    assert.ok(errors.length === 0, `${DOC} has validation errors:\n${errors.map(show).join("\n")}`);
    assert.ok(parsed.document, `${DOC} did not parse`);
    assert.match(doc().version(), /^3\.0\./, "an AsyncAPI 3.0 document");
  });

  test("the servers describe Socket.IO v5 on Engine.IO v4 at /socket.io/ over ws/wss, with the handshake", () => {
    const servers = doc().servers().all();
    assert.ok(servers.length > 0, "at least one server");
    for (const server of servers) {
      const at = `servers/${server.id()}`;
      assert.ok(["ws", "wss"].includes(server.protocol()), `${at}: protocol ws or wss, not ${server.protocol()}`);
      assert.equal(server.pathname(), "/socket.io/", `${at}: pathname`);
      const sio = server.json()["x-socketio"];
      assert.ok(sio, `${at}: x-socketio`);
      assert.equal(sio.socketIoProtocol, 5, `${at}: x-socketio.socketIoProtocol`);
      assert.equal(sio.engineIoProtocol, 4, `${at}: x-socketio.engineIoProtocol`);
      assert.equal(sio.path, server.pathname(), `${at}: x-socketio.path`);
      assert.equal(sio.namespace, "/", `${at}: x-socketio.namespace`);
      assert.ok(sio.handshake?.auth?.properties?.token, `${at}: x-socketio.handshake.auth has token`);
      assert.ok(sio.handshake?.connectError?.properties?.message?.enum, `${at}: x-socketio.handshake.connectError`);
    }
  });

  test(`every event of ${EVENTS_RS} is a channel, and every channel an event`, () => {
    const addresses = doc()
      .channels()
      .all()
      .map((c) => c.address());
    assertSameSet(addresses, [...events.keys()], "events", DOC, EVENTS_RS);
    for (const channel of doc().channels().all()) {
      assert.equal(channel.id(), channel.address(), `channel "${channel.id()}" is keyed by its event name`);
    }
  });

  test(`each event goes the way ${EVENTS_RS} says: received from clients, sent to clients, or both`, () => {
    const received = operationsByAddress("receive");
    const sent = operationsByAddress("send");
    const clientToServer = [...events].filter(([, e]) => e.in).map(([name]) => name);
    const serverToClient = [...events].filter(([, e]) => e.out).map(([name]) => name);
    assertSameSet([...received.keys()], clientToServer, "client → server events (receive operations)", DOC, EVENTS_RS);
    assertSameSet([...sent.keys()], serverToClient, "server → client events (send operations)", DOC, EVENTS_RS);
    // The event's own message (not an ack) is named after the event.
    for (const [address, op] of [...received, ...sent]) {
      for (const message of op.messages().all()) {
        assert.equal(message.name(), address, `operation ${op.id()}: message "${message.id()}" is named after its event`);
      }
    }
  });

  test("acknowledgements: a reply exactly where the handler takes an ack, with what it sends", () => {
    const connect = readSource(CONNECT_RS);
    const received = operationsByAddress("receive");
    for (const [event, { constant, in: fromClient }] of events) {
      if (!fromClient) continue;
      const on = new RegExp(`\\.on\\(\\s*events::${constant}\\s*,\\s*(\\w+)::(\\w+)\\s*\\)`).exec(connect);
      assert.ok(on, `${CONNECT_RS}: no s.on(events::${constant}, module::handler) for "${event}"`);
      const [, module, fn] = on;
      const file = `src/socket/${module}.rs`;
      const handler = rustFn(readSource(file), fn);
      assert.ok(handler, `${file}: no "pub async fn ${fn}(…)" (the "${event}" handler)`);
      const takesAck = /\bAckSender\b/.test(handler.params);
      const acksSuccess = /\back\s*\.\s*send\s*\(/.test(handler.body);
      const acksError = /\breply_error\s*\(\s*&?\w+\s*,\s*ack\b/.test(handler.body);

      const op = received.get(event);
      assert.ok(op, `${DOC}: no receive operation for "${event}"`);
      const reply = op.reply();
      assert.equal(
        Boolean(reply),
        takesAck,
        `"${event}": ${file} ${fn}() ${takesAck ? "takes" : "does not take"} an AckSender, ` +
          `so operation ${op.id()} must ${takesAck ? "have" : "not have"} a reply`,
      );
      if (!reply) continue;
      const replies = reply.messages().all().map((m) => m.id());
      const success = replies.filter((id) => id !== ACK_ERROR);
      assert.equal(
        success.length > 0,
        acksSuccess,
        `"${event}": ${fn}() ${acksSuccess ? "acks success (ack.send)" : "never acks success"}, ` +
          `but the reply of ${op.id()} lists ${success.length ? success.join(", ") : "no success message"}`,
      );
      assert.equal(
        replies.includes(ACK_ERROR),
        acksError,
        `"${event}": ${fn}() ${acksError ? "answers refusals on the ack (reply_error)" : "never acks a refusal"}, ` +
          `so the reply of ${op.id()} must ${acksError ? "" : "not "}list ${ACK_ERROR}`,
      );
      // The ack travels on the request's socket: the reply stays in the request's channel.
      const replyChannel = reply.channel();
      assert.ok(
        replyChannel?.address() === event,
        `${op.id()}: the ack comes back on "${event}", not "${replyChannel?.address()}": reply.channel must be "${event}"`,
      );
      const inChannel = replyChannel.messages().all().map((m) => m.id());
      assertNone(minus(replies, inChannel), `${op.id()}: reply messages not in channel "${event}"`);
    }
  });

  test(`every payload struct of ${EVENTS_RS} is described, field by field`, () => {
    assertSameSet(
      Object.keys(PAYLOADS),
      [...structs.keys()],
      "payload structs (map each to where the document describes it in PAYLOADS, in this test)",
      "PAYLOADS",
      EVENTS_RS,
    );
    for (const [name, where] of Object.entries(PAYLOADS)) {
      const struct = structs.get(name);
      assert.ok(struct, `PAYLOADS.${name}: no such struct in ${EVENTS_RS}`);
      const targets = [
        ...(where.messages ?? []).map((key) => [`components/messages/${key} payload`, componentMessage(key).payload]),
        ...(where.schemas ?? []).map((key) => [`components/schemas/${key}`, componentSchema(key)]),
      ];
      assert.ok(targets.length > 0, `PAYLOADS.${name} names no message or schema`);
      const fieldNames = struct.fields.map((f) => f.name);
      const mustHave = struct.fields.filter((f) => !f.optional).map((f) => f.name);
      const seen = new Set();

      for (const [label, schema] of targets) {
        const at = `${name} → ${label}`;
        assert.ok(schema?.properties, `${at}: an object schema with properties`);
        const props = Object.keys(schema.properties);
        const required = schema.required ?? [];
        props.forEach((p) => seen.add(p));
        if (where.shared) {
          assertNone(minus(props, fieldNames), `${at}: properties that ${name} does not have`);
          assertNone(minus(mustHave, required), `${at}: fields ${name} always has, not required`);
        } else {
          assertSameSet(props, fieldNames, `${at}: properties`, DOC, EVENTS_RS);
          const expected = [...mustHave, ...(where.alsoRequired ?? [])];
          assertSameSet(
            required,
            expected,
            `${at}: required properties (non-Option fields${where.why ? `; also ${where.why}` : ""})`,
            DOC,
            EVENTS_RS,
          );
        }
        for (const field of struct.fields) {
          const prop = schema.properties[field.name];
          if (!prop) continue;
          const types = schemaTypes(prop);
          const documented = sorted(minus(types, ["null"])).join(" | ") || "(none)";
          const expected = sorted(jsonTypes(field.type)).join(" | ");
          assert.ok(
            documented === expected,
            `${at}: "${field.name}" is Rust ${field.type}, so JSON ${expected}; documented as ${documented}`,
          );
          if (field.nullable) {
            assert.ok(types.has("null"), `${at}: "${field.name}" is serialised as null when None: allow null`);
          } else if (!field.option) {
            assert.ok(!types.has("null"), `${at}: "${field.name}" (Rust ${field.type}) is never null`);
          }
        }
      }
      if (where.shared) {
        assertSameSet([...seen], fieldNames, `${name} → all its messages together: properties`, DOC, EVENTS_RS);
      }
    }
  });

  test(`the error codes are exactly DomainError::code()'s (${ERROR_RS})`, () => {
    const code = /pub fn code\(&self\)[^{]*\{([\s\S]*?)\n    \}\n/.exec(readSource(ERROR_RS));
    assert.ok(code, `${ERROR_RS}: no "pub fn code(&self)"`);
    const codes = [...new Set([...code[1].matchAll(/"([a-z_]+)"/g)].map((m) => m[1]))];
    assert.ok(codes.length > 5, `${ERROR_RS}: found only ${codes.length} codes in code()`);
    const schema = componentSchema("ErrorCode");
    assertSameSet(schema.enum ?? [], codes, "error codes (components/schemas/ErrorCode)", DOC, ERROR_RS);
    // Both refusals (the error event and the ack) use them.
    assert.deepEqual(
      componentSchema("ErrorBody").properties?.code?.enum,
      schema.enum,
      "the ack's error.code is an ErrorCode",
    );
    assert.deepEqual(
      componentMessage("error").payload.properties?.code?.enum,
      schema.enum,
      "the error event's code is an ErrorCode",
    );
  });

  test("the connect_error messages are exactly the handshake's refusals (AuthError)", () => {
    const refusals = errorMessages("AuthError");
    assert.ok(refusals.length > 5, `found only ${refusals.length} AuthError messages`);
    const documented = componentSchema("ConnectError").properties?.message?.enum ?? [];
    assertSameSet(documented, refusals, "connect_error messages (components/schemas/ConnectError)", DOC, "src/");
  });

  test("every example matches its message's payload schema", () => {
    const ajv = new Ajv({ strict: false, allErrors: true });
    addFormats(ajv);
    let checked = 0;
    for (const message of doc().components().messages().all()) {
      const examples = message.json().examples ?? [];
      assert.ok(examples.length > 0, `components/messages/${message.id()}: add an example`);
      const validate = ajv.compile(message.payload().json());
      for (const [i, example] of examples.entries()) {
        const ok = validate(example.payload);
        assert.ok(
          ok,
          `components/messages/${message.id()} example ${example.name ?? i}: ` + ajv.errorsText(validate.errors),
        );
        checked++;
      }
    }
    assert.ok(checked > 0);
  });
});
