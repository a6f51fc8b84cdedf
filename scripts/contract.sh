#!/usr/bin/env bash
# Property-based contract test of the HTTP API with schemathesis: starts a hub on a fresh
# Postgres database and a Redis prefix of its own, creates an ADMIN, seeds data through the
# API (scripts/contract/seed.py), and lets schemathesis generate requests from the served
# OpenAPI document (/api/v1/openapi.json), checking that no answer is a 5xx and that every
# answer's status, content type, headers and body are the documented ones. Exits non-zero on
# any failure. Reports (JUnit, NDJSON) and the hub's log go to target/contract/.
#
# Like scripts/demo.sh it starts Postgres and Redis if needed (scripts/services.sh); it
# installs schemathesis (pinned in scripts/contract/requirements.txt) into a venv, and
# python3-venv with apt if the machine lacks it. It does not build the hub.
#
# Knobs (environment):
#   HUB_BIN            the hub binary (default target/debug/proctor-hub)
#   CONTRACT_EXAMPLES  test cases per operation and phase (default 100: about 2-3 min on 2 cores)
#   CONTRACT_SEED      a seed: random generation from it (default: none, deterministic
#                      generation, the same requests every run)
#   CONTRACT_WORKERS   concurrent schemathesis workers (default 2)
#   CONTRACT_PHASES    schemathesis phases (default examples,coverage,fuzzing,stateful)
#   CONTRACT_VENV      where the venv lives (default target/contract-venv)
#   CONTRACT_OUT       reports and the hub's log (default target/contract)
# Extra arguments go to `schemathesis run`, e.g. `--include-path-regex '^/api/v1/users'`.
# Its "Reproduce with" curls are printed unsanitized (tokens of this run's throwaway hub
# included), so they can be replayed against a hub started the same way.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${HUB_BIN:-target/debug/proctor-hub}
examples=${CONTRACT_EXAMPLES:-100}
seed=${CONTRACT_SEED:-}
workers=${CONTRACT_WORKERS:-2}
phases=${CONTRACT_PHASES:-examples,coverage,fuzzing,stateful}
venv=${CONTRACT_VENV:-target/contract-venv}
out=${CONTRACT_OUT:-target/contract}
reqs=scripts/contract/requirements.txt

[ -x "$bin" ] || { echo "no hub binary at $bin (build it, or set HUB_BIN)" >&2; exit 1; }
started=$(date +%s)
step() { echo "== [$(( $(date +%s) - started ))s] $*"; }

