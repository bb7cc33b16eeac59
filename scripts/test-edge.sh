#!/usr/bin/env bash
# End-to-end tests of the edge builds in the real runtimes: the five Workers in workerd (driven
# in-process by miniflare, tests/edge/workers.mjs) and the five Spin components in `wasmtime
# serve`, on libSQL-over-HTTP and Upstash REST served locally by `agentidp-dev backends` (the
# embedded engine and a real redis-server), with GitHub Actions' OIDC issuer stood in by
# `agentidp-dev oidc-issuer`. Each runtime's five functions sit behind `agentidp-dev router`, routed
# by the patterns of wrangler.toml and the triggers of spin.toml (themselves checked against the
# route table by tests/tests/routes.rs), as they sit behind one host in production, and the same
# scenario suite as the native server's runs against each.
#
# Deterministic on a machine's first run: nothing watches files or rebuilds, no wrangler state is
# read or written, every server listens on a port free at run time (concurrent runs cannot
# collide), processes start one at a time and each is waited for with retries and a deadline, and a
# failure shows the logs of what failed. Why not `wrangler dev`: see tests/edge/workers.mjs.
#
# Expects: the ten artifacts (scripts/build-edge.sh), target/debug/agentidp-dev, redis-server,
# wasmtime, node_modules (miniflare). scripts/test.sh arranges all of that.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d "${TMPDIR:-/tmp}/agentidp-edge.XXXXXX")
# Deadline, in seconds, for any one process to become ready (generous: a loaded 2-core machine).
READY_SECONDS=${AGENTIDP_EDGE_READY_SECONDS:-120}
FUNCTIONS=(token agents audit marketplace webhooks)
dev=${CARGO_TARGET_DIR:-$root/target}/debug/agentidp-dev
STARTED_MS=$(date +%s%3N)

pids=()
cleanup() {
  local status=$? pid
  # Only the processes this script started, by PID: politely, then firmly.
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if ((status != 0)); then
    echo "== edge tests failed (exit $status); the last lines of every log:" >&2
    local log
    for log in "$work"/*.log; do
      [[ -s $log ]] || continue
      echo "--- ${log##*/}" >&2
      tail -n 25 "$log" >&2
    done
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() { echo "edge: $*" >&2; exit 1; }
elapsed() { echo $(($(date +%s%3N) - STARTED_MS)); }

for tool in curl python3 redis-server redis-cli wasmtime node; do
  command -v "$tool" >/dev/null || fail "$tool is required (bash scripts/install-edge-tools.sh)"
done
[[ -x $dev ]] || fail "$dev is missing (cargo build -p agentidp-dev)"
[[ -f $root/node_modules/miniflare/package.json ]] || fail "node_modules is missing (npm ci)"
for function in "${FUNCTIONS[@]}"; do
  for artifact in "functions/$function/build/index.js" "build/spin/$function.wasm"; do
    [[ -f $artifact ]] || fail "$artifact is missing (bash scripts/build-edge.sh)"
  done
done

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start NAME CMD...: runs CMD in the background with its own log; sets PID to the command itself.
start() {
  local name=$1; shift
  (exec "$@" >"$work/$name.log" 2>&1 </dev/null) &
  PID=$!
  pids+=("$PID")
}

