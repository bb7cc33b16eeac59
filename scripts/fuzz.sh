#!/usr/bin/env bash
# Coverage-guided fuzzing with cargo fuzz (libFuzzer) of the parsers that face untrusted input:
# fuzz/fuzz_targets/*.rs (the OAuth form, client authentication, access-token and client-assertion
# verification, every JSON body and query of the management API, the Hrana and Upstash answers).
#
#   bash scripts/fuzz.sh                   # every target for 60 s, growing the committed corpora
#   bash scripts/fuzz.sh 600 access_token  # one target for 10 minutes
#   bash scripts/fuzz.sh --smoke 10        # the test command's stage: 10 s each, corpora untouched
#
# A normal run adds what libFuzzer found interesting to fuzz/corpus/<target>/ and then minimizes
# each corpus (the seed-* files written by hand stay; see `minimize`), so commit fuzz/corpus
# afterwards. --smoke reads the committed
# corpora and writes new inputs to a temporary directory only. A crash stops the run: the input is
# in fuzz/artifacts/<target>/, and `cargo +nightly fuzz run -s none <target> <file>` replays it.
#
# Installs, idempotently: the nightly toolchain (rustup, minimal profile) and cargo-fuzz (pinned
# below). With --smoke, a machine that cannot install them skips with a message instead of failing.
# Builds use `-s none` (no AddressSanitizer: the targets are safe Rust, and ASan halves the speed)
# with debug assertions and overflow checks on (cargo fuzz's default).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

CARGO_FUZZ_VERSION=0.13.2
# Inputs larger than this say nothing new about these parsers and slow every run down.
MAX_LEN=8192

SMOKE=0
if [[ ${1:-} == --smoke ]]; then
  SMOKE=1
  shift
fi
SECONDS_PER_TARGET=${1:-60}
shift || true
mapfile -t ALL_TARGETS < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^agentidp-fuzz$')
TARGETS=("$@")
((${#TARGETS[@]})) || TARGETS=("${ALL_TARGETS[@]}")

say() { printf '\n==== %s\n' "$*"; }
skip_or_fail() {
  if ((SMOKE)); then
    echo "fuzz: SKIPPED: $*" >&2
    exit 0
  fi
  echo "fuzz: $*" >&2
  exit 1
}

say "toolchain: nightly and cargo-fuzz $CARGO_FUZZ_VERSION"
command -v rustup >/dev/null || skip_or_fail "rustup is required to install the nightly toolchain"
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  timeout 600 rustup toolchain install nightly --profile minimal \
    || skip_or_fail "cannot install the nightly toolchain (offline?)"
fi
rustup run nightly rustc --version
if [[ $(cargo fuzz --version 2>/dev/null) != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
  timeout 1200 cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked \
    || skip_or_fail "cannot install cargo-fuzz $CARGO_FUZZ_VERSION"
fi
cargo fuzz --version

say "build the fuzz targets (nightly, release with debug assertions)"
(cd fuzz && cargo +nightly fuzz build -s none)

TMP_DIRS=()
cleanup() { local d; for d in "${TMP_DIRS[@]}"; do rm -rf "$d"; done; }
trap cleanup EXIT

# minimize TARGET CORPUS LOG: keeps the hand-written seeds (seed-*) and the smallest set of found
# inputs that still reaches every edge they reach together (libFuzzer's set-cover merge over edges,
# not hit counts or comparisons, which would keep many near-duplicates), named by content hash.
minimize() {
  local target=$1 corpus=$2 log=$3 merged seeds file
  merged=$(mktemp -d "${TMPDIR:-/tmp}/agentidp-fuzz-merge.XXXXXX")
  TMP_DIRS+=("$merged")
  "fuzz/target/x86_64-unknown-linux-gnu/release/$target" -set_cover_merge=1 -use_counters=0 \
    -use_cmp=0 -max_len="$MAX_LEN" "$merged" "$corpus" >"$log" 2>&1 \
    || { tail -n 30 "$log" >&2; exit 1; }
  seeds=$(for file in "$corpus"/seed-*; do
    [[ -e $file ]] && sha1sum "$file" | cut -d' ' -f1; done)
  find "$corpus" -type f ! -name 'seed-*' -delete
  for file in "$merged"/*; do
    [[ -e $file ]] || continue
    grep -qx "$(basename "$file")" <<<"$seeds" || cp "$file" "$corpus/"
  done
}

RESULTS=()
for target in "${TARGETS[@]}"; do
  [[ -f fuzz/fuzz_targets/$target.rs ]] || { echo "unknown target $target (one of: ${ALL_TARGETS[*]})" >&2; exit 1; }
  corpus=$ROOT/fuzz/corpus/$target
  mkdir -p "$corpus"
  # libFuzzer writes new inputs to the first corpus directory it is given.
  if ((SMOKE)); then
    scratch=$(mktemp -d "${TMPDIR:-/tmp}/agentidp-fuzz.XXXXXX")
    TMP_DIRS+=("$scratch")
    dirs=("$scratch" "$corpus")
  else
    dirs=("$corpus")
  fi
  before=$(find "$corpus" -type f | wc -l)
  say "$target: ${SECONDS_PER_TARGET}s from $before committed inputs"
  log=$(mktemp "${TMPDIR:-/tmp}/agentidp-fuzz-log.XXXXXX")
  TMP_DIRS+=("$log")
  if ! (cd fuzz && cargo +nightly fuzz run -s none "$target" "${dirs[@]}" -- \
    -max_total_time="$SECONDS_PER_TARGET" -max_len="$MAX_LEN" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1) >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz: $target FAILED; the input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
  ((SMOKE)) || minimize "$target" "$corpus" "$log"
  after=$(find "$corpus" -type f | wc -l)
  size=$(du -sk "$corpus" | cut -f1)
  RESULTS+=("$(printf '%-18s %10s %6s %8s %8s %7sK' "$target" "${runs:-?}" "${cov:-?}" "$before" "$after" "$size")")
done

say "summary: ${SECONDS_PER_TARGET}s per target, no crashes"
printf '%-18s %10s %6s %8s %8s %8s\n' target executions cov 'inputs' 'after' 'corpus'
printf '%s\n' "${RESULTS[@]}"
