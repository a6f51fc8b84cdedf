#!/usr/bin/env bash
# Runs every test of the workspace against the local Postgres and Redis.
# MongoDB conformance tests run only when MONGODB_URL is set (they say so when skipped).
# The browser test needs chromium and playwright-core: installed first (it fails, never skips,
# when they are missing).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/browser-deps.sh
cargo test --workspace