# stop_pid PID: ends one process this script started (a failed attempt before a retry).
stop_pid() {
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# wait_until NAME PID CHECK...: retries CHECK until it succeeds (prints the milliseconds it took),
# returning 2 at once if PID exits (e.g. its port was taken) and 1 after READY_SECONDS.
wait_until() {
  local name=$1 pid=$2 since deadline
  shift 2
  since=$(date +%s%3N)
  deadline=$((since + READY_SECONDS * 1000))
  while (($(date +%s%3N) < deadline)); do
    if "$@" >/dev/null 2>&1; then
      echo $(($(date +%s%3N) - since))
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$name exited before it was ready" >&2
      return 2
    fi
    sleep 0.05
  done
  echo "$name not ready within ${READY_SECONDS}s (check: $*)" >&2
  return 1
}

http_ok() { curl -sf --max-time 5 -o /dev/null "$1"; }
redis_ok() { [[ $(redis-cli -h 127.0.0.1 -p "$1" ping) == PONG ]]; }

# serve NAME PORTS CHECK LAUNCHER: picks PORTS free ports, runs LAUNCHER with them (it calls
# `start`), and waits until `CHECK PORT1` succeeds. Programs that cannot report the port they bound
# get a port chosen just before; if another process takes it first, the program exits and the
# attempt is repeated on new ports (three attempts). Sets PORTS_USED.
serve() {
  local name=$1 count=$2 check=$3 launcher=$4 attempt ports rc
  for attempt in 1 2 3; do
    ports=()
    for _ in $(seq "$count"); do ports+=("$(free_port)"); done
    "$launcher" "${ports[@]}"
    rc=0
    wait_until "$name" "$PID" "$check" "${ports[0]}" >/dev/null || rc=$?
    if ((rc == 0)); then
      PORTS_USED=("${ports[@]}")
      return 0
    fi
    ((rc == 2 && attempt < 3)) || fail "$name did not start"
    echo "$name exited on ports ${ports[*]} (attempt $attempt); retrying on new ports" >&2
    mv "$work/$name.log" "$work/$name.attempt$attempt.log"
    stop_pid "$PID"
  done
}

token=edge-test-token

# --- backing services: Redis, and the Turso + Upstash stand-ins ----------------------------------
launch_redis() {
  start redis redis-server --port "$1" --bind 127.0.0.1 --save "" --appendonly no
}
serve redis 1 redis_ok launch_redis
redis_port=${PORTS_USED[0]}

hrana_ready() { http_ok "http://127.0.0.1:$1/v3"; }
launch_backends() {
  start backends "$dev" backends --data-dir "$work/backends" \
    --hrana-listen "127.0.0.1:$1" --upstash-listen "127.0.0.1:$2" \
    --redis-url "redis://127.0.0.1:$redis_port" --token $token
}
serve backends 2 hrana_ready launch_backends
hrana_port=${PORTS_USED[0]} upstash_port=${PORTS_USED[1]}
echo "== backends ready after $(elapsed) ms:" \
  "redis :$redis_port, hrana :$hrana_port, upstash :$upstash_port"

# GitHub Actions' OIDC issuer, stood in: the functions fetch its JWKS over loopback; the scenario
# signs workflow tokens with the same key (the issuer creates the key file at start).
jwks_ok() { http_ok "http://127.0.0.1:$1/.well-known/jwks"; }
launch_oidc_issuer() {
  start oidc-issuer "$dev" oidc-issuer --listen "127.0.0.1:$1" --key-file "$work/oidc-key.pem"
}
serve oidc-issuer 1 jwks_ok launch_oidc_issuer
oidc_port=${PORTS_USED[0]}
export AGENTIDP_OIDC_ISSUER_URL=http://127.0.0.1:$oidc_port AGENTIDP_OIDC_KEY_FILE=$work/oidc-key.pem

# The operator credential of both edge deployments (tests/tests/operator.rs uses it through
# AGENTIDP_OPERATOR_TOKEN).
operator_token=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
export AGENTIDP_TEST_OPERATOR_TOKEN=$operator_token
# The scheduler's dispatch token (Spin's only way to run webhook deliveries and audit upkeep).
dispatch_token=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
# The key-encryption key both edge deployments seal their signing keys and webhook secrets under
# (one database: the same key).
key_encryption_key=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
export AGENTIDP_TEST_DISPATCH_TOKEN=$dispatch_token

# config ISSUER: the variables every function gets in both runtimes, as NAME=VALUE lines (vars for
# the Workers, environment variables for the Spin components). The organization limit is low
# enough for the scenario to reach it, proving the limiter exact through Upstash from inside wasm.
# Webhooks may target loopback (the development switch): the scenario's receiver listens there.
# Sign-up is always closed at the edge unless opened: the scenario creates its organizations.
# The key-value deadline is the native tests' one (tests/src/lib.rs): behind a debug-build Upstash
# stand-in on a busy 2-core machine, the production 50 ms fails revocation checks closed (503) and
# limiter calls open at random; the deadline itself is tested natively (tests/tests/rate_limits.rs).
config() {
  cat <<VARS
AGENTIDP_ISSUER=$1
AGENTIDP_DATABASE_URL=http://127.0.0.1:$hrana_port
AGENTIDP_DATABASE_AUTH_TOKEN=$token
UPSTASH_REDIS_REST_URL=http://127.0.0.1:$upstash_port
UPSTASH_REDIS_REST_TOKEN=$token
RATE_LIMIT_PER_MINUTE=60
AGENTIDP_KV_TIMEOUT_MS=2000
GITHUB_OIDC_ISSUER=http://127.0.0.1:$oidc_port
GITHUB_OIDC_AUDIENCE=https://agentidp.test
AGENTIDP_DEV_WEBHOOKS_ALLOW_LOOPBACK=on
AGENTIDP_SIGNUP=open
AGENTIDP_OPERATOR_TOKEN=$operator_token
AGENTIDP_WEBHOOK_DISPATCH_TOKEN=$dispatch_token
AGENTIDP_KEY_ENCRYPTION_KEY=$key_encryption_key
VARS
}

# The router's port is chosen now because the issuer (its URL) is part of every function's config;
# it is started once the functions are.
workers_router_port=$(free_port)
spin_router_port=$(free_port)
workers_base=http://127.0.0.1:$workers_router_port
spin_base=http://127.0.0.1:$spin_router_port
config "$workers_base" >"$work/workers.vars"
config "$spin_base" >"$work/spin.vars"

declare -A workers_url spin_url cold_workers cold_spin

# --- the five Workers in workerd (miniflare), one at a time --------------------------------------
echo "== starting the five Workers in workerd (miniflare, tests/edge/workers.mjs)"
# Its temporary files (miniflare's) go under $work, removed on exit.
start workers env TMPDIR="$work" node "$root/tests/edge/workers.mjs" --vars "$work/workers.vars" \
  --deadline "$READY_SECONDS" "${FUNCTIONS[@]}"
workers_pid=$PID
workers_done() { grep -qx 'all ready' "$work/workers.log"; }
# workers.mjs gives each Worker READY_SECONDS and fails by itself; this wait covers all five.
READY_SECONDS=$((READY_SECONDS * ${#FUNCTIONS[@]})) wait_until workers "$workers_pid" workers_done \
  >/dev/null || fail "the Workers did not start"
while read -r _ function url ms; do
  workers_url[$function]=$url
  cold_workers[$function]=$ms
done < <(grep '^ready ' "$work/workers.log")
echo "== Workers ready after $(elapsed) ms"

# --- the five Spin components in wasmtime serve, one at a time -----------------------------------
# wasmtime binds port 0 (the kernel picks a free one) and prints the address it bound.
echo "== starting the five Spin components in wasmtime serve"
envs=()
while IFS= read -r pair; do envs+=(--env "$pair"); done <"$work/spin.vars"
serving_url() { sed -n 's|^Serving HTTP on \(http://[0-9.:]*\)/$|\1|p' "$work/$1.log" | head -n 1; }
bound() { [[ -n $(serving_url "$1") ]]; }
for function in "${FUNCTIONS[@]}"; do
  started=$(date +%s%3N)
  start "wasmtime-$function" wasmtime serve -S cli --addr 127.0.0.1:0 "${envs[@]}" \
    "$root/build/spin/$function.wasm"
  wait_until "wasmtime-$function" "$PID" bound "wasmtime-$function" >/dev/null \
    || fail "wasmtime-$function did not start listening"
  spin_url[$function]=$(serving_url "wasmtime-$function")
  wait_until "wasmtime-$function" "$PID" http_ok "${spin_url[$function]}/health" >/dev/null \
    || fail "wasmtime-$function did not answer on /health"
  cold_spin[$function]=$(($(date +%s%3N) - started))
done
echo "== Spin components ready after $(elapsed) ms"

echo "== cold start: process start to first 200 on /health (ms; started one at a time)"
for function in "${FUNCTIONS[@]}"; do
  printf '%-12s workerd %6s   wasmtime %6s\n' "$function" "${cold_workers[$function]}" \
    "${cold_spin[$function]}"
done

# descriptor_routes DESCRIPTOR: "PREFIX FUNCTION" lines, the path prefixes wrangler.toml's route
# patterns (or spin.toml's trigger routes) send to each function.
descriptor_routes() {
  python3 - "$root/$1" <<'PY'
import sys, tomllib
manifest = tomllib.load(open(sys.argv[1], "rb"))
if "env" in manifest:  # wrangler.toml: "host/path*" patterns per environment
    for function, env in manifest["env"].items():
        for route in env.get("routes", []):
            pattern = route["pattern"]
            print(pattern[pattern.index("/"):].rstrip("*"), function)
else:  # spin.toml: "/path/..." trigger routes per component
    for trigger in manifest["trigger"]["http"]:
        print(trigger["route"].removesuffix("/..."), trigger["component"])
PY
}

# router NAME PORT URLS DESCRIPTOR: the production routes of the descriptor, locally. URLS is the
# name of an associative array: function -> base URL.
router() {
  local -n urls=$3
  local routes=() prefix function
  while read -r prefix function; do
    routes+=(--route "$prefix=${urls[$function]}")
  done < <(descriptor_routes "$4")
  start "$1" "$dev" router --listen "127.0.0.1:$2" "${routes[@]}"
  wait_until "$1" "$PID" http_ok "http://127.0.0.1:$2/health" >/dev/null \
    || fail "$1 did not start on port $2 (chosen before the functions started; taken since?)"
}
router router-workers "$workers_router_port" workers_url wrangler.toml
router router-spin "$spin_router_port" spin_url spin.toml
echo "== all ready after $(elapsed) ms"

# The webhooks Worker's scheduled (Cron Trigger) entry point, as miniflare triggers it; Spin has no
# cron, so there the scenario's retry comes through POST /v1/webhooks/dispatch.
scheduled_url=${workers_url[webhooks]:+${workers_url[webhooks]}/cdn-cgi/handler/scheduled}
# hrana SQL: one statement through the Turso stand-in, as an operator's shell would (fails the run
# on an error); prints the answer.
hrana() {
  local answer
  answer=$(python3 -c 'import json, sys; print(json.dumps({"requests": [{"type": "execute", "stmt": {"sql": sys.argv[1]}}, {"type": "close"}]}))' "$1" \
    | curl -fsS -H "authorization: Bearer $token" -H 'content-type: application/json' \
      --data-binary @- "http://127.0.0.1:$hrana_port/v2/pipeline") || fail "the Hrana stand-in refused: $1"
  [[ $answer != *'"type":"error"'* ]] || fail "the Hrana stand-in answered an error: $answer"
  echo "$answer"
}
for runtime in workers:$workers_base spin:$spin_base; do
  echo "== scenario against the ${runtime%%:*} builds (${runtime#*:})"
  scheduled=
  [[ ${runtime%%:*} == workers ]] && scheduled=$scheduled_url
  AGENTIDP_BASE_URL=${runtime#*:} AGENTIDP_SCHEDULED_URL=$scheduled AGENTIDP_EDGE_RUNTIME=${runtime%%:*} \
    cargo test -q -p agentidp-tests --test scenario --test operator \
    || { hrana "SELECT kid, alg, created_at, retired_at FROM signing_keys ORDER BY created_at"
         fail "scenario against the ${runtime%%:*} builds"; }
  echo "== agentidp doctor against the ${runtime%%:*} builds"
  AGENTIDP_CONFIG_DIR="$work/doctor-config" "$root/target/debug/agentidp" doctor -o table \
    --url "${runtime#*:}" || fail "agentidp doctor against the ${runtime%%:*} builds"
done
# A new instance of a release older than the schema it meets (a rollback of the code without the
# database): with a migration this build does not know in the database, a fresh wasmtime process
# of the token component refuses to guess and says so, as RFC 6749 errors under /oauth2/. Running
# instances (Spin and Workers alike keep an instance for many requests) checked the schema when
# they started; expand-then-contract keeps them correct, and every new one checks again.
echo "== a new instance older than the database schema answers 503"
hrana "INSERT INTO schema_migrations (version, applied_at) VALUES ('9999_from_the_future', 0)" >/dev/null
start wasmtime-older wasmtime serve -S cli --addr 127.0.0.1:0 "${envs[@]}" "$root/build/spin/token.wasm"
older_pid=$PID
wait_until wasmtime-older "$older_pid" bound wasmtime-older >/dev/null \
  || fail "the older instance did not start listening"
older=$(serving_url wasmtime-older)
newer_jwks=$(curl -sS -w ' %{http_code}' "$older/.well-known/jwks.json")
newer_token=$(curl -sS -w ' %{http_code}' -d grant_type=client_credentials "$older/oauth2/token")
stop_pid "$older_pid"
hrana "DELETE FROM schema_migrations WHERE version = '9999_from_the_future'" >/dev/null
[[ $newer_jwks == *'"code":"schema_newer_than_binary"'*' 503' ]] \
  || fail "an older instance answered: $newer_jwks"
[[ $newer_token == *'"error":"temporarily_unavailable"'*'9999_from_the_future'*' 503' ]] \
  || fail "an older instance's token endpoint answered: $newer_token"
# The descriptors deploy as they are: wrangler bundles each Worker without uploading anything.
for function in "${FUNCTIONS[@]}"; do
  echo "== wrangler deploy --dry-run --env $function"
  AGENTIDP_SKIP_EDGE_BUILD=1 npx --no-install wrangler deploy --dry-run --env "$function" \
    --outdir "$work/dry-run/$function" >"$work/dry-run-$function.log" 2>&1 \
    || { tail -n 20 "$work/dry-run-$function.log" >&2; fail "wrangler deploy --dry-run --env $function"; }
done
echo "== edge tests passed in $(elapsed) ms"
