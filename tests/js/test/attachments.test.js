// Attachments: uploads by REST (multipart or a raw body), typed by their content and
// limited in size, stored once per content; messages that carry them (new_message,
// history, sync, changes); downloads for the uploader and the members of a
// conversation where a message carries one, with ranges; idempotent uploads and
// sends; the sweep of uploads no message carried (also with two nodes racing it); a
// deleted message letting its go; thumbnails; and the same on S3 (moto's server).
//
// "Nothing arrives" is always checked after something that must arrive later: a
// refused send is followed by an accepted one, whose message must be the next one.

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { crc32, deflateSync } from "node:zlib";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { backend, startCluster, startServer } from "../lib/harness.js";
import { connect, closeAll } from "../lib/client.js";
import { history, eventually } from "../lib/api.js";
import { ensureMoto, startMoto } from "../lib/moto.js";

const MAX_BYTES = 300_000;
let server;
let storage;
before(async () => {
  storage = await mkdtemp(path.join(tmpdir(), "rc-attachments-"));
  server = await startServer({ env: { ATTACHMENTS_DIR: storage, ATTACHMENT_MAX_BYTES: String(MAX_BYTES) } });
});
after(async () => {
  await server?.stop();
  if (storage) await rm(storage, { recursive: true, force: true });
});

/** A PNG header of `width` × `height` followed by `extra` random bytes (unique content). */
function png(width = 640, height = 480, extra = 2_000) {
  const header = Buffer.alloc(24);
  Buffer.from("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR", "latin1").copy(header);
  header.writeUInt32BE(width, 16);
  header.writeUInt32BE(height, 20);
  return Buffer.concat([header, Buffer.from([8, 2, 0, 0, 0, 0, 0, 0, 0]), randomBytes(extra)]);
}

/** A real, decodable PNG: `width` × `height`, RGB or RGBA, stripes (small to store) and
 * a random first row (unique content). */
function realPng(width, height, { alpha = false } = {}) {
  const channels = alpha ? 4 : 3;
  const rows = [Buffer.from([0]), randomBytes(width * channels)];
  for (let y = 1; y < height; y++) rows.push(Buffer.from([0]), Buffer.alloc(width * channels, (y * 7) & 255));
  const chunk = (type, data) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([Buffer.from(type), data])));
    return Buffer.concat([length, Buffer.from(type), data, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, alpha ? 6 : 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from("\x89PNG\r\n\x1a\n", "latin1"),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(Buffer.concat(rows))),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

/** A JPEG's or PNG's width and height, read from its header. */
function dimensions(bytes) {
  if (bytes[0] === 0x89) return [bytes.readUInt32BE(16), bytes.readUInt32BE(20)];
  for (let i = 2; i < bytes.length; ) {
    const marker = bytes[i + 1];
    if (marker >= 0xc0 && marker <= 0xc2) return [bytes.readUInt16BE(i + 7), bytes.readUInt16BE(i + 5)];
    i += 2 + bytes.readUInt16BE(i + 2);
  }
  throw new Error("no frame header");
}

/** A PDF's signature and `extra` random bytes. */
function pdf(extra = 1_000) {
  return Buffer.concat([Buffer.from("%PDF-1.7\n"), randomBytes(extra)]);
}

const HTML = Buffer.from("<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>");
const ELF = Buffer.concat([Buffer.from("7f454c46020101000000000000000000", "hex"), Buffer.from("02003e00", "hex"), randomBytes(200)]);

const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

/** A raw upload; resolves to { status, body, headers }. */
async function uploadRaw(user, bytes, { name, headers = {}, contentType = "application/octet-stream" } = {}) {
  const query = name === undefined ? "" : `?name=${encodeURIComponent(name)}`;
  return server.http("POST", `/api/attachments${query}`, {
    token: user.token,
    body: bytes,
    headers: { "content-type": contentType, ...headers },
  });
}

/** A multipart upload of one file part. */
async function uploadForm(user, bytes, filename, { type = "application/octet-stream", headers = {} } = {}) {
  const form = new FormData();
  form.append("file", new Blob([bytes], { type }), filename);
  const res = await fetch(`${server.url}/api/attachments`, {
    method: "POST",
    headers: { authorization: `Bearer ${user.token}`, ...headers },
    body: form,
  });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text), headers: res.headers, text };
}

