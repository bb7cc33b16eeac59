#!/usr/bin/env bash
# CPU time per token inside wasm: the mint/verify microbenchmark built for wasm32-wasip2 (release,
# size-optimised as deployed) and run under wasmtime, next to the same benchmark natively.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_PROFILE_RELEASE_OPT_LEVEL=z CARGO_PROFILE_RELEASE_LTO=true \
  CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 CARGO_PROFILE_RELEASE_PANIC=abort
wasm=$(cargo bench -p agentidp-shared --bench mint --target wasm32-wasip2 --no-run --message-format=json 2>/dev/null \
  | grep -o '"executable":"[^"]*\.wasm"' | tail -1 | cut -d'"' -f4)
echo "== inside wasm (wasmtime, opt-level z as deployed)"
wasmtime run "$wasm"
unset CARGO_PROFILE_RELEASE_OPT_LEVEL CARGO_PROFILE_RELEASE_LTO CARGO_PROFILE_RELEASE_CODEGEN_UNITS CARGO_PROFILE_RELEASE_PANIC
echo "== native (release)"
cargo bench -q -p agentidp-shared --bench mint 2>/dev/null
