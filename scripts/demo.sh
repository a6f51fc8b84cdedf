#!/usr/bin/env bash
# One command from a fresh machine to a running demo hub: installs and starts Postgres and
# Redis if needed (scripts/services.sh), then builds and runs `proctor-hub serve --demo`,
# which seeds users and an exam and prints where to start (open /app, log in as alice).
# Extra arguments go to the hub's environment, e.g. `HUB_HTTP_ADDR=0.0.0.0:8080 bash scripts/demo.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/services.sh >/dev/null
exec cargo run --release --bin proctor-hub -- serve --demo
