#!/usr/bin/env bash
# Push hooks with every recipient offline, off and on, alternating three times (PostgreSQL,
# release build: cargo build --release -p realtime-chat).
set -euo pipefail
BIN=${CARGO_TARGET_DIR:-$HOME/.cache/realtime-chat-target}/release/realtime-chat
PG_URL=postgres://postgres@127.0.0.1:5432
SECRET=bench-secret-0123456789abcdef0123456789abcdef
run() {
  psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS rc_push_bench WITH (FORCE)" -c "CREATE DATABASE rc_push_bench" >/dev/null
  env DATABASE_URL="$PG_URL/rc_push_bench?sslmode=disable" JWT_SECRET=$SECRET PORT=5398 RUST_LOG=warn RATE_SENDS_PER_SEC=0 HASH_QUEUE=1000 "${@:2}" "$BIN" serve >/dev/null 2>&1 & local pid=$!
  for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/5398) 2>/dev/null && break; sleep 0.1; done
  node "$(dirname "$0")/offline.mjs" http://127.0.0.1:5398 "$1" || true
  kill $pid; wait $pid 2>/dev/null || true
}
for i in 1 2 3; do
  run off
  run on PUSH_WEBHOOK_URL=http://127.0.0.1:5399/h PUSH_WEBHOOK_SECRET=$SECRET
done
