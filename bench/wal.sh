#!/usr/bin/env bash
# Measurement (not a test): the write-ahead log under sustained token issuance and under failed
# client authentications (one audit event each), then idle, then after a clean shutdown.
#
#   bash bench/wal.sh                          # the release build of this checkout
#   WAL_BIN=/path/to/agentidp bash bench/wal.sh   # any other build, e.g. an older one
#
# Knobs: WAL_DURATION (wrk duration per phase, default 30s), WAL_CONNECTIONS (default 32).
# It prints the WAL file size every second, the peak, and, when the log never rewound during a
# phase (a build whose checkpoints cannot keep up), the bytes of WAL written per request: every
# commit appends one 4 KiB page (plus a 24-byte frame header) per page it touched.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${WAL_DURATION:-30s}
CONNECTIONS=${WAL_CONNECTIONS:-32}
export AGENTIDP_DB_SYNCHRONOUS=${AGENTIDP_DB_SYNCHRONOUS:-full}
export RATE_LIMIT_PER_MINUTE=0 AGENTIDP_RATE_LIMIT_CLIENT_PER_MINUTE=0 AGENTIDP_RATE_LIMIT_IP_PER_MINUTE=0
export AGENTIDP_LOG=${AGENTIDP_LOG:-warn}
unset AGENTIDP_ISSUER AGENTIDP_RATE_LIMIT_TIERS REDIS_URL UPSTASH_REDIS_REST_URL

command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
if [[ -z ${WAL_BIN:-} ]]; then
  cargo build --release -p agentidp
  WAL_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/agentidp
fi

WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/agentidp-wal.XXXXXX")
SERVER_PID=
cleanup() {
  [[ -n $SERVER_PID ]] && kill -KILL "$SERVER_PID" 2>/dev/null || true
  rm -rf "$WORK_DIR"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
WAL=$WORK_DIR/data/agentidp.db-wal
(cd "$WORK_DIR" && exec "$WAL_BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK_DIR/data") \
  >"$WORK_DIR/server.log" 2>&1 </dev/null &
SERVER_PID=$!
for _ in $(seq 100); do curl -fsS -o /dev/null "$BASE/health" 2>/dev/null && break; sleep 0.1; done

json() { python3 -c 'import json, sys; print(json.load(sys.stdin)'"$1"')'; }
org=$(curl -fsS -H 'content-type: application/json' -d '{"name":"wal"}' "$BASE/v1/orgs")
admin_id=$(json '["admin_credential"]["client_id"]' <<<"$org")
admin_secret=$(json '["admin_credential"]["client_secret"]' <<<"$org")
admin=$(curl -fsS -u "$admin_id:$admin_secret" -d grant_type=client_credentials "$BASE/oauth2/token" | json '["access_token"]')
agent=$(curl -fsS -H "authorization: Bearer $admin" -H 'content-type: application/json' \
  -d '{"name":"wal-agent","agent_type":"assistant","capabilities":["read:docs"]}' "$BASE/v1/agents" | json '["id"]')
cred=$(curl -fsS -H "authorization: Bearer $admin" -H 'content-type: application/json' -d '{}' \
  "$BASE/v1/agents/$agent/credentials")
cid=$(json '["client_id"]' <<<"$cred")
secret=$(json '["client_secret"]' <<<"$cred")

wal_size() { stat -c %s "$WAL" 2>/dev/null || echo 0; }

# Runs wrk with `$1` as the Authorization header while sampling the WAL; prints a summary line.
phase() {
  local name=$1 authorization=$2
  cat >"$WORK_DIR/post.lua" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "$authorization"
LUA
  local start peak=0 rewound=no previous size
  start=$(wal_size); previous=$start
  wrk -t2 -c"$CONNECTIONS" -d"$DURATION" -s "$WORK_DIR/post.lua" "$BASE/oauth2/token" >"$WORK_DIR/wrk.txt" &
  local wrk_pid=$!
  while kill -0 "$wrk_pid" 2>/dev/null; do
    size=$(wal_size)
    ((size > peak)) && peak=$size
    ((size < previous)) && rewound=yes
    previous=$size
    printf '  %s WAL %d bytes\n' "$name" "$size"
    sleep 1
  done
  wait "$wrk_pid"
  local requests
  requests=$(awk '/requests in/ {print $1}' "$WORK_DIR/wrk.txt")
  local per="n/a (the log rewound: checkpoints kept up)"
  [[ $rewound == no && $requests -gt 0 ]] && per="$(( ($(wal_size) - start) / requests )) bytes"
  printf '%s: %s requests in %s, WAL peak %d bytes (%d MiB), WAL written per request: %s\n' \
    "$name" "$requests" "$DURATION" "$peak" $((peak / 1048576)) "$per"
  grep -E 'Non-2xx|Socket errors' "$WORK_DIR/wrk.txt" || true
}

basic() { printf 'Basic %s' "$(printf '%s:%s' "$1" "$2" | base64 -w0)"; }
phase "token issuance" "$(basic "$cid" "$secret")"
for second in 1 2 3 4 5; do sleep 1; printf '  idle %ds: WAL %d bytes\n' "$second" "$(wal_size)"; done
phase "failed authentication" "$(basic "$cid" "wrong-$secret")"
for second in 1 2 3 4 5; do sleep 1; printf '  idle %ds: WAL %d bytes\n' "$second" "$(wal_size)"; done
kill -TERM "$SERVER_PID"
for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
printf 'after a clean shutdown: WAL %d bytes, database %d bytes\n' "$(wal_size)" \
  "$(stat -c %s "$WORK_DIR/data/agentidp.db")"
SERVER_PID=
