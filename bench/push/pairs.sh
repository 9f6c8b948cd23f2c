#!/usr/bin/env bash
# Scenario 1 (pairs, PostgreSQL) with push hooks off and on, alternating three times (release
# build: cargo build --release -p realtime-chat -p realtime-chat-bench). Recipients are online,
# so no hook is written: this is what the send path pays for having hooks on.
set -euo pipefail
CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/realtime-chat-target}
BIN=$CARGO_TARGET_DIR/release
PG_URL=postgres://postgres@127.0.0.1:5432
SECRET=bench-secret-0123456789abcdef0123456789abcdef
node -e 'require("http").createServer((q,r)=>{q.resume();q.on("end",()=>{r.end("ok")})}).listen(5399,"127.0.0.1")' & RECV=$!
trap 'kill $RECV 2>/dev/null || true' EXIT
run() { # label extra-env...
  psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS rc_push_bench WITH (FORCE)" -c "CREATE DATABASE rc_push_bench" >/dev/null
  env DATABASE_URL="$PG_URL/rc_push_bench?sslmode=disable" JWT_SECRET=$SECRET PORT=5398 RUST_LOG=warn RATE_SENDS_PER_SEC=0 "${@:2}" "$BIN/realtime-chat" serve >/dev/null 2>&1 & local pid=$!
  for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/5398) 2>/dev/null && break; sleep 0.1; done
  "$BIN/realtime-chat-bench" pairs --url http://127.0.0.1:5398 --pairs 100 --messages 500 --window 8 --server-pid $pid --label "$1" \
    | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); r=d["report"]; print(d["label"], {k: r.get(k) for k in ("msgs_per_sec","p50_ms","p99_ms","missing","duplicated","reordered","server_cpu_s")})'
  kill $pid; wait $pid 2>/dev/null || true
}
for i in 1 2 3; do
  run "push off" 
  run "push on" PUSH_WEBHOOK_URL=http://127.0.0.1:5399/h PUSH_WEBHOOK_SECRET=$SECRET
done