# --- schemathesis in a venv -------------------------------------------------------------
step "schemathesis venv ($venv)"
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$reqs" | cut -d' ' -f1)
if [ ! -x "$venv/bin/schemathesis" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # Debian's python3 makes venvs only with python3-venv (ensurepip).
  if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    echo "installing: python3 python3-venv"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
  fi
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$reqs"
  echo "$want" >"$stamp"
fi
"$venv/bin/schemathesis" --version

# --- services, database, hub ------------------------------------------------------------
bash scripts/services.sh >/dev/null
mkdir -p "$out"
run_id="contract_$(date +%Y%m%d%H%M%S)_$$"
tmp=$(mktemp -d)
log="$out/hub.log"
hub_pid=
st_pid=

export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$run_id"
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
export HUB_REDIS_PREFIX="$run_id:"
export HUB_JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n')
export HUB_ARTIFACT_MASTER_KEY=$(head -c 32 /dev/urandom | base64 | tr -d '\n')
export HUB_ARTIFACT_DIR="$tmp/artifacts"
export HUB_MEDIA_ADDR=127.0.0.1:0
# Generated logins fail by the hundred: keep the throttle from answering 429 to all of them.
export HUB_LOGIN_MAX_FAILURES_IP=${HUB_LOGIN_MAX_FAILURES_IP:-100000}
export HUB_LOGIN_MAX_FAILURES_ACCOUNT_IP=${HUB_LOGIN_MAX_FAILURES_ACCOUNT_IP:-100000}
export RUST_LOG=${RUST_LOG:-info}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$st_pid" ]; then
    kill -TERM "$st_pid" 2>/dev/null || true
    wait "$st_pid" 2>/dev/null || true
  fi
  if [ -n "$hub_pid" ] && kill -0 "$hub_pid" 2>/dev/null; then
    kill -TERM "$hub_pid" 2>/dev/null || true
    for _ in $(seq 1 75); do kill -0 "$hub_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$hub_pid" 2>/dev/null || true
    wait "$hub_pid" 2>/dev/null || true
  fi
  if [ "$rc" != 0 ] && [ -s "$log" ]; then
    echo "---- the hub's last errors and warnings ($log)"
    grep -E ' (ERROR|WARN) ' "$log" | tail -n 20 || true
    echo "---- last 20 lines of the hub's log"
    tail -n 20 "$log"
    echo "----"
  fi
  psql -h 127.0.0.1 -U postgres -d postgres -qAtc "DROP DATABASE IF EXISTS \"$run_id\" WITH (FORCE)" \
    >/dev/null 2>&1 || echo "could not drop database $run_id" >&2
  redis-cli -u "$REDIS_URL" --scan --pattern "$run_id:*" 2>/dev/null \
    | xargs -r -n 500 redis-cli -u "$REDIS_URL" del >/dev/null 2>&1 || true
  rm -rf "$tmp"
  step "done (exit $rc)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "database $run_id, admin user"
export NO_COLOR=1
"$bin" migrate >"$log" 2>&1
email="contract-admin@example.com"
password=$(head -c 24 /dev/urandom | base64 | tr -d '\n/+=')
HUB_NEW_USER_PASSWORD=$password "$bin" create-user --email "$email" --name "Contract Admin" \
  --role ADMIN >>"$log" 2>&1

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
export HUB_HTTP_ADDR="127.0.0.1:$port"
export HUB_PUBLIC_URL="$base"
step "starting $bin on $base"
"$bin" serve >>"$log" 2>&1 &
hub_pid=$!
ready() {
  python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
    "$base/readyz" 2>/dev/null
}
for i in $(seq 1 120); do
  ready && break
  kill -0 "$hub_pid" 2>/dev/null || { echo "the hub exited during start-up" >&2; exit 1; }
  [ "$i" = 120 ] && { echo "the hub was not ready after 60 s" >&2; exit 1; }
  sleep 0.5
done

step "seeding exams, questions, candidates, sessions (scripts/contract/seed.py)"
config="$tmp/schemathesis.toml"
"$venv/bin/python" scripts/contract/seed.py "$base" "$email" "$password" "$config"

# --- schemathesis -------------------------------------------------------------------------
# The config (written by seed.py) sends the ADMIN's token, or candidate1's to the
# candidate-only operations, and offers the seeded ids to path parameters. The admin's token
# survives every generated request: the admin may not demote, deactivate or erase itself,
# changes to users target only it and users nobody logs in as, logout and refresh take a
# refresh token, which schemathesis never sees, and an access token lives 15 min. Ids that
# schemathesis picks up from responses may still let it deactivate candidate1; later
# candidate-only requests then get 401.
checks=not_a_server_error,status_code_conformance,content_type_conformance
checks+=,response_headers_conformance,response_schema_conformance
if [ -n "$seed" ]; then
  generation=(--seed "$seed" --generation-database none)
else
  generation=(--generation-deterministic)
fi
cmd=(
  env -u NO_COLOR "$venv/bin/schemathesis" --config-file "$config"
  run "$base/api/v1/openapi.json"
  --checks "$checks"
  --phases "$phases"
  --max-examples "$examples"
  --continue-on-failure
  "${generation[@]}"
  --workers "$workers"
  --request-timeout 30
  --wait-for-schema 10
  --suppress-health-check too_slow,filter_too_much
  --report junit,ndjson --report-dir "$out"
  --output-sanitize false
  "$@"
)
step "schemathesis: ${cmd[*]}"
# In the background with `wait`, so that INT/TERM reach the trap at once (bash runs a trap
# only after a foreground command ends); cleanup stops schemathesis too.
"${cmd[@]}" &
st_pid=$!
rc=0
wait "$st_pid" || rc=$?
st_pid=
step "schemathesis exit $rc; reports in $out"
exit "$rc"
