#!/usr/bin/env bash
# Runs every test of the workspace against the local Postgres and Redis.
# MongoDB conformance tests run only when MONGODB_URL is set (they say so when skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace
