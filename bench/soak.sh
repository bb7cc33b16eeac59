#!/usr/bin/env bash
# Soak benchmark (not a test): a steady mix of traffic against the release `agentidp serve` for a
# long time, sampling the server's memory, file descriptors, database and WAL size and the request
# latency every interval, then printing the table and the bounds everything stayed within.
#
#   bash bench/soak.sh                          # 10 minutes at 300 requests/s
#   SOAK_DURATION=120 SOAK_RATE=500 bash bench/soak.sh
#
# The mix (bench/soak.lua), in percent: client_credentials issuance 40, introspection 30, agent
# CRUD 20 (create 8, read 6, update 4, decommission 2; created agents are public), marketplace
# search 10. Load: wrk with one connection per thread, each pausing between requests so that the
# total is about SOAK_RATE; one wrk run per interval, so every row has its own latency figures.
# Knobs (environment): SOAK_DURATION (seconds, default 600), SOAK_INTERVAL (seconds, default 10),
# SOAK_RATE (requests/s, default 300), SOAK_CONNECTIONS (default 8), AGENTIDP_DB_SYNCHRONOUS
# (default full), AGENTIDP_BIN (default target/release/agentidp, built if missing).
# Rate limits are off and the agent cap is lifted: the soak measures resources, not quotas.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
DURATION=${SOAK_DURATION:-600}
INTERVAL=${SOAK_INTERVAL:-10}
RATE=${SOAK_RATE:-300}
CONNECTIONS=${SOAK_CONNECTIONS:-8}
export AGENTIDP_DB_SYNCHRONOUS=${AGENTIDP_DB_SYNCHRONOUS:-full}
export RATE_LIMIT_PER_MINUTE=0 AGENTIDP_RATE_LIMIT_CLIENT_PER_MINUTE=0 AGENTIDP_RATE_LIMIT_IP_PER_MINUTE=0
export AGENTIDP_MAX_AGENTS_PER_ORG=1000000
# Tokens from the setup must outlive a long soak.
export AGENTIDP_TOKEN_TTL_SECONDS=86400
unset AGENTIDP_RATE_LIMIT_TIERS AGENTIDP_ISSUER REDIS_URL AGENTIDP_DATABASE_URL
export AGENTIDP_LOG=${AGENTIDP_LOG:-warn}

say() { printf '\n==== %s\n' "$*"; }

