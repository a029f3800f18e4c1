#!/usr/bin/env bash
# The reliability scenarios of issue 21 at full length, on the real binary, loopback only:
#   crash safety: SIGKILL during memory writes 50 times, and during plan updates and webhook
#     deliveries 50 times, on SQLite and on Postgres (reliability::crash, reliability::crash_plans),
#   database outage: a Postgres cluster of its own stopped for 15 s under load (reliability::outage),
#   two servers on one Postgres behind a round-robin proxy: started at once on an empty database,
#     sessions, switch, writes, key revocation, a playbook session advanced from both sides and
#     raced, background embedding counted at a fake provider (reliability::two_servers),
#   sidecar faults: the Athena sidecar killed and hung under four clients (athena::faults).
# The same tests run short in CI (4 kills per store for writes, 3 for plans, a 6 s outage).
#
#   bash scripts/reliability.sh            # provisions the test environment, runs them all
#   CODIFIER_RELIABILITY_CRASH_ROUNDS=10 bash scripts/reliability.sh reliability::crash   # one
set -euo pipefail
cd "$(dirname "$0")/.."
export CODIFIER_MODEL_FETCH=off
# shellcheck source=scripts/test-env.sh
source scripts/test-env.sh
trap codifier_test_env_stop EXIT
export CODIFIER_RELIABILITY_CRASH_ROUNDS=${CODIFIER_RELIABILITY_CRASH_ROUNDS:-50}
export CODIFIER_RELIABILITY_OUTAGE_SECS=${CODIFIER_RELIABILITY_OUTAGE_SECS:-15}
if [ $# -gt 0 ]; then filters=("$@"); else filters=(reliability:: athena::faults::); fi
uptime
cargo test --test api -- "${filters[@]}" --nocapture --test-threads=1
uptime
