#!/usr/bin/env bash
# Benchmark (not a test): marketplace search latency of the release `agentidp serve` on loopback with
# many published agents, driven by wrk, one scenario at a time.
#
#   bash bench/marketplace.sh                          # 100,000 agents
#   BENCH_AGENTS=10000 bash bench/marketplace.sh
#   BENCH_BIN=/tmp/agentidp-before bash bench/marketplace.sh   # an older build, for before/after
#
# Knobs (environment): BENCH_AGENTS (default 100000), BENCH_CONNECTIONS (default 4: latency, not
# saturation), BENCH_DURATION (default 10s), BENCH_WARMUP (default 2s), BENCH_BIN, BENCH_KEEP=1 (keep
# the work directory with the seeded database, to look at query plans with sqlite3 afterwards).
# Agents are seeded through SQL into the stopped server's database (bench/marketplace_seed.py):
# registering 100,000 through the API takes far longer than the measurement here. The rows go
# through the schema's own triggers, so the full-text index is what the API would have built.
# Scenarios a build does not support (an older build refusing a parameter with 400) are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
AGENTS=${BENCH_AGENTS:-100000}
CONNECTIONS=${BENCH_CONNECTIONS:-4}
DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-2s}
export RATE_LIMIT_PER_MINUTE=0 AGENTIDP_RATE_LIMIT_CLIENT_PER_MINUTE=0 AGENTIDP_RATE_LIMIT_IP_PER_MINUTE=0
unset AGENTIDP_RATE_LIMIT_TIERS AGENTIDP_ISSUER
export AGENTIDP_LOG=${AGENTIDP_LOG:-warn}

say() { printf '\n==== %s\n' "$*"; }

SERVER_PID=
WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/agentidp-bench-marketplace.XXXXXX")
stop_server() {
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=
}
cleanup() {
  stop_server
  if [[ ${BENCH_KEEP:-0} == 1 ]]; then
    echo "kept $WORK_DIR (the seeded database: $WORK_DIR/data/agentidp.db)"
  else
    rm -rf "$WORK_DIR"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

command -v sqlite3 >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sqlite3; }
command -v wrk >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
if [[ -n ${BENCH_BIN:-} ]]; then
  SERVER_BIN=$BENCH_BIN
else
  say "cargo build --release -p agentidp"
  cargo build --release -p agentidp
  SERVER_BIN=$TARGET_DIR/release/agentidp
fi

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
start_server() {
  (cd "$WORK_DIR" && exec "$SERVER_BIN" serve --listen "127.0.0.1:$PORT" \
    --data-dir "$WORK_DIR/data") >>"$WORK_DIR/server.log" 2>&1 </dev/null &
  SERVER_PID=$!
  for _ in $(seq 300); do
    curl -fsS -o /dev/null "$BASE/health" 2>/dev/null && return
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK_DIR/server.log" >&2; exit 1; }
    sleep 0.2
  done
  echo "server not ready" >&2; exit 1
}

say "start, create an organization, stop"
start_server
org_id=$(curl -fsS -H 'content-type: application/json' -d '{"name":"bench"}' "$BASE/v1/orgs" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["organization"]["id"])')
stop_server

say "seed $AGENTS published agents through SQL"
seed_start=$(date +%s.%N)
python3 bench/marketplace_seed.py "$WORK_DIR/data/agentidp.db" "$org_id" "$AGENTS"
printf 'seeded in %.1f s\n' "$(echo "$(date +%s.%N) - $seed_start" | bc)"

sqlite3 "$WORK_DIR/data/agentidp.db" "SELECT id FROM agents ORDER BY random() LIMIT 20000" >"$WORK_DIR/ids"

say "start again"
start_server
echo "$BASE (pid $SERVER_PID), $(curl -fsS "$BASE/v1/marketplace/agents?limit=1" | head -c 120)..."

RESULTS=()
run() {
  local name=$1 path=$2 ids=${3:-} status out one
  one=${path//\{id\}/$(head -n 1 "$WORK_DIR/ids")}
  [[ -n $ids ]] || path=$one
  status=$(curl -s -o /dev/null -w '%{http_code}' "$BASE$one")
  if [[ $status != 200 ]]; then
    echo "skip $name: $path answers $status on this build"
    return
  fi
  export BENCH_NAME=$name BENCH_PATH=$path BENCH_IDS=$ids
  say "$name: GET $path  (wrk -t1 -c$CONNECTIONS -d$DURATION, after a $WARMUP warm-up)"
  wrk -t1 -c"$CONNECTIONS" -d"$WARMUP" -s bench/marketplace.lua "$BASE" >/dev/null
  out=$(wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/marketplace.lua "$BASE")
  grep '^RESULT ' <<<"$out"
  RESULTS+=("$(grep '^RESULT ' <<<"$out")")
}

run newest "/v1/marketplace/agents?limit=20"
run one-word "/v1/marketplace/agents?q=weather&limit=20"
run common-word "/v1/marketplace/agents?q=assistant&limit=20"
run two-words "/v1/marketplace/agents?q=translate%20documents&limit=20"
run prefix "/v1/marketplace/agents?q=tr&limit=20"
run rare-word "/v1/marketplace/agents?q=term4000&limit=20"
run capability "/v1/marketplace/agents?capability=code:review&limit=20"
run tag-type "/v1/marketplace/agents?tag=finance&agent_type=coder&limit=20"
run facets "/v1/marketplace/agents?q=weather&facets=agent_type,tags&limit=20"
run no-match "/v1/marketplace/agents?q=qqqqzzzz&limit=20"
# The signed card: the same agent again and again (the signature memo answers), then a different
# agent each request among 20,000 (the memo of 4,096 mostly misses: every request signs). The
# difference is what signing costs per card.
run card-memo "/v1/marketplace/agents/{id}/agent-card.json"
run card-sign "/v1/marketplace/agents/{id}/agent-card.json" "$WORK_DIR/ids"

say "summary: $AGENTS published agents, $(nproc) cores shared by wrk and the server, -c$CONNECTIONS; ${BENCH_BIN:-$(git rev-parse --short HEAD 2>/dev/null || echo '?')}"
printf '%-12s %9s %9s %9s %9s %9s %8s\n' scenario 'req/s' 'p50 ms' 'p90 ms' 'p99 ms' 'max ms' errors
failed=0
for line in "${RESULTS[@]}"; do
  read -r _ name _ rps p50 p90 p99 max non2xx socket <<<"$line"
  errors=$((${non2xx#*=} + ${socket#*=}))
  printf '%-12s %9s %9s %9s %9s %9s %8s\n' "$name" "${rps#*=}" "${p50#*=}" "${p90#*=}" \
    "${p99#*=}" "${max#*=}" "$errors"
  ((errors == 0)) || failed=1
done
((failed == 0)) || { echo "some requests failed: the figures above are not valid" >&2; exit 1; }
