#!/usr/bin/env bash
# End-to-end tests of the edge builds in the real runtimes: the five Workers in workerd (through
# `wrangler dev`) and the five Spin components in `wasmtime serve`, on libSQL-over-HTTP and Upstash
# REST served locally by `agentidp dev-backends` (the embedded engine and a real redis-server).
# Each runtime's five functions sit behind `agentidp dev-router`, as they sit behind one host in
# production, and the same scenario suite as the native server's runs against each.
#
# Expects: the ten artifacts (scripts/build-edge.sh), target/debug/agentidp, redis-server, wasmtime,
# node_modules (wrangler). scripts/test.sh arranges all of that.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# start NAME CMD...: runs CMD in the background with its own log; $! is the command itself.
start() {
  local name=$1; shift
  (exec "$@" >"$work/$name.log" 2>&1) &
  pids+=($!)
}

# wait_ready NAME URL [SINCE_MS]: milliseconds from SINCE_MS (default: now) until URL first answers
# 200, or fail showing NAME's log.
wait_ready() {
  local name=$1 url=$2 started=${3:-$(date +%s%3N)} now
  for _ in $(seq 1 3000); do
    if curl -sf -o /dev/null "$url"; then
      now=$(date +%s%3N); echo $((now - started)); return 0
    fi
    sleep 0.01
  done
  echo "$name did not become ready at $url; its log:" >&2
  tail -40 "$work/$name.log" >&2
  return 1
}

agentidp=$root/target/debug/agentidp
token=edge-test-token
redis_port=19379 hrana_port=19080 upstash_port=19079
FUNCTIONS=(token agents audit marketplace webhooks)

start redis redis-server --port $redis_port --bind 127.0.0.1 --save "" --appendonly no
for _ in $(seq 1 50); do redis-cli -p $redis_port ping >/dev/null 2>&1 && break; sleep 0.1; done
start backends "$root/target/debug/agentidp-dev" backends --data-dir "$work/backends" \
  --hrana-listen 127.0.0.1:$hrana_port --upstash-listen 127.0.0.1:$upstash_port \
  --redis-url redis://127.0.0.1:$redis_port --token $token
wait_ready backends "http://127.0.0.1:$hrana_port/v3" >/dev/null
# GitHub Actions' OIDC issuer, stood in: the functions fetch its JWKS over loopback; the scenario
# signs workflow tokens with the same key (it creates the key file at start).
oidc_port=19090
start oidc-issuer "$root/target/debug/agentidp-dev" oidc-issuer --listen 127.0.0.1:$oidc_port \
  --key-file "$work/oidc-key.pem"
wait_ready oidc-issuer "http://127.0.0.1:$oidc_port/.well-known/jwks" >/dev/null
export AGENTIDP_OIDC_ISSUER_URL=http://127.0.0.1:$oidc_port AGENTIDP_OIDC_KEY_FILE=$work/oidc-key.pem

# config ISSUER: the variables every function gets, as NAME=VALUE lines. The organization limit is
# low enough for the scenario to reach it, proving the limiter exact through Upstash from inside wasm.
config() {
  cat <<VARS
AGENTIDP_ISSUER=$1
AGENTIDP_DATABASE_URL=http://127.0.0.1:$hrana_port
AGENTIDP_DATABASE_AUTH_TOKEN=$token
UPSTASH_REDIS_REST_URL=http://127.0.0.1:$upstash_port
UPSTASH_REDIS_REST_TOKEN=$token
RATE_LIMIT_PER_MINUTE=60
GITHUB_OIDC_ISSUER=http://127.0.0.1:$oidc_port
GITHUB_OIDC_AUDIENCE=https://agentidp.test
VARS
}

# router NAME PORT BASE_PORT: the production routes of wrangler.toml / spin.toml, locally.
router() {
  local p=$3
  start "$1" "$root/target/debug/agentidp-dev" router --listen 127.0.0.1:$2 \
    --route /oauth2/=http://127.0.0.1:$((p + 1)) --route /.well-known/=http://127.0.0.1:$((p + 1)) \
    --route /health=http://127.0.0.1:$((p + 1)) --route /openapi.json=http://127.0.0.1:$((p + 1)) \
    --route /v1/orgs=http://127.0.0.1:$((p + 2)) --route /v1/agents=http://127.0.0.1:$((p + 2)) \
    --route /v1/oidc/=http://127.0.0.1:$((p + 2)) --route /v1/audit/=http://127.0.0.1:$((p + 3)) \
    --route /v1/marketplace/=http://127.0.0.1:$((p + 4)) --route /v1/webhooks=http://127.0.0.1:$((p + 5)) \
    --route /v1/billing/=http://127.0.0.1:$((p + 5))
  wait_ready "$1" "http://127.0.0.1:$2/health" >/dev/null
}

# measure_cold_start NAME URL: in the background, from now (just before NAME starts) to its first 200.
measure_cold_start() {
  local since
  since=$(date +%s%3N)
  (wait_ready "$1" "$2" "$since" >"$work/$1.cold") &
  pollers+=($!)
}
pollers=()

echo "== starting the five Workers in workerd (wrangler dev)"
workers_base=http://127.0.0.1:19100
i=0
for function in "${FUNCTIONS[@]}"; do
  i=$((i + 1))
  vars=()
  while IFS='=' read -r name value; do vars+=(--var "$name:$value"); done < <(config $workers_base)
  measure_cold_start "workerd-$function" http://127.0.0.1:$((19100 + i))/health
  start "workerd-$function" env AGENTIDP_SKIP_EDGE_BUILD=1 WRANGLER_SEND_METRICS=false \
    CLOUDFLARE_CF_FETCH_ENABLED=false "$root/node_modules/.bin/wrangler" dev --env "$function" \
    --ip 127.0.0.1 --port $((19100 + i)) --inspector-port $((19150 + i)) --log-level warn "${vars[@]}"
done
echo "== starting the five Spin components in wasmtime serve"
spin_base=http://127.0.0.1:19200
i=0
for function in "${FUNCTIONS[@]}"; do
  i=$((i + 1))
  envs=()
  while IFS= read -r pair; do envs+=(--env "$pair"); done < <(config $spin_base)
  measure_cold_start "wasmtime-$function" http://127.0.0.1:$((19200 + i))/health
  start "wasmtime-$function" wasmtime serve -S cli --addr 127.0.0.1:$((19200 + i)) "${envs[@]}" \
    "$root/build/spin/$function.wasm"
done

echo "== cold start: process start to first 200 on /health (ms; all ten start at once on 2 cores)"
i=0
for function in "${FUNCTIONS[@]}"; do
  i=$((i + 1))
  wait_ready "workerd-$function" http://127.0.0.1:$((19100 + i))/health >/dev/null
  wait_ready "wasmtime-$function" http://127.0.0.1:$((19200 + i))/health >/dev/null
done
wait "${pollers[@]}"
for function in "${FUNCTIONS[@]}"; do
  printf '%-12s workerd %6s   wasmtime %6s\n' "$function" \
    "$(cat "$work/workerd-$function.cold")" "$(cat "$work/wasmtime-$function.cold")"
done
router router-workers 19100 19100
router router-spin 19200 19200

for runtime in workers:$workers_base spin:$spin_base; do
  echo "== scenario against the ${runtime%%:*} builds (${runtime#*:})"
  AGENTIDP_BASE_URL=${runtime#*:} cargo test -q -p agentidp-tests --test scenario
done
