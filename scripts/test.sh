#!/usr/bin/env bash
# The test command (CONTRIBUTING.md, CI): installs what the tests need, then runs every check and test.
#
#   bash scripts/test.sh                  # everything, in order, stopping at the first failure
#   bash scripts/test.sh python           # only some stages (names below), e.g. while iterating
#   bash scripts/test.sh fmt clippy wasm
#
# Stages: setup fmt clippy wasm build standins (the local Turso and Upstash stand-ins driven by the
# official npm clients) rust python browser (the portal and /docs in Debian's Chromium, driven by
# playwright-core; then tests/identity/, a did:web document resolved by did-resolver) schemathesis
# (schema-driven API fuzzing of the served OpenAPI document, short form) edge (the wasm builds end to end in workerd via miniflare and in wasmtime,
# scripts/test-edge.sh), and, on request only, fuzz (a short cargo fuzz smoke run of every target:
# `bash scripts/test.sh fuzz`; add it to ALL_STAGES to run it by default). Idempotent and
# prompt-free on a fresh Debian machine with rustup (CI runs it as `bash .ci/run` with CI=true and
# no stdin). It installs into the rustup toolchain,
# ~/.cargo/bin (pinned edge tools), node_modules, target/ (ignored by git) and, through apt-get,
# redis-server and chromium when missing. Servers it starts listen on free loopback ports, are started as
# `(cd dir && exec cmd) &` so `$!` is the server itself, and are killed by that PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
PYENV=$TARGET_DIR/pyenv
PY_REQUIREMENTS=tests/python/requirements.txt

# Function crates and the shared crate: each must build for both edge targets.
WASM_CRATES=(agentidp-shared agentidp-token agentidp-agents agentidp-audit agentidp-marketplace
  agentidp-webhooks)
WASM_TARGETS=(wasm32-unknown-unknown wasm32-wasip2)
ALL_STAGES=(setup fmt clippy wasm build standins rust python browser schemathesis edge)
# Stages that run only when named: `fuzz` needs the nightly toolchain and its own build (~7 min cold);
# `static` builds the release's static Linux binary (musl, a release build) and serves the
# walkthrough from it.
OPTIONAL_STAGES=(fuzz static)
MUSL_TARGET=x86_64-unknown-linux-musl

export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# The tests choose their own deployment; a base URL left in the caller's shell must not leak in.
unset AGENTIDP_BASE_URL

STARTED=$SECONDS
section() { printf '\n==== %s  (+%ss)\n' "$*" $((SECONDS - STARTED)); }
fail() { printf '\nFAILED: %s\n' "$*" >&2; exit 1; }

# --- background processes: only the PIDs this script started, killed on any exit ---------------
PIDS=()
TMP_DIRS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      # Graceful shutdown finishes in-flight requests; give it a few seconds, then insist.
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  local dir
  for dir in "${TMP_DIRS[@]}"; do rm -rf "$dir"; done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_http URL SECONDS PID: polls until URL answers 2xx, failing if PID dies or time runs out.
wait_http() {
  local url=$1 seconds=$2 pid=$3 deadline=$((SECONDS + $2))
  while ((SECONDS < deadline)); do
    kill -0 "$pid" 2>/dev/null || return 1
    if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
      "$url" 2>/dev/null; then
      return 0
    fi
    sleep 0.2
  done
  echo "no answer from $url within ${seconds}s" >&2
  return 1
}

# start_native_server: sets SERVER_PID, SERVER_BASE, SERVER_LOG for a fresh `agentidp serve`.
start_native_server() {
  local dir port
  dir=$(mktemp -d "${TMPDIR:-/tmp}/agentidp-test.XXXXXX")
  TMP_DIRS+=("$dir")
  port=$(free_port)
  SERVER_BASE=http://127.0.0.1:$port
  SERVER_LOG=$dir/server.log
  (cd "$dir" && AGENTIDP_LOG=${AGENTIDP_LOG:-warn} \
    exec "$TARGET_DIR/debug/agentidp" serve --listen "127.0.0.1:$port" --data-dir "$dir/data") \
    >"$SERVER_LOG" 2>&1 </dev/null &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  if ! wait_http "$SERVER_BASE/health" 30 "$SERVER_PID"; then
    tail -n 50 "$SERVER_LOG" >&2 || true
    fail "agentidp serve did not become ready"
  fi
}

