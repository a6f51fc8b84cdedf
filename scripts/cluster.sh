#!/usr/bin/env bash
# Three hub nodes on this machine, each reached at its own URL (no proxy in front), sharing
# one Postgres database and one Redis prefix (HUB_CLUSTER=true; README, "Several processes").
# Like scripts/demo.sh it starts Postgres and Redis if needed (scripts/services.sh) and builds
# the hub; it migrates once, starts node1 with --demo (seeded users and exam), then node2 and
# node3, prints their URLs and what to try, and stops all three on Ctrl-C.
#
# Knobs (environment): CLUSTER_PORTS ("8081 8082 8083"), CLUSTER_MEDIA_PORT (3481: node i's
# media UDP port is 3481 + (i-1) x HUB_MEDIA_TASKS), CLUSTER_HOST (127.0.0.1, the address the
# nodes bind), CLUSTER_PUBLIC_HOST (the address clients use; default CLUSTER_HOST),
# CLUSTER_LOG_DIR (target/cluster), HUB_BIN (a built proctor-hub: skips the cargo build).
# Every other HUB_* variable is passed to all nodes, e.g. shorter timers for failure drills:
#   HUB_CLUSTER_NODE_TTL_MS=1500 HUB_CLUSTER_LEASE_MS=3000 bash scripts/cluster.sh
set -euo pipefail
cd "$(dirname "$0")/.."

read -r -a ports <<<"${CLUSTER_PORTS:-8081 8082 8083}"
media_port=${CLUSTER_MEDIA_PORT:-3481}
media_tasks=${HUB_MEDIA_TASKS:-1}
host=${CLUSTER_HOST:-127.0.0.1}
public_host=${CLUSTER_PUBLIC_HOST:-$host}
if [ "$public_host" = 0.0.0.0 ]; then public_host=127.0.0.1; fi
logs=${CLUSTER_LOG_DIR:-target/cluster}

bash scripts/services.sh >/dev/null

if [ -n "${HUB_BIN:-}" ]; then
  bin=$HUB_BIN
else
  cargo build --release --bin proctor-hub
  bin=${CARGO_TARGET_DIR:-target}/release/proctor-hub
fi
[ -x "$bin" ] || { echo "no hub binary at $bin" >&2; exit 1; }

mkdir -p "$logs"

# What every node shares. Tokens signed by one node must verify on all, and an artifact
# written through one must decrypt on all, so the secrets are fixed here rather than left to
# --demo (which would draw its own). They are new at every run unless given.
export HUB_CLUSTER=true
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/proctor_hub}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
export HUB_REDIS_PREFIX=${HUB_REDIS_PREFIX:-hub-cluster:}
export HUB_JWT_SECRET=${HUB_JWT_SECRET:-$(head -c 48 /dev/urandom | base64 | tr -d '\n')}
export HUB_ARTIFACT_MASTER_KEY=${HUB_ARTIFACT_MASTER_KEY:-$(head -c 32 /dev/urandom | base64 | tr -d '\n')}
# A page served by one node opens its socket on another after a redirect: every node must
# accept the others' origins.
origins=()
for port in "${ports[@]}"; do origins+=("http://$public_host:$port"); done
export HUB_ALLOWED_ORIGINS=$(IFS=,; echo "${origins[*]}${HUB_ALLOWED_ORIGINS:+,$HUB_ALLOWED_ORIGINS}")

# The shared environment, for restarting a node by hand after a drill (kept private).
(
  umask 077
  for v in HUB_CLUSTER DATABASE_URL REDIS_URL HUB_REDIS_PREFIX HUB_JWT_SECRET \
    HUB_ARTIFACT_MASTER_KEY HUB_ALLOWED_ORIGINS; do
    printf '%s=%q\n' "$v" "${!v}"
  done >"$logs/env"
)

"$bin" migrate >"$logs/migrate.log" 2>&1 || {
  echo "migrate failed; see $logs/migrate.log" >&2
  exit 1
}

pids=()
names=()
stopping=0

stop_all() {
  [ "$stopping" = 1 ] && return
  stopping=1
  trap - INT TERM
  echo
  echo "stopping the nodes (SIGTERM: sockets closed 4001, leases released)"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  local grace=$(( ${HUB_SHUTDOWN_GRACE_SECS:-10} + 5 ))
  for _ in $(seq 1 $((grace * 5))); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.2
  done
  for i in "${!pids[@]}"; do
    if kill -0 "${pids[$i]}" 2>/dev/null; then
      echo "${names[$i]} did not stop in time: SIGKILL"
      kill -KILL "${pids[$i]}" 2>/dev/null || true
    fi
  done
  wait 2>/dev/null || true
  echo "logs: $logs"
}
trap 'stop_all; exit 130' INT TERM
trap stop_all EXIT