/** Uploads `bytes` (raw, named `name`), asserting 201; resolves to the attachment. */
async function uploaded(user, bytes, name = "file.bin") {
  const res = await uploadRaw(user, bytes, { name });
  assert.equal(res.status, 201, `upload of ${name}: ${res.status} ${res.text}`);
  return res.body;
}

/** `GET /api/attachments/{id}` as `user`; resolves to { status, bytes, headers, body }. */
async function download(user, id, headers = {}) {
  const res = await fetch(`${server.url}/api/attachments/${id}`, {
    headers: { authorization: `Bearer ${user.token}`, ...headers },
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  let body = null;
  try {
    body = JSON.parse(bytes.toString("utf8"));
  } catch {
    // The file itself.
  }
  return { status: res.status, bytes, headers: res.headers, body };
}

/** A refusal: `status` with `{ error, code }`. */
function refused(res, status, code) {
  assert.equal(res.status, status, `expected ${status} ${code}: ${res.status} ${JSON.stringify(res.body)}`);
  assert.equal(res.body?.code, code, JSON.stringify(res.body));
  assert.equal(typeof res.body.error, "string");
}

/** Files stored under the storage's `blobs/` folder. */
async function storedBlobs() {
  return readdir(path.join(storage, "blobs")).catch(() => []);
}

/** Sends from `socket`, asserting it was accepted; resolves to the ack. */
async function say(socket, payload) {
  const ack = await socket.request("send_message", payload);
  assert.equal(ack?.status, "sent", `${socket.name} sending ${JSON.stringify(payload)}: ${JSON.stringify(ack)}`);
  return ack;
}

describe("upload", () => {
  test("multipart: the file part's name, the sniffed type, size, checksum and an image's dimensions", async () => {
    const alice = await server.register("alice");
    const bytes = png(640, 480);
    // The declared type is ignored: the content says PNG.
    const res = await uploadForm(alice, bytes, "holiday photo.png", { type: "text/plain" });
    assert.equal(res.status, 201, res.text);
    assert.deepEqual(
      { ...res.body, id: undefined },
      { id: undefined, name: "holiday photo.png", mime_type: "image/png", size: bytes.length, sha256: sha256(bytes), width: 640, height: 480 },
    );
    assert.equal(typeof res.body.id, "number");
  });

  test("raw body: named by ?name=, or after its type without one; no dimensions for a PDF", async () => {
    const alice = await server.register("alice");
    const bytes = pdf();
    const named = await uploaded(alice, bytes, "../../report Q3.pdf");
    assert.deepEqual(
      { ...named, id: undefined },
      { id: undefined, name: "report Q3.pdf", mime_type: "application/pdf", size: bytes.length, sha256: sha256(bytes) },
    );
    const unnamed = await uploadRaw(alice, pdf());
    assert.equal(unnamed.status, 201, unnamed.text);
    assert.equal(unnamed.body.name, "attachment.pdf");
  });

  test("oversized: 413 attachment_too_large, by Content-Length or while streaming, multipart or raw", async () => {
    const alice = await server.register("alice");
    const big = pdf(MAX_BYTES);
    refused(await uploadRaw(alice, big, { name: "big.pdf" }), 413, "attachment_too_large");
    refused(await uploadForm(alice, big, "big.pdf"), 413, "attachment_too_large");
    // No Content-Length (chunked): refused once the limit is passed.
    const chunks = [big.subarray(0, 100_000), big.subarray(100_000, 200_000), big.subarray(200_000)];
    const res = await fetch(`${server.url}/api/attachments?name=big.pdf`, {
      method: "POST",
      headers: { authorization: `Bearer ${alice.token}`, "content-type": "application/octet-stream" },
      body: new ReadableStream({
        pull(controller) {
          const next = chunks.shift();
          if (next) controller.enqueue(next);
          else controller.close();
        },
      }),
      duplex: "half",
    });
    refused({ status: res.status, body: await res.json() }, 413, "attachment_too_large");
    // A form whose other parts run past the limit (no Content-Length) is refused too.
    const boundary = "----bound";
    const form = [
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\n`),
      Buffer.alloc(MAX_BYTES + 100_000, "a"),
      Buffer.from(`\r\n--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n\r\n`),
      pdf(),
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ];
    const padded = await fetch(`${server.url}/api/attachments`, {
      method: "POST",
      headers: { authorization: `Bearer ${alice.token}`, "content-type": `multipart/form-data; boundary=${boundary}` },
      body: new ReadableStream({
        pull(controller) {
          const next = form.shift();
          if (next) controller.enqueue(next);
          else controller.close();
        },
      }),
      duplex: "half",
    });
    refused({ status: padded.status, body: await padded.json() }, 413, "attachment_too_large");
    // Exactly the limit is accepted.
    const res2 = await uploadRaw(alice, pdf(MAX_BYTES - 9), { name: "exact.pdf" });
    assert.equal(res2.status, 201, res2.text);
    assert.equal(res2.body.size, MAX_BYTES);
  });

  test("disguised: HTML or an ELF binary named .png and declared image/png is refused 415", async () => {
    const alice = await server.register("alice");
    const before = (await storedBlobs()).length;
    for (const bytes of [HTML, ELF]) {
      refused(await uploadForm(alice, bytes, "cat.png", { type: "image/png" }), 415, "unsupported_attachment_type");
      refused(
        await uploadRaw(alice, bytes, { name: "cat.png", contentType: "image/png" }),
        415,
        "unsupported_attachment_type",
      );
    }
    refused(await uploadRaw(alice, Buffer.alloc(0), { name: "empty.png" }), 400, "invalid_payload");
    assert.equal((await storedBlobs()).length, before, "nothing refused was stored");
    const noToken = await server.http("POST", "/api/attachments?name=a.png", { body: png() });
    assert.equal(noToken.status, 401);
  });

  test("the same content is stored once, whoever uploads it, each upload its own attachment", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const bytes = png(10, 10);
    const before = await storedBlobs();
    const first = await uploaded(alice, bytes, "a.png");
    const second = await uploaded(bob, bytes, "b.png");
    const third = await uploaded(alice, bytes, "c.png");
    assert.equal(new Set([first.id, second.id, third.id]).size, 3);
    assert.deepEqual([second.sha256, third.sha256], [first.sha256, first.sha256]);
    const after = await storedBlobs();
    assert.deepEqual(after.filter((f) => !before.includes(f)), [sha256(bytes)], "one object, named by its checksum");
  });

  test("idempotent: the same Idempotency-Key, or the same name and content, answers the first upload", async () => {
    const alice = await server.register("alice");
    const bytes = pdf();
    const key = { "idempotency-key": `upload-${randomBytes(4).toString("hex")}` };
    const first = await uploadRaw(alice, bytes, { name: "a.pdf", headers: key });
    assert.equal(first.status, 201, first.text);
    const retry = await uploadForm(alice, bytes, "a.pdf", { headers: key });
    assert.equal(retry.status, 200, retry.text);
    assert.deepEqual(retry.body, first.body);
    refused(await uploadRaw(alice, pdf(), { name: "a.pdf", headers: key }), 409, "idempotency_key_reused");
    refused(await uploadRaw(alice, pdf(), { name: "a.pdf", headers: { "idempotency-key": "has space" } }), 400, "invalid_payload");

    // Without a key: the same user, name and content.
    const plain = pdf();
    const once = await uploaded(alice, plain, "same.pdf");
    const again = await uploadRaw(alice, plain, { name: "same.pdf" });
    assert.equal(again.status, 200, again.text);
    assert.equal(again.body.id, once.id);
    const renamed = await uploaded(alice, plain, "other name.pdf");
    assert.notEqual(renamed.id, once.id);
    const bob = await server.register("bob");
    assert.notEqual((await uploaded(bob, plain, "same.pdf")).id, once.id, "another user's upload is theirs");
  });
});

describe("messages with attachments", () => {
  test("sent with no text: new_message, history, sync and changes carry the attachment; members download it", async () => {
    const [alice, bob, carol] = await server.registerMany("alice", "bob", "carol");
    const [aliceSocket, bobSocket] = await Promise.all([connect(server, alice), connect(server, bob)]);
    const bytes = png(32, 16, 5_000);
    const file = await uploaded(alice, bytes, "pic.png");
    const expected = { id: file.id, name: "pic.png", mime_type: "image/png", size: bytes.length, sha256: sha256(bytes), width: 32, height: 16 };

    const sent = await say(aliceSocket, { to_user_id: bob.id, attachment_id: file.id });
    const live = await bobSocket.expect("new_message");
    assert.equal(live.message_id, sent.message_id);
    assert.equal(live.content, "");
    assert.deepEqual(live.attachment, expected);

    const shown = (await history(server, bob, sent.conversation_id)).messages.find((m) => m.id === sent.message_id);
    assert.deepEqual(shown.attachment, expected);
    const synced = await bobSocket.request("sync", { since: [{ conversation_id: sent.conversation_id, after_seq: 0 }] });
    assert.deepEqual(synced.messages.find((m) => m.message_id === sent.message_id).attachment, expected);
    const changed = await bobSocket.request("sync", { changes: [{ conversation_id: sent.conversation_id, after_version: 0 }] });
    assert.deepEqual(changed.changes.find((m) => m.message_id === sent.message_id).attachment, expected);
    const rest = await server.http("GET", `/api/messages/changes?conversation_id=${sent.conversation_id}`, { token: bob.token });
    assert.deepEqual(rest.body.changes.find((m) => m.id === sent.message_id).attachment, expected);

    // A caption beside it, and a message without one shows none.
    await say(aliceSocket, { to_user_id: bob.id, attachment_id: file.id, content: "look" });
    const captioned = await bobSocket.expect("new_message");
    assert.equal(captioned.content, "look");
    assert.deepEqual(captioned.attachment, expected);
    await say(aliceSocket, { to_user_id: bob.id, content: "plain" });
    assert.equal((await bobSocket.expect("new_message")).attachment, undefined);
    const plain = (await history(server, bob, sent.conversation_id)).messages[0];
    assert.equal(plain.attachment, null);

    // Bob, a member, downloads it: whole, a range, a suffix, past the end.
    const whole = await download(bob, file.id);
    assert.equal(whole.status, 200);
    assert.ok(whole.bytes.equals(bytes), "the bytes uploaded");
    assert.equal(whole.headers.get("content-type"), "image/png");
    assert.equal(whole.headers.get("x-content-type-options"), "nosniff");
    assert.equal(whole.headers.get("etag"), `"${sha256(bytes)}"`);
    assert.equal(whole.headers.get("accept-ranges"), "bytes");
    assert.equal(whole.headers.get("content-disposition"), `attachment; filename="pic.png"; filename*=UTF-8''pic%2Epng`);
    const part = await download(bob, file.id, { range: "bytes=10-109" });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get("content-range"), `bytes 10-109/${bytes.length}`);
    assert.ok(part.bytes.equals(bytes.subarray(10, 110)));
    const tail = await download(bob, file.id, { range: "bytes=-7" });
    assert.equal(tail.status, 206);
    assert.ok(tail.bytes.equals(bytes.subarray(bytes.length - 7)));
    const past = await download(bob, file.id, { range: `bytes=${bytes.length}-` });
    assert.equal(past.status, 416);
    assert.equal(past.headers.get("content-range"), `bytes */${bytes.length}`);
    const cached = await download(bob, file.id, { "if-none-match": `"${sha256(bytes)}"` });
    assert.equal(cached.status, 304);

    // Carol is in no conversation where it was sent: as if it did not exist.
    const stranger = await download(carol, file.id);
    refused({ status: stranger.status, body: stranger.body }, 404, "attachment_not_found");
    const missing = await download(carol, file.id + 100_000);
    refused({ status: missing.status, body: missing.body }, 404, "attachment_not_found");
    assert.equal((await download({ token: "nope" }, file.id)).status, 401);
    await closeAll(aliceSocket, bobSocket);
  });

  test("only its uploader sends an attachment; a bad attachment_id is refused; a resend stays one message", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const [aliceSocket, bobSocket] = await Promise.all([connect(server, alice), connect(server, bob)]);
    const alicesFile = await uploaded(alice, pdf(), "mine.pdf");

    const stolen = await bobSocket.request("send_message", { to_user_id: alice.id, attachment_id: alicesFile.id });
    assert.equal(stolen?.error?.code, "attachment_not_found", JSON.stringify(stolen));
    assert.equal((await bobSocket.expect("error")).code, "attachment_not_found");
    const unknown = await aliceSocket.request("send_message", { to_user_id: bob.id, attachment_id: 99_999_999 });
    assert.equal(unknown?.error?.code, "attachment_not_found", JSON.stringify(unknown));
    for (const attachment_id of ["abc", -1, 0]) {
      const bad = await aliceSocket.request("send_message", { to_user_id: bob.id, attachment_id });
      assert.equal(bad?.error?.code, "invalid_payload", JSON.stringify(bad));
    }
    const noContent = await aliceSocket.request("send_message", { to_user_id: bob.id });
    assert.equal(noContent?.error?.code, "invalid_payload", "no content and no attachment");
    // Uploads are typed and served in the clear: they do not ride in an encrypted message.
    const sealed = await aliceSocket.request("send_message", {
      to_user_id: bob.id,
      attachment_id: alicesFile.id,
      encrypted: { sender_device_id: 1, envelopes: [{ user_id: bob.id, device_id: 1, type: 3, body: "AAAA" }] },
    });
    assert.equal(sealed?.error?.code, "invalid_payload", JSON.stringify(sealed));
    assert.match(sealed.error.message, /encrypted message cannot carry attachment_id/);

    const payload = { to_user_id: bob.id, attachment_id: alicesFile.id, client_msg_id: `c-${randomBytes(4).toString("hex")}` };
    const first = await say(aliceSocket, payload);
    const again = await say(aliceSocket, payload);
    assert.equal(again.message_id, first.message_id, "the retry answers the first message");
    await say(aliceSocket, { to_user_id: bob.id, content: "after" });
    // Bob gets the attachment message once, then "after": nothing of the refused or retried sends.
    const [one, two] = await bobSocket.expectMany("new_message", 2);
    assert.equal(one.message_id, first.message_id);
    assert.equal(one.attachment.id, alicesFile.id);
    assert.equal(two.content, "after");
    await bobSocket.expectNone("new_message");
    await closeAll(aliceSocket, bobSocket);
  });

  test("a deleted message's tombstone has no attachment, and its members can no longer download it", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const [aliceSocket, bobSocket] = await Promise.all([connect(server, alice), connect(server, bob)]);
    const file = await uploaded(alice, png(), "gone.png");
    const sent = await say(aliceSocket, { to_user_id: bob.id, attachment_id: file.id });
    await bobSocket.expect("new_message");
    assert.equal((await download(bob, file.id)).status, 200);

    const deleted = await aliceSocket.request("delete_message", { message_id: sent.message_id });
    assert.equal(deleted.error, undefined, JSON.stringify(deleted));
    await bobSocket.expect("message_deleted");
    const tomb = (await history(server, bob, sent.conversation_id)).messages.find((m) => m.id === sent.message_id);
    assert.equal(tomb.deleted, true);
    assert.equal(tomb.attachment, null);
    const changed = await bobSocket.request("sync", { changes: [{ conversation_id: sent.conversation_id, after_version: 0 }] });
    assert.equal(changed.changes.find((m) => m.message_id === sent.message_id).attachment, null);
    const refusedDownload = await download(bob, file.id);
    refused({ status: refusedDownload.status, body: refusedDownload.body }, 404, "attachment_not_found");
    assert.equal((await download(alice, file.id)).status, 200, "its uploader still has it");
    await closeAll(aliceSocket, bobSocket);
  });

  test("a member who leaves the group can no longer download what was sent there", async () => {
    const [alice, bob] = await server.registerMany("alice", "bob");
    const res = await server.http("POST", "/api/groups", { token: alice.token, json: { name: "files", member_ids: [bob.id] } });
    assert.equal(res.status, 201, res.text);
    const group = res.body.group;
    const aliceSocket = await connect(server, alice);
    const file = await uploaded(alice, pdf(), "minutes.pdf");
    await say(aliceSocket, { conversation_id: group.conversation_id, attachment_id: file.id });
    assert.equal((await download(bob, file.id)).status, 200);
    const left = await server.http("POST", `/api/groups/${group.conversation_id}/leave`, { token: bob.token });
    assert.equal(left.status, 200, left.text);
    assert.equal((await download(bob, file.id)).status, 404);
    await closeAll(aliceSocket);
  });
});

describe("thumbnails", () => {
  test("an image's preview: at most 256 pixels a side, JPEG or PNG for transparency, kept once made; members only", async () => {
    const [alice, bob, carol] = await server.registerMany("alice", "bob", "carol");
    const aliceSocket = await connect(server, alice);
    const photo = await uploaded(alice, realPng(600, 300), "photo.png");
    const icon = await uploaded(alice, realPng(40, 30, { alpha: true }), "icon.png");
    const paper = await uploaded(alice, pdf(), "paper.pdf");
    for (const file of [photo, icon, paper]) await say(aliceSocket, { to_user_id: bob.id, attachment_id: file.id });
    const thumbnail = (user, id, headers = {}) =>
      fetch(`${server.url}/api/attachments/${id}/thumbnail`, { headers: { authorization: `Bearer ${user.token}`, ...headers } });

    const small = await thumbnail(bob, photo.id);
    assert.equal(small.status, 200);
    assert.equal(small.headers.get("content-type"), "image/jpeg");
    assert.equal(small.headers.get("x-content-type-options"), "nosniff");
    const smallBytes = Buffer.from(await small.arrayBuffer());
    assert.deepEqual(dimensions(smallBytes), [256, 128], "the long side is 256, the aspect kept");
    assert.ok((await readdir(path.join(storage, "thumbnails"))).includes(photo.sha256), "kept in storage");
    const again = await thumbnail(alice, photo.id);
    assert.ok(Buffer.from(await again.arrayBuffer()).equals(smallBytes), "the kept one is served again");
    assert.equal((await thumbnail(bob, photo.id, { "if-none-match": small.headers.get("etag") })).status, 304);

    const transparent = await thumbnail(bob, icon.id);
    assert.equal(transparent.headers.get("content-type"), "image/png");
    assert.deepEqual(dimensions(Buffer.from(await transparent.arrayBuffer())), [40, 30], "a small image keeps its size");

    assert.equal((await thumbnail(bob, paper.id)).status, 404, "a PDF has none");
    assert.equal((await thumbnail(carol, photo.id)).status, 404, "not for a stranger");
    await closeAll(aliceSocket);
  });
});

describe("orphan sweep", () => {
  let swept;
  let sweptStorage;
  before(async () => {
    sweptStorage = await mkdtemp(path.join(tmpdir(), "rc-attachments-sweep-"));
    swept = await startServer({
      env: { ATTACHMENTS_DIR: sweptStorage, ATTACHMENT_ORPHAN_TTL_SECS: "3", ATTACHMENT_SWEEP_INTERVAL_MS: "200" },
    });
  });
  after(async () => {
    await swept?.stop();
    if (sweptStorage) await rm(sweptStorage, { recursive: true, force: true });
  });

  test("uploads no message carried are removed after the TTL; content another attachment needs stays", async () => {
    const [alice, bob, carol] = await swept.registerMany("alice", "bob", "carol");
    const put = async (user, bytes, name) => {
      const res = await swept.http("POST", `/api/attachments?name=${name}`, {
        token: user.token,
        body: bytes,
        headers: { "content-type": "application/octet-stream" },
      });
      assert.equal(res.status, 201, res.text);
      return res.body;
    };
    const get = async (user, id) =>
      (await fetch(`${swept.url}/api/attachments/${id}`, { headers: { authorization: `Bearer ${user.token}` } })).status;
    const blobs = () => readdir(path.join(sweptStorage, "blobs")).catch(() => []);

    const lonely = pdf();
    const shared = png();
    const orphan = await put(alice, lonely, "orphan.pdf");
    const alicesCopy = await put(alice, shared, "shared.png");
    const bobsCopy = await put(bob, shared, "shared.png");
    const bobSocket = await connect(swept, bob);
    await say(bobSocket, { to_user_id: carol.id, attachment_id: bobsCopy.id });

    await eventually(async () => (await get(alice, orphan.id)) === 404, { timeoutMs: 15_000, what: "the orphan is swept" });
    await eventually(async () => (await get(alice, alicesCopy.id)) === 404, { timeoutMs: 15_000, what: "alice's unsent copy is swept" });
    const left = await blobs();
    assert.ok(!left.includes(sha256(lonely)), "the orphan's content is gone");
    assert.ok(left.includes(sha256(shared)), "content a sent attachment needs stays");
    assert.equal(await get(carol, bobsCopy.id), 200, "the sent attachment still downloads");
    assert.equal(await get(bob, bobsCopy.id), 200);
    await closeAll(bobSocket);
  });
});

describe("two nodes sweeping one storage", () => {
  // On PostgreSQL two server processes share the database and the folder, both sweeping
  // every 20 ms with a TTL of 0 (an unsent upload goes at once); on SQLite the same
  // runs through one node. Round after round, alice's unsent upload of one content is
  // swept while bob uploads that same content on the other node and sends it: a send
  // either loses the race (attachment_not_found: swept before it was sent) or its
  // attachment downloads from every node, its object intact.
  test("a content swept on one node while uploaded and sent on another: every sent attachment downloads", async (t) => {
    const shared = await mkdtemp(path.join(tmpdir(), "rc-attachments-nodes-"));
    const env = { ATTACHMENTS_DIR: shared, ATTACHMENT_ORPHAN_TTL_SECS: "0", ATTACHMENT_SWEEP_INTERVAL_MS: "20", RATE_SENDS_PER_SEC: "0" };
    const nodes = backend === "postgres" ? await startCluster(2, { env }) : [await startServer({ env })];
    const [a, b = a] = nodes;
    try {
      const [alice, carol] = await a.registerMany("alice", "carol");
      const bob = await b.register("bob");
      const bobSocket = await connect(b, bob);
      const put = async (node, user, bytes, name) => {
        const res = await node.http("POST", `/api/attachments?name=${name}`, {
          token: user.token,
          body: bytes,
          headers: { "content-type": "application/octet-stream" },
        });
        assert.equal(res.status, 201, res.text);
        return res.body;
      };
      const get = (node, user, id) =>
        fetch(`${node.url}/api/attachments/${id}`, { headers: { authorization: `Bearer ${user.token}` } });
      const content = png(16, 16, 20_000);
      const sent = [];
      const orphans = [];
      for (let round = 0; round < 30; round++) {
        const [orphan, copy] = await Promise.all([
          put(a, alice, content, `orphan-${round}.png`),
          put(b, bob, content, `sent-${round}.png`),
        ]);
        orphans.push(orphan);
        const ack = await bobSocket.request("send_message", { to_user_id: carol.id, attachment_id: copy.id });
        if (ack?.status === "sent") sent.push(copy);
        else assert.equal(ack?.error?.code, "attachment_not_found", JSON.stringify(ack));
      }
      assert.ok(sent.length > 0, "some sends beat the sweep");
      t.diagnostic(`${sent.length} of 30 sends beat the sweep`);
      for (const copy of sent) {
        for (const node of nodes) {
          const res = await get(node, carol, copy.id);
          assert.equal(res.status, 200, `sent attachment ${copy.id}`);
          assert.ok(Buffer.from(await res.arrayBuffer()).equals(content));
        }
      }
      for (const orphan of orphans) {
        await eventually(async () => (await get(a, alice, orphan.id)).status === 404, { what: `orphan ${orphan.id} is swept` });
      }
      assert.deepEqual(await readdir(path.join(shared, "blobs")), [sha256(content)], "the sent content's object stays");
      await closeAll(bobSocket);
    } finally {
      await Promise.all(nodes.map((node) => node.stop()));
      await rm(shared, { recursive: true, force: true });
    }
  });
});

describe("S3 storage (moto's S3-compatible server)", () => {
  const BUCKET = "chat-attachments";
  let moto;
  let s3server;
  let skip = null;
  before(async () => {
    skip = ensureMoto();
    if (skip) return;
    moto = await startMoto();
    await moto.createBucket(BUCKET);
    s3server = await startServer({
      env: {
        ATTACHMENTS_S3_BUCKET: BUCKET,
        ATTACHMENTS_S3_ENDPOINT: moto.url,
        ATTACHMENTS_S3_REGION: "us-east-1",
        ATTACHMENTS_S3_ACCESS_KEY_ID: "testing",
        ATTACHMENTS_S3_SECRET_ACCESS_KEY: "testing",
        ATTACHMENTS_S3_ALLOW_HTTP: "true",
        ATTACHMENT_MAX_BYTES: String(MAX_BYTES),
        ATTACHMENT_ORPHAN_TTL_SECS: "3",
        ATTACHMENT_SWEEP_INTERVAL_MS: "200",
      },
    });
  });
  after(async () => {
    await s3server?.stop();
    await moto?.stop();
  });

  test("uploads land in the bucket once per content; members download with ranges; refusals leave nothing; orphans go", async (t) => {
    if (skip) return t.skip(skip);
    const [alice, bob] = await s3server.registerMany("alice", "bob");
    const put = async (user, bytes, name, contentType = "application/octet-stream") =>
      s3server.http("POST", `/api/attachments?name=${name}`, { token: user.token, body: bytes, headers: { "content-type": contentType } });
    const get = (user, id, headers = {}) =>
      fetch(`${s3server.url}/api/attachments/${id}`, { headers: { authorization: `Bearer ${user.token}`, ...headers } });

    const image = png(8, 4, 50_000);
    const first = await put(alice, image, "a.png");
    assert.equal(first.status, 201, first.text);
    assert.deepEqual([first.body.mime_type, first.body.width, first.body.height], ["image/png", 8, 4]);
    const second = await put(bob, image, "b.png");
    assert.equal(second.status, 201, second.text);
    assert.deepEqual(await moto.keys(BUCKET, "blobs/"), [`blobs/${sha256(image)}`], "one object for one content");

    refused(await put(alice, HTML, "x.png", "image/png"), 415, "unsupported_attachment_type");
    refused(await put(alice, pdf(MAX_BYTES), "big.pdf"), 413, "attachment_too_large");
    assert.deepEqual(await moto.keys(BUCKET, "incoming/"), [], "no staged upload is left behind");

    const aliceSocket = await connect(s3server, alice);
    await say(aliceSocket, { to_user_id: bob.id, attachment_id: first.body.id });
    const whole = await get(bob, first.body.id);
    assert.equal(whole.status, 200);
    assert.ok(Buffer.from(await whole.arrayBuffer()).equals(image));
    const part = await get(bob, first.body.id, { range: "bytes=100-199" });
    assert.equal(part.status, 206);
    assert.ok(Buffer.from(await part.arrayBuffer()).equals(image.subarray(100, 200)));

    const lonely = pdf();
    const orphan = await put(alice, lonely, "orphan.pdf");
    assert.equal(orphan.status, 201, orphan.text);
    await eventually(async () => (await get(alice, orphan.body.id)).status === 404, { timeoutMs: 15_000, what: "the orphan is swept" });
    await eventually(async () => (await get(bob, second.body.id)).status === 404, { timeoutMs: 15_000, what: "bob's unsent copy is swept" });
    const blobs = await moto.keys(BUCKET, "blobs/");
    assert.ok(!blobs.includes(`blobs/${sha256(lonely)}`), "the orphan's object is deleted");
    assert.ok(blobs.includes(`blobs/${sha256(image)}`), "the sent content stays");
    assert.equal((await get(bob, first.body.id)).status, 200);
    await closeAll(aliceSocket);
  });
});
