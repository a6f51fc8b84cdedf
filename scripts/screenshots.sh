#!/usr/bin/env bash
# Regenerates docs/screenshots/*.png: runs the browser scenarios (tests/browser_*.rs) with
# SCREENSHOTS set, so every page is shot as a person sees it (1280×800; the phone 390×844).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/services.sh >/dev/null
bash scripts/browser-deps.sh
out="$PWD/docs/screenshots"
mkdir -p "$out"
SCREENSHOTS="$out" cargo test --test browser_exam --test browser_staff --test browser_review -- --test-threads 1
ls -1 "$out"