# start_node i port [serve flags...]
start_node() {
  local i=$1 port=$2
  shift 2
  local name=node$i
  local mport=$((media_port + (i - 1) * media_tasks))
  local vars=(HUB_NODE_NAME="$name" HUB_HTTP_ADDR="$host:$port" HUB_MEDIA_ADDR="$host:$mport")
  if [ -n "${CLUSTER_PUBLIC_HOST:-}" ]; then
    vars+=(HUB_PUBLIC_URL="http://$public_host:$port" HUB_PUBLIC_WS_URL="ws://$public_host:$port/ws"
      HUB_MEDIA_PUBLIC_ADDRS="$public_host:$mport")
  fi
  env "${vars[@]}" "$bin" serve "$@" >"$logs/$name.log" 2>&1 &
  pids+=("$!")
  names+=("$name")
}

wait_healthy() {
  local i=$1 port=$2
  for _ in $(seq 1 600); do
    if curl -fsS -o /dev/null "http://$public_host:$port/healthz" 2>/dev/null; then return 0; fi
    if ! kill -0 "${pids[$((i - 1))]}" 2>/dev/null; then
      echo "node$i exited while starting; last lines of $logs/node$i.log:" >&2
      tail -n 20 "$logs/node$i.log" >&2
      return 1
    fi
    sleep 0.2
  done
  echo "node$i not healthy after 120 s; see $logs/node$i.log" >&2
  return 1
}

# node1 seeds the demo data first (with the shared secret, not one of its own), then the rest.
start_node 1 "${ports[0]}" --demo
wait_healthy 1 "${ports[0]}"
for i in $(seq 2 "${#ports[@]}"); do start_node "$i" "${ports[$((i - 1))]}"; done
for i in $(seq 2 "${#ports[@]}"); do wait_healthy "$i" "${ports[$((i - 1))]}"; done

exam=$(sed -n 's/^Exam: .*(id \([0-9a-f-]*\)).*/\1/p' "$logs/node1.log" | tail -n 1)
p=$HUB_REDIS_PREFIX
first=http://$public_host:${ports[0]}
cat <<EOF

=== Proctor Hub: ${#ports[@]} nodes (HUB_CLUSTER=true, Redis prefix $p) ===
EOF
for i in "${!ports[@]}"; do
  port=${ports[$i]}
  printf '  %-6s http://%s:%s   ws://%s:%s/ws   media udp %s:%s   pid %s   log %s\n' \
    "${names[$i]}" "$public_host" "$port" "$public_host" "$port" "$host" \
    "$((media_port + i * media_tasks))" "${pids[$i]}" "$logs/${names[$i]}.log"
done
cat <<EOF

Demo data (seeded by node1): exam ${exam:-"(see $logs/node1.log)"}; accounts alice@demo.proctor /
demo-alice-pass, proctor@demo.proctor / demo-proctor-pass, admin@demo.proctor / demo-admin-pass.
A token from any node is good on every node; the HTTP API answers the same everywhere.

Try:
  curl -s $first/healthz; curl -s http://$public_host:${ports[1]}/readyz
  redis-cli --scan --pattern '${p}node:*'             # the registry (one hash per node)
  redis-cli hgetall <one of those keys>                # wsUrl, mediaAddr, state, load, region
  redis-cli get '${p}exam-home:${exam:-<examId>}'      # the exam's home, once a socket placed it
  curl -s http://$public_host:${ports[2]}/metrics | grep -E 'hub_(ws_redirected|cluster)_'
  Open /app on the exam's home node to take or watch the exam (a page served by another
  node is redirected there; see README, "Several processes", for what browsers allow).
Drills (pids above):
  kill -9 <home pid>     its exam moves to another node once its registry key expires
  kill -STOP / -CONT     the woken node finds its lease taken and closes its sockets with 4010
  kill -TERM <pid>       draining: sockets closed 4001, leases released, registry entry removed
  Restart a node by hand: (set -a; . $logs/env; HUB_NODE_NAME=node2 \\
    HUB_HTTP_ADDR=$host:${ports[1]} HUB_MEDIA_ADDR=$host:$((media_port + media_tasks)) $bin serve)

Ctrl-C stops every node this script started.
EOF

# Report nodes that exit (a drill, or a crash) and keep the others running.
declare -A reported=()
while true; do
  for i in "${!pids[@]}"; do
    if [ -z "${reported[$i]:-}" ] && ! kill -0 "${pids[$i]}" 2>/dev/null; then
      reported[$i]=1
      code=0
      wait "${pids[$i]}" 2>/dev/null || code=$?
      echo "${names[$i]} (pid ${pids[$i]}) exited with status $code; the others keep serving"
    fi
  done
  if [ "${#reported[@]}" -eq "${#pids[@]}" ]; then
    echo "every node exited"
    exit 1
  fi
  sleep 1
done
