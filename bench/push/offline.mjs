// Push hooks' worst case: every message goes to a recipient with no device, so each one
// writes a hook and posts it. 20 senders, each to its own offline user, 8 messages in
// flight, 250 each; a receiver on 127.0.0.1:5399 answers every hook 200. Prints the
// senders' msgs/s and, with "on", how long until every hook was received.
// Usage (tests/js's npm ci first): node bench/push/offline.mjs http://127.0.0.1:PORT on|off
// against a server started with (for "on") PUSH_WEBHOOK_URL=http://127.0.0.1:5399/h.
import { io } from "../../tests/js/node_modules/socket.io-client/build/esm-debug/index.js";
import http from "node:http";
const [url, S, N, W] = [process.argv[2], 20, 250, 8];
let hooks = 0;
const recv = http.createServer((q, r) => { q.resume(); q.on("end", () => { hooks++; r.end("ok"); }); });
await new Promise((r) => recv.listen(5399, "127.0.0.1", r));
async function register(i) {
  const res = await fetch(`${url}/api/auth/register`, { method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: `u${i}-${Date.now()}@x.example`, password: "password123" }) });
  return (await res.json());
}
const senders = [], targets = [];
for (let i = 0; i < S; i++) { senders.push(await register(`s${i}`)); targets.push(await register(`t${i}`)); }
const sockets = await Promise.all(senders.map((s) => new Promise((res) => {
  const sock = io(url, { auth: { token: s.token }, transports: ["websocket"] });
  sock.on("authenticated", () => res(sock));
})));
const start = Date.now();
await Promise.all(sockets.map(async (sock, i) => {
  let next = 0;
  const lane = async () => { while (next < N) { next++; await sock.emitWithAck("send_message", { to_user_id: targets[i].user.id, content: "hello offline" }); } };
  await Promise.all(Array.from({ length: W }, lane));
}));
const secs = (Date.now() - start) / 1000;
const total = S * N;
const t0 = Date.now();
if (process.argv[3] === "on") while (hooks < total && Date.now() - t0 < 60000) await new Promise((r) => setTimeout(r, 50));
console.log(JSON.stringify({ mode: process.argv[3], msgs_per_sec: Math.round(total / secs), hooks, hooks_done_after_s: (Date.now() - start) / 1000 }));
sockets.forEach((s) => s.close()); recv.close(); process.exit(0);
