#!/usr/bin/env bash
# The reliability scenarios of issue 21 at full length, on the real binary, loopback only:
#   crash safety: SIGKILL during writes 50 times on SQLite and on Postgres,
#   database outage: a Postgres cluster of its own stopped for 15 s under load,
#   two servers on one Postgres behind a round-robin proxy (started at once on an empty database).
# The same tests run short in CI (4 kills per store, a 6 s outage).
#
#   bash scripts/reliability.sh            # provisions the test environment, runs all three
#   CODIFIER_RELIABILITY_CRASH_ROUNDS=10 bash scripts/reliability.sh crash   # one scenario
set -euo pipefail
cd "$(dirname "$0")/.."
export CODIFIER_MODEL_FETCH=off
# shellcheck source=scripts/test-env.sh
source scripts/test-env.sh
trap codifier_test_env_stop EXIT
export CODIFIER_RELIABILITY_CRASH_ROUNDS=${CODIFIER_RELIABILITY_CRASH_ROUNDS:-50}
export CODIFIER_RELIABILITY_OUTAGE_SECS=${CODIFIER_RELIABILITY_OUTAGE_SECS:-15}
filter=reliability::${1:-}
uptime
cargo test --test api "$filter" -- --nocapture --test-threads=1
uptime
