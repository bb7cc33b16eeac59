#!/usr/bin/env bash
# Builds the edge artifacts: each function as a Cloudflare Worker (wasm32-unknown-unknown via
# worker-build) and as a Spin component (wasm32-wasip2), in release mode optimised for size.
#
#   bash scripts/build-edge.sh                  # all ten artifacts, then a size table
#   bash scripts/build-edge.sh workers token    # one platform, one function (wrangler's build command)
#
# Tools it expects (scripts/install-edge-tools.sh installs them): worker-build, wasm-bindgen,
# node_modules/.bin/{wasm-opt,esbuild}. Set AGENTIDP_SKIP_EDGE_BUILD=1 to make it a no-op (tests
# build once, then start `wrangler dev`, which would otherwise run this again).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${AGENTIDP_SKIP_EDGE_BUILD:-}" = 1 ] && exit 0

FUNCTIONS=(token agents audit marketplace webhooks)
platforms=${1:-workers spin}
functions=${2:-${FUNCTIONS[*]}}
root=$PWD

# Every tool this build needs, checked up front: a missing one is named with the command that
# installs it, rather than surfacing as `worker-build: command not found` inside wrangler's build.
missing=()
for platform in $platforms; do
  case "$platform" in
    workers)
      command -v worker-build >/dev/null || missing+=(worker-build)
      command -v wasm-bindgen >/dev/null || missing+=(wasm-bindgen)
      [ -x node_modules/.bin/wasm-opt ] || missing+=(node_modules/.bin/wasm-opt)
      [ -x node_modules/.bin/esbuild ] || missing+=(node_modules/.bin/esbuild)
      ;;
    spin)
      rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2 \
        || missing+=("the wasm32-wasip2 Rust target")
      ;;
  esac
done
if [ ${#missing[@]} -gt 0 ]; then
  printf 'build-edge: missing %s.\nInstall the pinned edge tools once with:\n  bash scripts/install-edge-tools.sh\n' \
    "$(IFS=,; echo "${missing[*]}" | sed 's/,/, /g')" >&2
  exit 127
fi

# Size over speed for the wasm builds only; host tools keep the normal release profile.
export CARGO_PROFILE_RELEASE_OPT_LEVEL=z CARGO_PROFILE_RELEASE_LTO=true \
  CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 CARGO_PROFILE_RELEASE_PANIC=abort
# worker-build would download these; point it at the pinned local copies instead.
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$(command -v wasm-bindgen)}"
export WASM_OPT_BIN="$root/node_modules/.bin/wasm-opt" ESBUILD_BIN="$root/node_modules/.bin/esbuild"

for platform in $platforms; do
  for function in $functions; do
    case "$platform" in
      workers)
        (cd "functions/$function" && worker-build --release >/dev/null)
        # worker-build keeps a names section for debugging; strip it for the deployed size.
        "$WASM_OPT_BIN" -Oz --strip-debug --enable-bulk-memory --enable-nontrapping-float-to-int \
          "functions/$function/build/index_bg.wasm" -o "functions/$function/build/index_bg.wasm"
        ;;
      spin)
        # The linker keeps a names section (about a fifth of a component) unless told to strip it.
        CARGO_PROFILE_RELEASE_STRIP=symbols \
          cargo build --quiet --release --target wasm32-wasip2 -p "agentidp-$function"
        mkdir -p build/spin
        cp "${CARGO_TARGET_DIR:-$root/target}/wasm32-wasip2/release/agentidp_$function.wasm" \
          "build/spin/$function.wasm"
        ;;
      *) echo "unknown platform $platform (workers or spin)" >&2; exit 2 ;;
    esac
  done
done

if [ $# -eq 0 ]; then
  printf '%-12s %-8s %10s %10s\n' function platform raw gzipped
  for function in "${FUNCTIONS[@]}"; do
    for pair in "workers:functions/$function/build/index_bg.wasm" "spin:build/spin/$function.wasm"; do
      file=${pair#*:}
      [ -f "$file" ] || continue
      raw=$(stat -c %s "$file"); gz=$(gzip -9c "$file" | wc -c)
      printf '%-12s %-8s %9sK %9sK\n' "$function" "${pair%%:*}" $((raw / 1024)) $((gz / 1024))
      # Refused above what Cloudflare's free plan deploys (3 MiB gzipped per Worker); above our own
      # 1 MiB target it is said, so growth is seen where it happens.
      if [ "$gz" -gt 3145728 ]; then echo "over the 3 MiB gzipped limit: $file" >&2; exit 1; fi
      if [ "$gz" -gt 1048576 ]; then echo "note: over the 1 MiB gzipped target: $file" >&2; fi
    done
  done
fi