SERVER_PID=
WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/agentidp-soak.XXXXXX")
cleanup() {
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "tools"
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
command -v python3 >/dev/null || { echo "python3 is required" >&2; exit 1; }

BIN=${AGENTIDP_BIN:-$TARGET_DIR/release/agentidp}
if [[ -z ${AGENTIDP_BIN:-} ]]; then
  say "cargo build --release -p agentidp"
  cargo build --release -p agentidp
fi

say "start agentidp serve (AGENTIDP_DB_SYNCHRONOUS=$AGENTIDP_DB_SYNCHRONOUS)"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
DATA=$WORK_DIR/data
(cd "$WORK_DIR" && exec "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$DATA") \
  >"$WORK_DIR/server.log" 2>&1 </dev/null &
SERVER_PID=$!
for _ in $(seq 150); do
  curl -fsS -o /dev/null "$BASE/health" 2>/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK_DIR/server.log" >&2; exit 1; }
  sleep 0.2
done
curl -fsS -o /dev/null "$BASE/health" || { echo "server not ready" >&2; exit 1; }
echo "$BASE (pid $SERVER_PID, data $DATA)"

say "bootstrap: organization, agent, client secret, tokens"
json() { python3 -c 'import json, sys; print(json.load(sys.stdin)'"$1"')'; }
org=$(curl -fsS -H 'content-type: application/json' -d '{"name":"soak"}' "$BASE/v1/orgs")
admin_id=$(json '["admin_credential"]["client_id"]' <<<"$org")
admin_secret=$(json '["admin_credential"]["client_secret"]' <<<"$org")
admin_token=$(curl -fsS -u "$admin_id:$admin_secret" -d grant_type=client_credentials \
  "$BASE/oauth2/token" | json '["access_token"]')
agent_id=$(curl -fsS -H "authorization: Bearer $admin_token" -H 'content-type: application/json' \
  -d '{"name":"soak-agent","agent_type":"assistant","capabilities":["read:docs"]}' \
  "$BASE/v1/agents" | json '["id"]')
credential=$(curl -fsS -H "authorization: Bearer $admin_token" -H 'content-type: application/json' \
  -d '{}' "$BASE/v1/agents/$agent_id/credentials")
client_id=$(json '["client_id"]' <<<"$credential")
client_secret=$(json '["client_secret"]' <<<"$credential")
access_token=$(curl -fsS -u "$client_id:$client_secret" -d grant_type=client_credentials \
  -d scope=read:docs "$BASE/oauth2/token" | json '["access_token"]')
SOAK_AUTH=$(printf '%s:%s' "$client_id" "$client_secret" | base64 -w0)
export SOAK_AUTH SOAK_TOKEN=$access_token SOAK_ADMIN=$admin_token
# Each connection waits this long after every answer: CONNECTIONS / RATE seconds.
export SOAK_DELAY_MS=$((CONNECTIONS * 1000 / RATE))

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
file_size() { stat -c %s "$1" 2>/dev/null || echo 0; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER_PID/status"; }

say "soak: ${DURATION}s at ~${RATE} req/s over $CONNECTIONS connections, a row every ${INTERVAL}s"
ROWS=()
header=$(printf '%6s %8s %7s %8s %8s %8s %7s %8s %8s %8s %5s' t requests 'req/s' 'p50 ms' \
  'p99 ms' 'max ms' errors 'RSS MiB' 'DB MiB' 'WAL MiB' fds)
echo "$header"
elapsed=0
failed=0
while ((elapsed < DURATION)); do
  window=$((DURATION - elapsed < INTERVAL ? DURATION - elapsed : INTERVAL))
  out=$(wrk -t"$CONNECTIONS" -c"$CONNECTIONS" -d"${window}s" --latency -s bench/soak.lua "$BASE")
  elapsed=$((elapsed + window))
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "the server died" >&2; tail -n 30 "$WORK_DIR/server.log" >&2; exit 1; }
  result=$(grep '^RESULT ' <<<"$out") || { echo "$out" >&2; exit 1; }
  declare -A r=()
  for field in ${result#RESULT }; do r[${field%%=*}]=${field#*=}; done
  errors=$((r[non2xx] + r[socket_errors]))
  ((errors == 0)) || failed=1
  rss=$(rss_kib)
  db=$(file_size "$DATA/agentidp.db")
  wal=$(file_size "$DATA/agentidp.db-wal")
  fds=$(ls "/proc/$SERVER_PID/fd" | wc -l)
  row=$(printf '%6s %8s %7s %8s %8s %8s %7s %8s %8s %8s %5s' "$elapsed" "${r[requests]}" \
    "${r[rps]}" "${r[p50_ms]}" "${r[p99_ms]}" "${r[max_ms]}" "$errors" "$(mib $((rss * 1024)))" \
    "$(mib "$db")" "$(mib "$wal")" "$fds")
  echo "$row"
  ROWS+=("$elapsed ${r[requests]} ${r[rps]} ${r[p99_ms]} $errors $rss $db $wal $fds ${r[issue]} ${r[create]}")
done

say "bounds over ${DURATION}s ($(nproc) cores shared by wrk and the server; AGENTIDP_DB_SYNCHRONOUS=$AGENTIDP_DB_SYNCHRONOUS; $(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
printf '%s\n' "${ROWS[@]}" | awk -v interval="$INTERVAL" '
  function mib(b) { return sprintf("%.1f", b / 1048576) }
  NR == 1 { rss0 = $6 * 1024; db0 = $7 }
  {
    n++; requests += $2; issued += $10; created += $11; errors += $5
    if (n == 1 || $3 < rps_min) rps_min = $3; if ($3 > rps_max) rps_max = $3
    if (n == 1 || $4 < p99_min) p99_min = $4; if ($4 > p99_max) p99_max = $4
    if (n == 1 || $6 < rss_min) rss_min = $6; if ($6 > rss_max) rss_max = $6
    if ($8 > wal_max) wal_max = $8; if (n == 1 || $8 < wal_min) wal_min = $8
    if ($9 > fds_max) fds_max = $9; if (n == 1 || $9 < fds_min) fds_min = $9
    rss_last = $6 * 1024; db_last = $7; t = $1
  }
  END {
    printf "requests      %d in %d s (%d tokens issued, %d agents created), %d errors\n", requests, t, issued, created, errors
    printf "req/s         %s .. %s per %ss window\n", rps_min, rps_max, interval
    printf "p99 latency   %s .. %s ms per window\n", p99_min, p99_max
    printf "RSS           %s .. %s MiB (first %s, last %s)\n", mib(rss_min * 1024), mib(rss_max * 1024), mib(rss0), mib(rss_last)
    printf "database      %s -> %s MiB (%.1f KiB per issued token or created agent, WAL excluded)\n", mib(db0), mib(db_last), (db_last - db0) / 1024 / ((issued + created) > 0 ? issued + created : 1)
    printf "WAL           %s .. %s MiB\n", mib(wal_min), mib(wal_max)
    printf "open fds      %d .. %d\n", fds_min, fds_max
  }'
if ((failed)); then
  echo "some requests failed (HTTP >= 400 or socket errors); see the errors column" >&2
  exit 1
fi
