#!/usr/bin/env bash
# The Rust hub and the Node baseline (../shared/baselines/node-hub, or NODE_HUB) side by side on
# the same machine, the same Postgres and Redis, with the same clients:
#   1. autosave: the baseline's own closed-loop bench (`scripts/bench-autosave.js`, autocannon:
#      each connection one candidate saving its 4 questions with increasing versions), for each
#      connection count; with the server's, Postgres's, the client's and the whole machine's CPU
#      over the load phase (scripts/cpu-window.py; the client shares the machine);
#   2. relayed signal: the baseline's `scripts/rtt-any.js` (laptop → server → proctor → server →
#      laptop, back to back), CPU per relayed signal;
#   3. candidates' heartbeats: `scripts/bench-heartbeats.js`, candidates' laptops in their session
#      rooms heartbeating 10/s each (acknowledged and written to Redis), CPU per heartbeat;
#   4. idle sockets: this repository's `loadtest idle` (authenticated sockets heartbeating every
#      5 s), RSS per socket and CPU per heartbeat, each run on freshly started servers.
# Both get the same candidates, proctor and exam open now through their own provisioning; each
# measurement runs against hub and baseline alternately RUNS times, each server's CPU sampled
# from /proc, and one table is printed (median and range) and drawn (side-by-side.svg). Reports
# go to target/bench-vs-node/.
#
# Knobs: RUNS (3), CONNECTIONS ("16 128"), DURATION (10 s), SIGNALS (20000 round trips),
# HEARTBEAT_SOCKETS (200), SOCKETS (15000), PARTS ("autosave signal heartbeat idle"),
# HUB_BIN (target/release/proctor-hub; built if missing), LOADTEST_BIN (target/release/loadtest;
# built if missing), NODE_HUB (the baseline's folder), AUTOSAVE_MODE for the baseline (batch).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
runs=${RUNS:-3}
conns=${CONNECTIONS:-"16 128"}
duration=${DURATION:-10}
signals=${SIGNALS:-20000}
sockets=${SOCKETS:-15000}
heartbeat_sockets=${HEARTBEAT_SOCKETS:-200}
parts=${PARTS:-"autosave signal heartbeat idle"}
node_hub=${NODE_HUB:-$root/../shared/baselines/node-hub}
hub_bin=${HUB_BIN:-target/release/proctor-hub}
loadtest_bin=${LOADTEST_BIN:-target/release/loadtest}
out=$root/target/bench-vs-node
mkdir -p "$out"
started=$(date +%s)
step() { echo "== [$(( $(date +%s) - started ))s] $*"; }
has() { [[ " $parts " == *" $1 "* ]]; }

# Each server holds up to SOCKETS sockets.
ulimit -n "$(ulimit -Hn)"
bash scripts/services.sh >/dev/null
if [ ! -x "$hub_bin" ]; then
  step "building the hub (release)"
  cargo build --release --bin proctor-hub
fi
if has idle && [ ! -x "$loadtest_bin" ]; then
  step "building the load generator (release)"
  cargo build --release -p loadtest
fi
[ -d "$node_hub" ] || { echo "no Node baseline at $node_hub (set NODE_HUB)" >&2; exit 1; }
step "the baseline's dependencies (npm ci)"
(cd "$node_hub" && { [ -d node_modules ] || npm ci --no-audit --no-fund --silent; })

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
hub_port=$(free_port)
node_port=$(free_port)
hub_url=http://127.0.0.1:$hub_port
node_url=http://127.0.0.1:$node_port
hub_db=bench_hub_$$
node_db=bench_node_$$
prefix="benchvsnode:$$:"
# candidate1…100 for the relayed signal, then one per autosave connection from candidate101,
# then the heartbeating laptops (a candidate's session is bound to the first device that starts
# it, so no two parts share a candidate).
autosave_max=$(( $(echo "$conns" | tr ' ' '\n' | sort -n | tail -1) ))
heartbeat_first=$((101 + autosave_max))
candidates=$((heartbeat_first - 1 + heartbeat_sockets))
hub_pid=
node_pid=
cleanup() {
  for p in $hub_pid $node_pid; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $hub_db" 2>/dev/null || true
  psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $node_db" 2>/dev/null || true
  redis-cli --scan --pattern "$prefix*" 2>/dev/null | xargs -r redis-cli del >/dev/null 2>&1 || true
}
trap cleanup EXIT

