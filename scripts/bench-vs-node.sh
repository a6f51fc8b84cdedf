#!/usr/bin/env bash
# Autosave side by side: the Rust hub and the Node baseline (../shared/baselines/node-hub, or
# NODE_HUB) on the same machine, the same Postgres and Redis, driven by the baseline's own
# closed-loop bench (`scripts/bench-autosave.js`, autocannon: each connection one candidate
# saving its 4 questions with increasing versions). Both get the same candidates and an exam
# open now through their own provisioning; then, for each connection count, the bench runs
# against hub and baseline alternately RUNS times, each server's CPU sampled from /proc, and
# one table is printed (median and range). Reports go to target/bench-vs-node/.
#
# Knobs: RUNS (3), CONNECTIONS ("16 128"), DURATION (10 s), HUB_BIN (target/release/proctor-hub;
# built if missing), NODE_HUB (the baseline's folder), AUTOSAVE_MODE for the baseline (batch).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
runs=${RUNS:-3}
conns=${CONNECTIONS:-"16 128"}
duration=${DURATION:-10}
node_hub=${NODE_HUB:-$root/../shared/baselines/node-hub}
hub_bin=${HUB_BIN:-target/release/proctor-hub}
out=$root/target/bench-vs-node
mkdir -p "$out"
started=$(date +%s)
step() { echo "== [$(( $(date +%s) - started ))s] $*"; }

bash scripts/services.sh >/dev/null
if [ ! -x "$hub_bin" ]; then
  step "building the hub (release)"
  cargo build --release --bin proctor-hub
fi
[ -d "$node_hub" ] || { echo "no Node baseline at $node_hub (set NODE_HUB)" >&2; exit 1; }
step "the baseline's dependencies (npm ci)"
(cd "$node_hub" && { [ -d node_modules ] || npm ci --no-audit --no-fund --silent; })

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
hub_port=$(free_port)
node_port=$(free_port)
hub_db=bench_hub_$$
node_db=bench_node_$$
prefix="benchvsnode:$$:"
candidates=$(( $(echo "$conns" | tr ' ' '\n' | sort -n | tail -1) ))
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
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

# --- the baseline ---------------------------------------------------------------------------
step "the baseline: database $node_db, $candidates candidates, port $node_port"
(
  cd "$node_hub"
  export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$node_db"
  npm run -s db:bootstrap >/dev/null
  npm run -s seed -- --candidates $((candidates + 100)) >/dev/null
)
cp "$node_hub/seed.json" "$out/node-seed.json"
(cd "$node_hub" && DATABASE_URL="postgres://postgres@127.0.0.1:5432/$node_db" PORT=$node_port \
   AUTOSAVE_MODE=${AUTOSAVE_MODE:-batch} LOG_LEVEL=warn exec node src/server.js) >"$out/node.log" 2>&1 &
node_pid=$!
pids+=("$node_pid")
wait_up "http://127.0.0.1:$node_port"
node_exam=$(python3 -c "import json; print(json.load(open('$out/node-seed.json'))['examId'])")

# --- the hub --------------------------------------------------------------------------------
step "the hub: database $hub_db, port $hub_port"
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$hub_db"
export HUB_JWT_SECRET=bench-vs-node-secret-0123456789abcdef HUB_REDIS_PREFIX=$prefix
export HUB_ARTIFACT_MASTER_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
"$hub_bin" migrate >/dev/null
HUB_NEW_USER_PASSWORD='Passw0rd!' "$hub_bin" create-user --email admin@example.test --name Admin \
  --role ADMIN >/dev/null
HUB_HTTP_ADDR=127.0.0.1:$hub_port HUB_MEDIA_ADDR=off RUST_LOG=warn \
  HUB_LOGIN_MAX_FAILURES_IP=100000 "$hub_bin" serve >"$out/hub.log" 2>&1 &
hub_pid=$!
pids+=("$hub_pid")
wait_up "http://127.0.0.1:$hub_port"
hub_exam=$(python3 - "$hub_port" "$candidates" <<'EOF'
import json, sys, urllib.request, datetime
port, n = sys.argv[1], int(sys.argv[2]) + 100
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
print(exam)
EOF
)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tck=$(getconf CLK_TCK)
results="$out/results.tsv"
: >"$results"
# The bench starts (or resumes) candidate101… and saves with versions above any stored.
first=101
for c in $conns; do
  for r in $(seq 1 "$runs"); do
    for side in hub node; do
      if [ "$side" = hub ]; then port=$hub_port; pid=$hub_pid; exam=$hub_exam; else port=$node_port; pid=$node_pid; exam=$node_exam; fi
      step "$side: $c connections, run $r of $runs"
      before=$(cpu_ticks "$pid")
      (cd "$node_hub" && node scripts/bench-autosave.js --url "http://127.0.0.1:$port" --connections "$c" \
         --duration "$duration" --exam "$exam" --first-candidate "$first" \
         --json "$out/$side-$c-$r.json") 2>>"$out/bench.log" | tee -a "$out/bench.log"
      after=$(cpu_ticks "$pid")
      python3 - "$out/$side-$c-$r.json" "$side" "$c" "$r" "$((after - before))" "$tck" >>"$results" <<'EOF'
import json, sys
f, side, c, r, ticks, tck = sys.argv[1:]
d = json.load(open(f))
reqs = d["requests"]
cpu_us = int(ticks) / int(tck) * 1e6 / max(reqs, 1)
print("\t".join(map(str, [side, c, r, round(d["reqPerSecMean"]), d["latencyMs"]["p50"], d["latencyMs"]["p99"], round(cpu_us, 1)])))
EOF
    done
  done
done

step "results ($runs runs each, median [min–max])"
python3 - "$results" <<'EOF'
import sys, statistics as st
rows = [l.split("\t") for l in open(sys.argv[1]).read().split("\n") if l]
def fmt(v):
    v = sorted(v)
    return f"{st.median(v):g} [{v[0]:g}–{v[-1]:g}]"
conns = sorted({int(r[1]) for r in rows})
print("| connections | server | req/s | p50 ms | p99 ms | CPU µs/save |")
print("|---|---|---|---|---|---|")
for c in conns:
    for side, name in (("hub", "Rust hub"), ("node", "Node baseline")):
        rs = [r for r in rows if r[0] == side and int(r[1]) == c]
        if not rs:
            continue
        col = lambda i: [float(r[i]) for r in rs]
        print(f"| {c} | {name} | {fmt(col(3))} | {fmt(col(4))} | {fmt(col(5))} | {fmt(col(6))} |")
EOF
