#!/usr/bin/env bash
# The long fuzz run of issue 21 (hostile input): each target of tests/api/hostile/fuzz for
# SECONDS (default 600), one after another, printing cases per second. CI runs the same targets
# for 30 s each (scripts/test.sh). Usage: scripts/fuzz.sh [SECONDS] [TARGET-FILTER]
set -euo pipefail
cd "$(dirname "$0")/.."
export CODIFIER_FUZZ_SECONDS="${1:-600}"
filter="${2:-hostile::fuzz::targets::}"
cargo test --test api "$filter" -- --nocapture --test-threads=1
