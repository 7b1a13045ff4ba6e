#!/usr/bin/env bash
# Benchmarks: installs wrk, builds the release binary, runs bench/bench.py with these arguments
# (--postgres URL adds PostgreSQL figures; --smoke runs a few seconds and writes nothing). The
# report goes to docs/benchmarks.md and docs/benchmarks.svg.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null || ! command -v valgrind >/dev/null; then
    apt-get update -qq && apt-get install -y -qq wrk valgrind >/dev/null
fi
# JIRA_USERPROPS_BIN names a binary already built (CI passes the image's); else build one.
if [ -z "${JIRA_USERPROPS_BIN:-}" ]; then
    cargo build --release --locked
fi
python3 bench/bench.py "$@"
