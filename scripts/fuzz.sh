#!/usr/bin/env bash
# The long fuzz run of issue 21 (hostile input): each target of tests/api/hostile/fuzz for
# SECONDS (default 600) on fresh random input, one after another, printing its seed and cases
# per second, in a process limited to 8 GB of address space (a runaway case fails instead of
# exhausting the machine). A case that kills the process is left in target/fuzz-cases/ with the
# seed and case number that replay it (CODIFIER_FUZZ_SEED, CODIFIER_FUZZ_SKIP). CI runs the same
# targets for a fixed number of cases from a fixed seed (scripts/test.sh).
#   Usage: scripts/fuzz.sh [SECONDS] [TARGET-FILTER]
set -euo pipefail
cd "$(dirname "$0")/.."
export CODIFIER_FUZZ_SECONDS="${1:-600}"
filter="${2:-hostile::fuzz::}"
cargo test --test api --no-run
unset CODIFIER_FUZZ_CASES
ulimit -v "${CODIFIER_FUZZ_MEMORY_KB:-8000000}"
rm -f target/fuzz-cases/*.case target/fuzz-cases/*.failed
status=0
cargo test --test api "$filter" -- --nocapture --test-threads=1 || status=$?
for left in target/fuzz-cases/*.case target/fuzz-cases/*.failed; do
  [ -e "$left" ] || continue
  echo "== $left (the input that failed or killed the run)"
  head -c 20000 "$left"
  echo
done
exit "$status"