# run_python_suite BASE_URL: the third-party client test against any deployment.
run_python_suite() {
  AGENTIDP_BASE_URL=$1 timeout -k 10 600 "$PYENV/bin/python" -m pytest -q -p no:cacheprovider \
    tests/python
}

# Debian's Chromium for the browser tests: playwright-core cannot download its own browser here, and
# drives this one through executablePath. Installed only when missing.
ensure_chromium() {
  if [[ -x /usr/bin/chromium ]]; then
    /usr/bin/chromium --version 2>/dev/null | head -n 1
  else
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium \
      || fail "installing chromium (apt-get)"
  fi
}

# --- stages ----------------------------------------------------------------------------------

stage_setup() {
  section "setup: Rust toolchain (rustfmt, clippy, wasm targets)"
  command -v rustup >/dev/null || fail "rustup is required (https://rustup.rs)"
  local installed
  installed=$(rustup component list --installed)
  for component in rustfmt clippy; do
    grep -q "^$component" <<<"$installed" || rustup component add "$component"
  done
  for target in "${WASM_TARGETS[@]}"; do
    grep -q "^rust-std-$target\$" <<<"$installed" || rustup target add "$target"
  done

  section "setup: Python virtualenv for the third-party client test ($PYENV)"
  command -v python3 >/dev/null || fail "python3 is required"
  # The stamp records what was installed; a changed requirements file or Python reinstalls.
  local stamp=$PYENV/.requirements.stamp want
  want="$(python3 --version 2>&1) $(sha256sum "$PY_REQUIREMENTS" | cut -d' ' -f1)"
  if [[ -x $PYENV/bin/python && -f $stamp && $(cat "$stamp") == "$want" ]]; then
    echo "up to date"
  else
    if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
      # Debian's python3 ships venv separately.
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
    fi
    rm -rf "$PYENV"
    python3 -m venv "$PYENV"
    "$PYENV/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$PY_REQUIREMENTS"
    echo "$want" >"$stamp"
  fi

  # --- tools of later issues, installed here idempotently -------------------------------------
  section "setup: redis-server (the Redis key-value backend's tests start their own)"
  if command -v redis-server >/dev/null; then
    redis-server --version
  else
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server
  fi
  section "setup: zsh and fish (the CLI's completion scripts are syntax-checked by each shell)"
  local shells=() shell
  for shell in zsh fish; do command -v "$shell" >/dev/null || shells+=("$shell"); done
  if ((${#shells[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${shells[@]}"
  else
    echo "zsh and fish present"
  fi
  section "setup: chromium (the browser tests drive it through playwright-core)"
  ensure_chromium
  # The edge runtimes' tools (wasmtime-cli, worker-build, wasm-bindgen-cli, wrangler) are
  # installed by scripts/install-edge-tools.sh from the `edge` stage.
  # ------------------------------------------------------------------------------------------
}

stage_fmt() {
  section "cargo fmt --check"
  cargo fmt --all -- --check || fail "formatting (run: cargo fmt --all)"
}

stage_clippy() {
  section "cargo clippy -D warnings"
  cargo clippy --workspace --all-targets -- -D warnings || fail "clippy"
}

stage_wasm() {
  local packages=() crate target
  for crate in "${WASM_CRATES[@]}"; do packages+=(-p "$crate"); done
  for target in "${WASM_TARGETS[@]}"; do
    section "cargo check --target $target (shared + the five functions)"
    cargo check --target "$target" "${packages[@]}" || fail "cargo check --target $target"
  done
}

stage_build() {
  section "cargo build -p agentidp -p agentidp-dev"
  cargo build -p agentidp -p agentidp-dev || fail "building agentidp and agentidp-dev"
}

# node_modules exactly as package-lock.json pins it, reinstalled only when the lock changes (the
# same stamp scripts/install-edge-tools.sh keeps, so either installs for both).
ensure_node_modules() {
  command -v npm >/dev/null || fail "npm is required (Node 20)"
  local sum
  sum=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [[ $(cat node_modules/.agentidp-lock-sum 2>/dev/null) != "$sum" ]]; then
    npm ci --no-audit --no-fund || fail "npm ci"
    echo "$sum" >node_modules/.agentidp-lock-sum
  fi
}

# The stand-ins must speak the real protocols: the official clients, pinned in package.json, run
# against `agentidp-dev backends` (tests/standins/ starts it and a redis-server on free ports).
stage_standins() {
  section "stand-ins: @libsql/client and @upstash/redis against agentidp-dev backends"
  [[ -x $TARGET_DIR/debug/agentidp-dev ]] || stage_build
  command -v redis-server >/dev/null || stage_setup
  ensure_node_modules
  AGENTIDP_DEV_BIN=$TARGET_DIR/debug/agentidp-dev timeout -k 10 300 node --test tests/standins/ \
    || fail "stand-in protocol tests"
}

stage_rust() {
  section "cargo test --workspace (end-to-end tests start the real server on loopback)"
  # The e2e support starts these binaries instead of running cargo from inside a test.
  AGENTIDP_BIN=$TARGET_DIR/debug/agentidp AGENTIDP_DEV_BIN=$TARGET_DIR/debug/agentidp-dev \
    timeout -k 30 2400 cargo test --workspace || fail "cargo test"
}

stage_python() {
  section "third-party client (Authlib + PyJWT) against agentidp serve"
  [[ -x $TARGET_DIR/debug/agentidp ]] || stage_build
  [[ -x $PYENV/bin/python ]] || stage_setup
  start_native_server
  echo "server $SERVER_BASE (pid $SERVER_PID)"
  if ! run_python_suite "$SERVER_BASE"; then
    echo "--- server log (last 50 lines)" >&2
    tail -n 50 "$SERVER_LOG" >&2 || true
    fail "third-party client test"
  fi
}

# The portal and the API reference in a real browser (tests/browser/portal.test.mjs): Debian's
# Chromium driven by playwright-core against a fresh native server (GitHub federation on, so the
# trust-policies panel can add a policy). Screenshots of each page go to target/screenshots/.
stage_browser() {
  section "browser: the portal and /docs in Chromium (playwright-core) against agentidp serve"
  ensure_chromium
  ensure_node_modules
  bash scripts/vendor-portal.sh --check || fail "portal/vendor/ is stale (bash scripts/vendor-portal.sh)"
  [[ -x $TARGET_DIR/debug/agentidp ]] || stage_build
  GITHUB_OIDC_AUDIENCE=https://agentidp.test start_native_server
  echo "server $SERVER_BASE (pid $SERVER_PID)"
  local shots=$TARGET_DIR/screenshots
  mkdir -p "$shots"
  rm -f "$shots"/*.png
  if ! AGENTIDP_BASE_URL=$SERVER_BASE SCREENSHOT_DIR=$shots timeout -k 10 300 \
    node --test tests/browser/; then
    echo "--- server log (last 50 lines)" >&2
    tail -n 50 "$SERVER_LOG" >&2 || true
    fail "browser tests (screenshots so far in $shots)"
  fi
  echo "screenshots:"
  ls -1 "$shots"
  section "did:web: a standard DID resolver (did-resolver, web-did-resolver) against the same server"
  if ! AGENTIDP_BASE_URL=$SERVER_BASE timeout -k 10 120 node --test tests/identity/; then
    tail -n 50 "$SERVER_LOG" >&2 || true
    fail "did:web resolution test"
  fi
}

# Schemathesis against the debug server's /openapi.json: every operation, valid and invalid inputs,
# authenticated, then stateful sequences through the document's links (scripts/schemathesis.sh).
# A bounded number of examples keeps it to about 1-2 minutes warm.
stage_schemathesis() {
  section "schemathesis: the served OpenAPI document against the running server"
  [[ -x $TARGET_DIR/debug/agentidp ]] || stage_build
  [[ -x $PYENV/bin/st ]] || stage_setup
  AGENTIDP_BIN=$TARGET_DIR/debug/agentidp PYENV=$PYENV \
    SCHEMATHESIS_EXAMPLES=${SCHEMATHESIS_EXAMPLES:-20} timeout -k 10 900 \
    bash scripts/schemathesis.sh || fail "schemathesis found responses that contradict the schema"
}

# cargo fuzz, every target for a few seconds from the committed corpora (scripts/fuzz.sh --smoke).
# Installs nightly and cargo-fuzz when missing; skips with a message when it cannot.
stage_fuzz() {
  section "fuzz: a short cargo fuzz run of every target (scripts/fuzz.sh --smoke)"
  timeout -k 10 3600 bash scripts/fuzz.sh --smoke "${FUZZ_SECONDS:-10}" || fail "a fuzz target crashed"
}

# The release's static binary: x86_64 Linux on musl, no shared libraries (the Dockerfile's and the
# release workflow's). Built with Debian's musl-gcc for the C parts (SQLite in libSQL, ring), then
# the walkthrough (the scenario's bootstrap-to-revocation and every route) runs against it.
stage_static() {
  section "static: the musl release binary ($MUSL_TARGET)"
  rustup target list --installed | grep -qx "$MUSL_TARGET" || rustup target add "$MUSL_TARGET"
  command -v musl-gcc >/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends musl-tools \
      || fail "installing musl-tools (apt-get)"
  }
  CC_x86_64_unknown_linux_musl=musl-gcc cargo build --locked --release --target "$MUSL_TARGET" \
    -p agentidp || fail "building the static binary"
  local binary=$TARGET_DIR/$MUSL_TARGET/release/agentidp
  if ldd "$binary" 2>&1 | grep -q '=>'; then fail "$binary links shared libraries"; fi
  ls -l "$binary"
  section "static: the walkthrough served by the static binary"
  AGENTIDP_BIN=$binary cargo test -q -p agentidp-tests --test scenario -- \
    bootstrap_to_revocation every_route_answers_as_its_access_level_says \
    || fail "the walkthrough against the static binary"
}

# The edge builds in their real runtimes: the Workers in workerd, driven in-process by miniflare
# (tests/edge/workers.mjs), the Spin components in `wasmtime serve`. Not `wrangler dev`: five of
# them share the project's .wrangler/state, and on a fresh clone their workerd processes race to
# create one SQLite file; the loser dies with SQLITE_BUSY ("The Workers runtime failed to start"),
# on a first run only. Processes start one at a time on free ports with bounded readiness waits.
# A machine's first run installs wasmtime-cli (trimmed to `serve`, ~7 min), worker-build (~4 min)
# and wasm-bindgen-cli (~3 min).
stage_edge() {
  section "edge: install tools (scripts/install-edge-tools.sh)"
  bash scripts/install-edge-tools.sh || fail "installing the edge tools"
  section "edge: build the ten artifacts (scripts/build-edge.sh)"
  bash scripts/build-edge.sh || fail "building the edge artifacts"
  [[ -x $TARGET_DIR/debug/agentidp && -x $TARGET_DIR/debug/agentidp-dev ]] || stage_build
  section "edge: end-to-end in workerd and wasmtime (scripts/test-edge.sh)"
  timeout -k 10 900 bash scripts/test-edge.sh || fail "edge end-to-end tests"
}

stages=("$@")
((${#stages[@]})) || stages=("${ALL_STAGES[@]}")
for stage in "${stages[@]}"; do
  declare -F "stage_$stage" >/dev/null \
    || fail "unknown stage '$stage' (one of: ${ALL_STAGES[*]} ${OPTIONAL_STAGES[*]})"
done
for stage in "${stages[@]}"; do "stage_$stage"; done
section "all stages passed: ${stages[*]}"
