#!/usr/bin/env bash
# Installs what the browser tests (tests/browser_*.rs → tests/browser/*.mjs) and the web app's
# checks need: Debian's chromium and node, playwright-core from tests/browser/package-lock.json,
# and TypeScript from web/package-lock.json, and ffmpeg (ffprobe) for the recording tests.
# Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# ffprobe reads the relay's recordings in the recording tests (tests/api/recording.rs).
if ! command -v ffprobe >/dev/null 2>&1; then
  echo "installing: ffmpeg"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null
fi
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  (cd tests/browser && npm ci --no-audit --no-fund)
fi
if [ ! -x web/node_modules/.bin/tsc ]; then
  (cd web && npm ci --no-audit --no-fund)
fi
