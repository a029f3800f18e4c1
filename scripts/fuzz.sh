#!/usr/bin/env bash
# The long fuzz run of issue 21 (hostile input): each target of tests/api/hostile/fuzz for
# SECONDS (default 600) on fresh random input, one after another, printing cases per second, in a
# process limited to 8 GB of address space (a runaway case fails instead of exhausting the
# machine). CI runs the same targets for a fixed number of cases from a fixed seed (scripts/test.sh). Usage: scripts/fuzz.sh [SECONDS] [TARGET-FILTER]
set -euo pipefail
cd "$(dirname "$0")/.."
export CODIFIER_FUZZ_SECONDS="${1:-600}"
filter="${2:-hostile::fuzz::targets::}"
cargo test --test api --no-run
unset CODIFIER_FUZZ_CASES
ulimit -v 8000000
cargo test --test api "$filter" -- --nocapture --test-threads=1
