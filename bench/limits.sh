#!/usr/bin/env bash
# Benchmark (not a test): the rate limiter's overhead. GET /v1/agents req/s and latency of the
# release `agentidp serve` on a real redis-server, with limits on (a limit too high to bite, so every
# request runs the admission script) and off (RATE_LIMIT_PER_MINUTE=0: the request still does one
# round trip, for its revocation entries and usage counter, but no window).
#
#   bash bench/limits.sh
#   BENCH_DURATION=30s BENCH_CONNECTIONS=64 bash bench/limits.sh
#
# Knobs (environment): BENCH_THREADS (wrk threads, default 2), BENCH_CONNECTIONS (default 32),
# BENCH_DURATION (default 15s), BENCH_WARMUP (default 3s). wrk, redis-server and the server share
# this machine's cores, so the figures are a floor, not a ceiling.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
THREADS=${BENCH_THREADS:-2}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
DURATION=${BENCH_DURATION:-15s}
WARMUP=${BENCH_WARMUP:-3s}
export AGENTIDP_LOG=${AGENTIDP_LOG:-warn}
unset AGENTIDP_ISSUER REDIS_URL UPSTASH_REDIS_REST_URL UPSTASH_REDIS_REST_TOKEN

say() { printf '\n==== %s\n' "$*"; }

SERVER_PID= REDIS_PID=
WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/agentidp-bench-limits.XXXXXX")
stop() { # stop PID: TERM, wait up to 5 s, then KILL
  local pid=$1
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
  stop "$SERVER_PID"
  stop "$REDIS_PID"
  rm -rf "$WORK_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

say "tools"
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
command -v redis-server >/dev/null || missing+=(redis-server)
if ((${#missing[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
command -v python3 >/dev/null || { echo "python3 is required" >&2; exit 1; }

say "cargo build --release -p agentidp"
cargo build --release -p agentidp

say "redis-server"
REDIS_PORT=$(free_port)
(cd "$WORK_DIR" && exec redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" \
  --appendonly no) >"$WORK_DIR/redis.log" 2>&1 </dev/null &
REDIS_PID=$!
for _ in $(seq 100); do
  redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
  sleep 0.1
done
redis-cli -p "$REDIS_PORT" ping >/dev/null
redis-server --version | head -n 1
export REDIS_URL=redis://127.0.0.1:$REDIS_PORT

json() { python3 -c 'import json, sys; print(json.load(sys.stdin)'"$1"')'; }

# measure NAME RATE_LIMIT_PER_MINUTE: a fresh server and data dir, one admin token, then wrk.
RESULTS=()
measure() {
  local name=$1 limit=$2 port base org admin_id admin_secret token out
  port=$(free_port)
  base=http://127.0.0.1:$port
  say "$name: RATE_LIMIT_PER_MINUTE=$limit"
  (cd "$WORK_DIR" && RATE_LIMIT_PER_MINUTE=$limit AGENTIDP_KV_TIMEOUT_MS=1000 exec \
    "$TARGET_DIR/release/agentidp" serve --listen "127.0.0.1:$port" --data-dir "$WORK_DIR/data-$name") \
    >"$WORK_DIR/server-$name.log" 2>&1 </dev/null &
  SERVER_PID=$!
  for _ in $(seq 150); do
    curl -fsS -o /dev/null "$base/health" 2>/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK_DIR/server-$name.log" >&2; exit 1; }
    sleep 0.2
  done
  org=$(curl -fsS -H 'content-type: application/json' -d "{\"name\":\"bench-$name\"}" "$base/v1/orgs")
  admin_id=$(json '["admin_credential"]["client_id"]' <<<"$org")
  admin_secret=$(json '["admin_credential"]["client_secret"]' <<<"$org")
  token=$(curl -fsS -u "$admin_id:$admin_secret" -d grant_type=client_credentials \
    "$base/oauth2/token" | json '["access_token"]')
  cat >"$WORK_DIR/get.lua" <<LUA
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer $token"
local statuses = {}
response = function(status) statuses[status] = (statuses[status] or 0) + 1 end
LUA
  # What the limiter adds shows in the headers of a limited response.
  curl -fsS -D - -o /dev/null -H "authorization: Bearer $token" "$base/v1/agents?limit=1" \
    | grep -i '^ratelimit-' || echo "(no RateLimit-* headers: limits off)"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -s "$WORK_DIR/get.lua" "$base/v1/agents?limit=1" >/dev/null
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$WORK_DIR/get.lua" \
    "$base/v1/agents?limit=1")
  echo "$out"
  local rps p50 p99 non2xx
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  RESULTS+=("$name $rps $p50 $p99 ${non2xx:-0}")
  stop "$SERVER_PID"
  SERVER_PID=
}

measure limits-on 100000000
measure limits-off 0

say "summary: GET /v1/agents?limit=1 on Redis ($(nproc) cores shared by wrk, redis-server and the server; wrk -t$THREADS -c$CONNECTIONS -d$DURATION; $(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
printf '%-12s %10s %9s %9s %8s\n' limits 'req/s' p50 p99 'non-2xx'
for line in "${RESULTS[@]}"; do
  read -r name rps p50 p99 non2xx <<<"$line"
  printf '%-12s %10s %9s %9s %8s\n' "$name" "$rps" "$p50" "$p99" "$non2xx"
done