wait_up() { # url
  for _ in $(seq 1 100); do curl -fsS "$1/healthz" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "no server at $1" >&2; return 1
}
stop_server() { # pid
  [ -n "$1" ] || return 0
  kill "$1" 2>/dev/null || true
  while kill -0 "$1" 2>/dev/null; do sleep 0.1; done
}
# Signals are sent back to back, so both servers' per-socket inbound rate limits are lifted.
start_node() {
  stop_server "$node_pid"
  (cd "$node_hub" && DATABASE_URL="postgres://postgres@127.0.0.1:5432/$node_db" PORT=$node_port \
     AUTOSAVE_MODE=${AUTOSAVE_MODE:-batch} LOG_LEVEL=warn ALLOWED_ORIGINS="$node_url" \
     WS_RATE_PER_SEC=1000000 WS_RATE_BURST=1000000 exec node src/server.js) >>"$out/node.log" 2>&1 &
  node_pid=$!
  wait_up "$node_url"
}
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$hub_db"
export HUB_JWT_SECRET=bench-vs-node-secret-0123456789abcdef HUB_REDIS_PREFIX=$prefix
export HUB_ARTIFACT_MASTER_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
start_hub() {
  stop_server "$hub_pid"
  HUB_HTTP_ADDR=127.0.0.1:$hub_port HUB_MEDIA_ADDR=off RUST_LOG=warn \
    HUB_LOGIN_MAX_FAILURES_IP=100000 \
    HUB_WS_INBOUND_PER_SECOND=1000000 HUB_WS_INBOUND_BURST=1000000 \
    HUB_WS_STAFF_INBOUND_PER_SECOND=1000000 HUB_WS_STAFF_INBOUND_BURST=1000000 \
    "$hub_bin" serve >>"$out/hub.log" 2>&1 &
  hub_pid=$!
  wait_up "$hub_url"
}

# --- provisioning ---------------------------------------------------------------------------
step "the baseline: database $node_db, $candidates candidates, port $node_port"
(
  cd "$node_hub"
  export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$node_db"
  npm run -s db:bootstrap >/dev/null
  npm run -s seed -- --candidates "$candidates" >/dev/null
)
cp "$node_hub/seed.json" "$out/node-seed.json"
start_node
node_exam=$(python3 -c "import json; print(json.load(open('$out/node-seed.json'))['examId'])")

step "the hub: database $hub_db, port $hub_port"
"$hub_bin" migrate >/dev/null
HUB_NEW_USER_PASSWORD='Passw0rd!' "$hub_bin" create-user --email admin@example.test --name Admin \
  --role ADMIN >/dev/null
