#!/usr/bin/env bash
# Installs, once per machine and idempotently, what the edge builds and their end-to-end tests need:
# wasm targets, worker-build + wasm-bindgen (Workers), wasmtime (runs the Spin components), the npm
# tooling (wrangler to deploy, miniflare with workerd for the tests, wasm-opt, esbuild) and
# redis-server (behind the Upstash stand-in).
# Versions are pinned: wasm-bindgen must equal the `wasm-bindgen` crate pinned in Cargo.toml,
# wrangler 4.86 is the last release that runs on Node 20, and wasmtime 48.0.8 is the newest that
# builds with this toolchain (50.x needs rustc 1.97) and runs the Preview 3 components spin-sdk 7 makes.
set -euo pipefail
cd "$(dirname "$0")/.."

WORKER_BUILD_VERSION=0.8.7
WASM_BINDGEN_VERSION=0.2.130
WASMTIME_VERSION=48.0.8
# What `wasmtime serve` needs, not the full default set (a full build takes ~25 min on 2 cores).
WASMTIME_FEATURES=run,serve,cranelift,component-model,component-model-async,wasi-http,cache,parallel-compilation,pooling-allocator

has_version() { command -v "$1" >/dev/null 2>&1 && "$1" --version 2>/dev/null | grep -q "$2"; }

rustup target add wasm32-unknown-unknown wasm32-wasip2 >/dev/null

if ! has_version worker-build "$WORKER_BUILD_VERSION"; then
  echo "installing worker-build $WORKER_BUILD_VERSION"
  cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked
fi
if ! has_version wasm-bindgen "$WASM_BINDGEN_VERSION"; then
  echo "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION"
  # Not --locked: its lockfile wants a webpki-roots version the registry no longer serves.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi
if ! has_version wasmtime "$WASMTIME_VERSION"; then
  echo "installing wasmtime-cli $WASMTIME_VERSION (serve only)"
  cargo install wasmtime-cli --version "$WASMTIME_VERSION" --locked \
    --no-default-features --features "$WASMTIME_FEATURES"
fi

lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat node_modules/.agentidp-lock-sum 2>/dev/null)" != "$lock_sum" ]; then
  npm ci --no-audit --no-fund
  echo "$lock_sum" > node_modules/.agentidp-lock-sum
fi

if ! command -v redis-server >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q && apt-get install -y -q redis-server
fi
