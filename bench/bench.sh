#!/usr/bin/env bash
# Benchmark (not a test): client_credentials token issuance and token introspection throughput and
# latency of the release `agentidp serve` on loopback, driven by wrk.
#
#   bash bench/bench.sh
#   BENCH_DURATION=30s BENCH_CONNECTIONS=64 bash bench/bench.sh
#   AGENTIDP_DB_SYNCHRONOUS=normal bash bench/bench.sh      # durability trade-off, see README
#
# Knobs (environment): BENCH_THREADS (wrk threads, default 2), BENCH_CONNECTIONS (default 32),
# BENCH_DURATION (default 15s), BENCH_WARMUP (default 3s), AGENTIDP_DB_SYNCHRONOUS (default full),
# BENCH_POLICIES (Cedar policies of a second organization, measured between two runs without, default
# 10; 0 skips those runs),
# BENCH_BIN (a release `agentidp` to measure instead of building this tree's, e.g. an older commit's
# for a before/after comparison on the same machine).
# wrk and the server share this machine's cores, so the figures are a floor, not a ceiling.
# Rate limits are off (organization, client and IP limits all 0) so that they do not cap the figures.
# Also prints the database's growth per token issued (the audit event, its Merkle tree nodes and
# analytics counters, the indexes), from the pages in use before and after the token run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
THREADS=${BENCH_THREADS:-2}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
DURATION=${BENCH_DURATION:-15s}
WARMUP=${BENCH_WARMUP:-3s}
export AGENTIDP_DB_SYNCHRONOUS=${AGENTIDP_DB_SYNCHRONOUS:-full}
export RATE_LIMIT_PER_MINUTE=0 AGENTIDP_RATE_LIMIT_CLIENT_PER_MINUTE=0 AGENTIDP_RATE_LIMIT_IP_PER_MINUTE=0
unset AGENTIDP_RATE_LIMIT_TIERS
export AGENTIDP_LOG=${AGENTIDP_LOG:-warn}
unset AGENTIDP_ISSUER

say() { printf '\n==== %s\n' "$*"; }

SERVER_PID=
WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/agentidp-bench.XXXXXX")
cleanup() {
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
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
wrk --version 2>&1 | head -n 1 || true

if [[ -n ${BENCH_BIN:-} ]]; then
  SERVER_BIN=$BENCH_BIN
else
  say "cargo build --release -p agentidp"
  cargo build --release -p agentidp
  SERVER_BIN=$TARGET_DIR/release/agentidp
fi

say "start agentidp serve (AGENTIDP_DB_SYNCHRONOUS=$AGENTIDP_DB_SYNCHRONOUS)"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
(cd "$WORK_DIR" && exec "$SERVER_BIN" serve --listen "127.0.0.1:$PORT" \
  --data-dir "$WORK_DIR/data") >"$WORK_DIR/server.log" 2>&1 </dev/null &
SERVER_PID=$!
for _ in $(seq 150); do
  curl -fsS -o /dev/null "$BASE/health" 2>/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK_DIR/server.log" >&2; exit 1; }
  sleep 0.2
done
curl -fsS -o /dev/null "$BASE/health" || { echo "server not ready" >&2; exit 1; }
echo "$BASE (pid $SERVER_PID)"

say "bootstrap: two organizations, each with an agent and a client secret; one access token"
json() { python3 -c 'import json, sys; print(json.load(sys.stdin)'"$1"')'; }
# bootstrap NAME: an organization with an agent holding read:docs and write:docs; sets admin_token,
# client_id, client_secret and auth (the Basic credentials) for it.
bootstrap() {
  local org admin_id admin_secret agent_id credential
  org=$(curl -fsS -H 'content-type: application/json' -d "{\"name\":\"$1\"}" "$BASE/v1/orgs")
  admin_id=$(json '["admin_credential"]["client_id"]' <<<"$org")
  admin_secret=$(json '["admin_credential"]["client_secret"]' <<<"$org")
  admin_token=$(curl -fsS -u "$admin_id:$admin_secret" -d grant_type=client_credentials \
    "$BASE/oauth2/token" | json '["access_token"]')
  agent_id=$(curl -fsS -H "authorization: Bearer $admin_token" -H 'content-type: application/json' \
    -d '{"name":"bench-agent","agent_type":"assistant","capabilities":["read:docs","write:docs"]}' \
    "$BASE/v1/agents" | json '["id"]')
  credential=$(curl -fsS -H "authorization: Bearer $admin_token" -H 'content-type: application/json' \
    -d '{}' "$BASE/v1/agents/$agent_id/credentials")
  client_id=$(json '["client_id"]' <<<"$credential")
  client_secret=$(json '["client_secret"]' <<<"$credential")
  auth=$(printf '%s:%s' "$client_id" "$client_secret" | base64 -w0)
  echo "$1: agent $agent_id, client $client_id"
}

# The organization with policies. Each scope of each token is one authorization query over all
# of them. The set mixes conditions on the scope, the audience, the agent's attributes and the
# context, and every token still gets its scope (one permit matches), so the figures compare like
# with like.
POLICIES=${BENCH_POLICIES:-10}
if ((POLICIES > 0)); then
  bootstrap bench-governed
  governed_auth=$auth governed_id=$client_id governed_secret=$client_secret
  say "upload $POLICIES Cedar policies to bench-governed"
  upload() {
    python3 -c 'import json, sys; print(json.dumps({"cedar": sys.argv[1], "description": "bench"}))' "$1" \
      | curl -fsS -o /dev/null -H "authorization: Bearer $admin_token" \
        -H 'content-type: application/json' --data-binary @- "$BASE/v1/policies"
  }
  upload 'permit(principal is AgentIdP::Agent, action == AgentIdP::Action::"issue_token", resource) when { principal.capabilities.contains(context.scope) };'
  for i in $(seq 2 "$POLICIES"); do
    case $((i % 3)) in
      0) upload "forbid(principal, action, resource) when { context.scope == \"payments:write-$i\" && !context.key_bound };" ;;
      1) upload "@reason(\"rule $i\") forbid(principal is AgentIdP::Agent, action, resource == AgentIdP::Audience::\"https://api-$i.example\") when { principal.deployment_env == \"production\" };" ;;
      2) upload "@max_lifetime_seconds(\"86400\") permit(principal is AgentIdP::Agent, action, resource) when { principal.tags.contains(\"tier-$i\") && context.lifetime_seconds <= 60 };" ;;
    esac
  done
