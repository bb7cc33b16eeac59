#!/usr/bin/env bash
# Schema-driven API fuzzing: Schemathesis (PyPI, pinned in tests/python/requirements.txt) against the
# OpenAPI document a running `agentidp serve` serves at /openapi.json. Every operation is called
# with generated valid and invalid inputs, authenticated with a bootstrapped admin credential (a
# bearer token for /v1/*, Basic credentials for /oauth2/*; tests/schemathesis/schemathesis.toml),
# then sequences of operations are chained through the links Schemathesis infers from responses
# (the stateful phase). Every check runs (tests/schemathesis/schemathesis.toml says why one is off
# and where a 400 is an accepted answer): no 5xx, and no status code, content type, header or body
# that the document does not describe; tests/schemathesis/hooks.py checks each NDJSON line.
#
#   bash scripts/schemathesis.sh              # short form (the test command's `schemathesis` stage)
#   SCHEMATHESIS_EXAMPLES=500 bash scripts/schemathesis.sh      # a longer run
#   AGENTIDP_BASE_URL=http://127.0.0.1:8787 bash scripts/schemathesis.sh   # a server you started
#   bash scripts/schemathesis.sh --include-operation-id issueToken          # more `st run` options
#
# Knobs: SCHEMATHESIS_EXAMPLES (max examples per operation and phase, default 25),
# SCHEMATHESIS_PHASES (default examples,coverage,fuzzing,stateful), SCHEMATHESIS_SEED (default
# random; the seed is printed so a failure can be replayed), SCHEMATHESIS_WORKERS (default 1:
# with more, CPython 3.11 sometimes fails inside Schemathesis with `SystemError: AST constructor
# recursion depth mismatch`, a data race in the interpreter, not a finding),
# AGENTIDP_BIN (default target/debug/agentidp, built if missing), SCHEMATHESIS_REPORT_DIR (JUnit
# report and a HAR of every request, default a temporary directory, kept on failure).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
PYENV=${PYENV:-$TARGET_DIR/pyenv}
EXAMPLES=${SCHEMATHESIS_EXAMPLES:-25}
PHASES=${SCHEMATHESIS_PHASES:-examples,coverage,fuzzing,stateful}
WORKERS=${SCHEMATHESIS_WORKERS:-1}
SEED=${SCHEMATHESIS_SEED:-$((RANDOM * 32768 + RANDOM))}

say() { printf '\n==== %s\n' "$*"; }

SERVER_PID=
WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/agentidp-schemathesis.XXXXXX")
REPORT_DIR=${SCHEMATHESIS_REPORT_DIR:-$WORK_DIR/report}
KEEP_WORK=0
cleanup() {
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  if ((KEEP_WORK)); then
    echo "kept for inspection: $WORK_DIR (server.log, report/)" >&2
  else
    rm -rf "$WORK_DIR"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ ! -x $PYENV/bin/st ]]; then
  say "Python virtualenv with schemathesis ($PYENV)"
  [[ -x $PYENV/bin/python ]] || python3 -m venv "$PYENV"
  "$PYENV/bin/pip" install --quiet --disable-pip-version-check --no-input \
    -r tests/python/requirements.txt
fi

py() { "$PYENV/bin/python" "$@"; }

if [[ -n ${AGENTIDP_BASE_URL:-} ]]; then
  BASE=${AGENTIDP_BASE_URL%/}
else
  BIN=${AGENTIDP_BIN:-$TARGET_DIR/debug/agentidp}
  if [[ ! -x $BIN ]]; then
    say "cargo build -p agentidp"
    cargo build -p agentidp
  fi
  PORT=$(py -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  BASE=http://127.0.0.1:$PORT
  say "start agentidp serve on $BASE"
  # Limits off and a high agent cap: the run is about the API's contract, not its quotas; a
  # generated sequence must not stall on 429 or on the free tier's 100 agents. A Stripe secret,
  # so the billing webhook exists and refuses what is not signed with it (unset, it is a 404).
  (cd "$WORK_DIR" && AGENTIDP_LOG=${AGENTIDP_LOG:-warn} RATE_LIMIT_PER_MINUTE=0 \
    AGENTIDP_RATE_LIMIT_CLIENT_PER_MINUTE=0 AGENTIDP_RATE_LIMIT_IP_PER_MINUTE=0 \
    AGENTIDP_MAX_AGENTS_PER_ORG=1000000 AGENTIDP_KV_TIMEOUT_MS=2000 \
    STRIPE_WEBHOOK_SECRET=whsec_schemathesis \
    exec "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK_DIR/data") \
    >"$WORK_DIR/server.log" 2>&1 </dev/null &
  SERVER_PID=$!
  for _ in $(seq 150); do
    py -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
      "$BASE/health" 2>/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK_DIR/server.log" >&2; exit 1; }
    sleep 0.2
  done
fi

say "bootstrap: an organization, its admin token, an agent"
# Prints shell assignments for the credentials Schemathesis authenticates with.
eval "$(py - "$BASE" <<'PYTHON'
import base64, json, shlex, sys, urllib.parse, urllib.request
base = sys.argv[1]
def call(path, body=None, form=None, basic=None, bearer=None):
    headers = {}
    data = None
    if body is not None:
        data, headers["content-type"] = json.dumps(body).encode(), "application/json"
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["content-type"] = "application/x-www-form-urlencoded"
    if basic:
        headers["authorization"] = "Basic " + base64.b64encode(":".join(basic).encode()).decode()
    if bearer:
        headers["authorization"] = "Bearer " + bearer
    request = urllib.request.Request(base + path, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)
org = call("/v1/orgs", {"name": "schemathesis"})
admin = org["admin_credential"]
token = call("/oauth2/token", form={"grant_type": "client_credentials"},
             basic=(admin["client_id"], admin["client_secret"]))["access_token"]
agent = call("/v1/agents", {"name": "seed", "agent_type": "assistant",
                            "capabilities": ["read:docs"], "visibility": "public"}, bearer=token)
for name, value in [("AGENTIDP_ADMIN_TOKEN", token), ("AGENTIDP_CLIENT_ID", admin["client_id"]),
                    ("AGENTIDP_CLIENT_SECRET", admin["client_secret"]), ("SEED_AGENT", agent["id"])]:
    print(f"export {name}={shlex.quote(value)}")
PYTHON
)"
echo "organization admin $AGENTIDP_CLIENT_ID, agent $SEED_AGENT"

say "schemathesis: $PHASES, up to $EXAMPLES examples per operation, seed $SEED"
mkdir -p "$REPORT_DIR"
status=0
"$PYENV/bin/st" --config-file tests/schemathesis/schemathesis.toml run "$BASE/openapi.json" \
  --url "$BASE" \
  --phases "$PHASES" \
  --max-examples "$EXAMPLES" \
  --seed "$SEED" \
  --workers "$WORKERS" \
  --request-timeout 15 \
  --generation-database none \
  --report junit,har --report-dir "$REPORT_DIR" \
  --no-color "$@" || status=$?
if [[ -n $SERVER_PID ]] && ! kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "the server died during the run" >&2
  status=1
fi
if ((status != 0)); then
  KEEP_WORK=1
  if [[ -f $WORK_DIR/server.log ]]; then
    echo "--- server log (last 30 lines)" >&2
    tail -n 30 "$WORK_DIR/server.log" >&2 || true
  fi
  echo "schemathesis found failures (seed $SEED); replay with SCHEMATHESIS_SEED=$SEED" >&2
fi
exit "$status"
