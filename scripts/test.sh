#!/usr/bin/env bash
# Runs every test of the workspace against the local Postgres and Redis.
# MongoDB conformance tests run only when MONGODB_URL is set; otherwise they pass without
# touching MongoDB and this script says so plainly.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${MONGODB_URL:-}" ]; then
  echo "MongoDB event-store conformance tests: skipped: MONGODB_URL not set"
else
  echo "MongoDB event-store conformance tests: running against MONGODB_URL"
fi
bash scripts/browser-deps.sh
echo "== web app: type check (tsc) and unit tests (node --test)"
(cd web && node_modules/.bin/tsc -p .)
node --test web/test/
echo "== cargo test --workspace"
cargo test --workspace
echo "== API contract: schemathesis against a running hub (scripts/contract.sh)"
CONTRACT_EXAMPLES=${CONTRACT_EXAMPLES:-50} bash scripts/contract.sh