fi
bootstrap bench
access_token=$(curl -fsS -u "$client_id:$client_secret" -d grant_type=client_credentials \
  -d scope=read:docs "$BASE/oauth2/token" | json '["access_token"]')

# run NAME PATH BODY AUTH: a warm-up, then the measured wrk run; keeps wrk's RESULT line.
RESULTS=()
run() {
  local name=$1 path=$2 body=$3 out
  export BENCH_NAME=$name BENCH_PATH=$path BENCH_BODY=$body BENCH_AUTH=$4
  say "$name: POST $path  (wrk -t$THREADS -c$CONNECTIONS -d$DURATION, after a $WARMUP warm-up)"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -s bench/post.lua "$BASE" >/dev/null
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/post.lua "$BASE")
  echo "$out"
  RESULTS+=("$(grep '^RESULT ' <<<"$out")")
  # A sanity check after the load: the endpoint still answers correctly.
  curl -fsS -o /dev/null -H "authorization: Basic $4" -d "$body" "$BASE$path"
}

# Tokens issued and bytes the database holds (pages in use, write-ahead log included: a reader
# sees its snapshot), read-only beside the running server.
db_figures() {
  python3 - "$WORK_DIR/data/agentidp.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
one = lambda q: c.execute(q).fetchone()[0]
tokens = one("SELECT COUNT(*) FROM audit_events WHERE action = 'token.issued'")
used = (one("PRAGMA page_count") - one("PRAGMA freelist_count")) * one("PRAGMA page_size")
print(tokens, used)
PY
}

ISSUE="grant_type=client_credentials&scope=read:docs"
read -r tokens_before bytes_before < <(db_figures)
run token /oauth2/token "$ISSUE" "$auth"
read -r tokens_after bytes_after < <(db_figures)
run introspect /oauth2/introspect "token=$access_token" "$auth"
# Policies against none as A/B/A in one run: the database grows by every token, so issuance
# without policies is measured on both sides of the run with them.
if ((POLICIES > 0)); then
  run "token+${POLICIES}pol" /oauth2/token "$ISSUE" "$governed_auth"
  run token-again /oauth2/token "$ISSUE" "$auth"
fi

say "summary ($(nproc) cores shared by wrk and the server; AGENTIDP_DB_SYNCHRONOUS=$AGENTIDP_DB_SYNCHRONOUS; ${BENCH_BIN:-$(git rev-parse --short HEAD 2>/dev/null || echo '?')})"
printf '%-14s %10s %9s %9s %9s %9s %8s\n' endpoint 'req/s' 'p50 ms' 'p90 ms' 'p99 ms' 'max ms' errors
failed=0
for line in "${RESULTS[@]}"; do
  # RESULT name requests=.. rps=.. p50_ms=.. p90_ms=.. p99_ms=.. max_ms=.. non2xx=.. socket_errors=..
  read -r _ name _ rps p50 p90 p99 max non2xx socket <<<"$line"
  errors=$((${non2xx#*=} + ${socket#*=}))
  printf '%-14s %10s %9s %9s %9s %9s %8s\n' "$name" "${rps#*=}" "${p50#*=}" "${p90#*=}" \
    "${p99#*=}" "${max#*=}" "$errors"
  ((errors == 0)) || failed=1
done
if ((POLICIES > 0)); then
  rps_of() { for line in "${RESULTS[@]}"; do [[ $line == "RESULT $1 "* ]] && { read -r _ _ _ r _ <<<"$line"; echo "${r#*=}"; }; done; }
  python3 -c 'import sys; a, b, g = map(float, sys.argv[1:4]); n = sys.argv[4]
print(f"issuance with {n} policies: {g:.0f} req/s against {(a + b) / 2:.0f} without (the mean of the runs before and after): {100 * (g / ((a + b) / 2) - 1):+.1f} %")' \
    "$(rps_of token)" "$(rps_of token-again)" "$(rps_of "token+${POLICIES}pol")" "$POLICIES"
fi
issued=$((tokens_after - tokens_before))
if ((issued > 0)); then
  printf 'database growth per token issued: %d bytes (%d tokens, %d bytes)\n' \
    $(((bytes_after - bytes_before) / issued)) "$issued" $((bytes_after - bytes_before))
fi
if ((failed)); then
  echo "some requests failed (HTTP >= 400 or socket errors): the figures above are not valid" >&2
  exit 1
fi