start_hub
hub_exam=$(python3 - "$hub_port" "$candidates" <<'PY'
import json, sys, urllib.request, datetime
port, n = sys.argv[1], int(sys.argv[2])
base = f"http://127.0.0.1:{port}/api/v1"
def call(method, path, token=None, body=None):
    req = urllib.request.Request(base + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"content-type": "application/json", **({"authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"null")
admin = call("POST", "/auth/login", body={"email": "admin@example.test", "password": "Passw0rd!"})["accessToken"]
now = datetime.datetime.now(datetime.timezone.utc)
exam = call("POST", "/exams", admin, {"title": "Bench", "durationMinutes": 120,
    "startsAt": (now - datetime.timedelta(minutes=5)).isoformat(),
    "endsAt": (now + datetime.timedelta(hours=3)).isoformat(), "recordMedia": False})["id"]
for i in range(4):
    call("POST", f"/exams/{exam}/questions", admin, {"type": "SUBJECTIVE", "prompt": f"Q{i}", "points": 5})
call("POST", f"/exams/{exam}/publish", admin, {})
ids = [call("POST", "/users", admin, {"email": f"candidate{i}@example.test", "name": f"Candidate {i}",
        "password": "Passw0rd!", "role": "CANDIDATE"})["id"] for i in range(1, n + 1)]
call("PUT", f"/exams/{exam}/assignments", admin, {"candidateIds": ids})
call("POST", "/users", admin, {"email": "proctor@example.test", "name": "Proctor",
    "password": "Passw0rd!", "role": "PROCTOR"})
print(exam)
PY
)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tck=$(getconf CLK_TCK)
results="$out/results.tsv"
: >"$results"
# One row per run: part, side, parameter, run, then the part's figures.
record() { local IFS=$'\t'; echo "$*" >>"$results"; }
side_vars() { # side → pid exam url
  if [ "$1" = hub ]; then pid=$hub_pid; exam=$hub_exam; url=$hub_url
  else pid=$node_pid; exam=$node_exam; url=$node_url; fi
}

# --- 1. autosave ----------------------------------------------------------------------------
# The bench starts (or resumes) candidate101… and saves with versions above any stored.
if has autosave; then
  for c in $conns; do
    for r in $(seq 1 "$runs"); do
      for side in hub node; do
        side_vars "$side"
        step "autosave, $side: $c connections, run $r of $runs"
        # CPU over the load phase only: the bench's provisioning logs every candidate in, and
        # password hashing is no part of a save.
        (cd "$node_hub" && python3 "$root/scripts/cpu-window.py" --server "$pid" \
           --marker provisioned --out "$out/autosave-$side-$c-$r.cpu.json" -- \
           node scripts/bench-autosave.js --url "$url" --connections "$c" \
           --duration "$duration" --exam "$exam" --first-candidate 101 \
           --json "$out/autosave-$side-$c-$r.json") 2>>"$out/bench.log" | tee -a "$out/bench.log"
        # shellcheck disable=SC2046
        record autosave "$side" "$c" "$r" $(python3 - "$out/autosave-$side-$c-$r.json" \
          "$out/autosave-$side-$c-$r.cpu.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
cpu = json.load(open(sys.argv[2]))
per_save = lambda s: round(s * 1e6 / max(d["requests"], 1), 1)
print(round(d["reqPerSecMean"]), d["latencyMs"]["p50"], d["latencyMs"]["p99"],
      per_save(cpu["serverCpuS"]), per_save(cpu["postgresCpuS"]),
      round(cpu["clientCpuS"] / cpu["seconds"], 2), round(cpu["machineBusyPct"]))
PY
)
      done
    done
  done
fi

# --- 2. relayed signal ----------------------------------------------------------------------
# candidate1 starts a session (its room), proctor@ joins it; each round trip is two relayed
# signals, so CPU per relayed signal = the server's CPU over the run / (2 × round trips).
if has signal; then
  for side in hub node; do
    side_vars "$side"
    python3 - "$url" "$exam" >"$out/signal-$side.tokens" <<'PY'
import json, sys, urllib.request
base, exam = sys.argv[1] + "/api/v1", sys.argv[2]
def post(path, token, body):
    req = urllib.request.Request(base + path, method="POST", data=json.dumps(body).encode(),
        headers={"content-type": "application/json", **({"authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())
lap = post("/auth/login", None, {"email": "candidate1@example.test", "password": "Passw0rd!"})["accessToken"]
pro = post("/auth/login", None, {"email": "proctor@example.test", "password": "Passw0rd!"})["accessToken"]
room = post(f"/exams/{exam}/sessions", lap, {"deviceFingerprint": "bench-signal"})["webrtcRoomId"]
print(lap, pro, room)
PY
  done
  for r in $(seq 1 "$runs"); do
    for side in hub node; do
      side_vars "$side"
      read -r lap pro room <"$out/signal-$side.tokens"
      step "relayed signal, $side: $signals round trips, run $r of $runs"
      before=$(cpu_ticks "$pid")
      (cd "$node_hub" && node scripts/rtt-any.js "$url" "$lap" "$pro" "$room" "$signals" 0) \
        >"$out/signal-$side-$r.json" 2>>"$out/bench.log"
      after=$(cpu_ticks "$pid")
      cat "$out/signal-$side-$r.json"
      # shellcheck disable=SC2046
      record signal "$side" "$signals" "$r" $(python3 - "$out/signal-$side-$r.json" "$((after - before))" "$tck" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
cpu_us = int(sys.argv[2]) / int(sys.argv[3]) * 1e6 / (2 * d["n"])
print(round(d["p50"]), round(d["p99"]), round(cpu_us, 1))
PY
)
    done
  done
fi

# --- 3. candidates' heartbeats --------------------------------------------------------------
# HEARTBEAT_SOCKETS candidates' laptops in their own session rooms, 10 heartbeats/s each: both
# servers acknowledge each and write the session's liveness to Redis. CPU over the steady
# phase only, read by the client from /proc.
if has heartbeat; then
  for r in $(seq 1 "$runs"); do
    for side in hub node; do
      side_vars "$side"
      step "candidates' heartbeats, $side: $heartbeat_sockets sockets × 10/s, run $r of $runs"
      NODE_PATH="$node_hub/node_modules" node scripts/bench-heartbeats.js "$url" "$exam" "$pid" \
        --first "$heartbeat_first" --count "$heartbeat_sockets" --per-second 10 --duration 10 \
        >"$out/heartbeat-$side-$r.json" 2>>"$out/bench.log"
      cat "$out/heartbeat-$side-$r.json"
      # shellcheck disable=SC2046
      record heartbeat "$side" "$heartbeat_sockets" "$r" $(python3 - "$out/heartbeat-$side-$r.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(round(d["cpuUsPerHeartbeat"], 1), round(d["p50Ms"], 2), round(d["p99Ms"], 2))
PY
)
    done
  done
fi

# --- 4. idle sockets ------------------------------------------------------------------------
# Fresh servers for every run, so one run's freed memory does not flatter the next.
if has idle; then
  for r in $(seq 1 "$runs"); do
    for side in hub node; do
      if [ "$side" = hub ]; then start_hub; else start_node; fi
      side_vars "$side"
      step "idle sockets, $side: $sockets sockets, run $r of $runs"
      dir=$out/idle-$side-$r
      rm -rf "$dir"
      login=()
      if [ "$side" = node ]; then login=(--login-email proctor@example.test); fi
      "$loadtest_bin" --url "$url" --admin-email admin@example.test --admin-password 'Passw0rd!' \
        --hub-pid "$pid" --quiet --out "$dir" idle --sockets "$sockets" --ramp-per-sec 1000 \
        --heartbeat-ms 5000 --duration-secs 30 "${login[@]}" | tee -a "$out/bench.log"
      # shellcheck disable=SC2046
      record idle "$side" "$sockets" "$r" $(python3 - "$dir" <<'PY'
import glob, json, sys
d = json.load(open(sorted(glob.glob(sys.argv[1] + "/idle-*.json"))[-1]))
hb = next(l for l in d["latencies"] if l["op"] == "heartbeat")
h = d["hub"]
print(round(h["rssKbPerConnection"], 2), round(h["cpuUsPerOp"], 1), hb["p99Ms"])
PY
)
    done
  done
fi

step "results ($runs runs each, median [min–max])"
python3 - "$results" <<'PY'
import sys, statistics as st
rows = [l.split("\t") for l in open(sys.argv[1]).read().split("\n") if l]
def fmt(v):
    v = sorted(v)
    return f"{st.median(v):g} [{v[0]:g}–{v[-1]:g}]"
names = (("hub", "Rust hub"), ("node", "Node baseline"))
def table(part, param, heads):
    sel = [r for r in rows if r[0] == part]
    if not sel:
        return
    print()
    print("| " + " | ".join([param, "server"] + heads) + " |")
    print("|" + "---|" * (len(heads) + 2))
    for p in sorted({int(r[2]) for r in sel}):
        for side, name in names:
            rs = [r for r in sel if r[1] == side and int(r[2]) == p]
            if rs:
                cols = [fmt([float(r[4 + i]) for r in rs]) for i in range(len(heads))]
                print("| " + " | ".join([str(p), name] + cols) + " |")
table("autosave", "connections", ["req/s", "p50 ms", "p99 ms", "server CPU µs/save",
                                   "Postgres CPU µs/save", "client cores", "machine busy %"])
table("signal", "round trips", ["p50 µs", "p99 µs", "CPU µs/relayed signal"])
table("heartbeat", "candidates", ["CPU µs/heartbeat", "ack p50 ms", "ack p99 ms"])
table("idle", "sockets", ["KB RSS/socket", "CPU µs/heartbeat", "heartbeat p99 ms"])
PY
python3 scripts/bench-vs-node-plot.py "$results" "$out/side-by-side.svg"
echo "plot: $out/side-by-side.svg"
