#!/usr/bin/env bash
# The soak of issues 21 and 14 at full length, on the release binary, loopback only: seeds a
# project (10,000 memories) on SQLite and on a Postgres of the test environment's own, then runs
# `codifier bench --soak-secs` on each: a fixed-rate mixed load (searches, writes, updates,
# deletes, playbook steps, plans, packs of a local repository, guardrail tools, sessions opened
# and closed) with figures per minute and the verdicts at the end. Exits non-zero when a verdict
# is missed on either store.
#
#   bash scripts/soak.sh              # 30 minutes on SQLite, then 30 on Postgres
#   bash scripts/soak.sh 10 sqlite    # 10 minutes, SQLite only
#   SOAK_MODEL=1 bash scripts/soak.sh 10 sqlite   # with the local model loaded (bound 300 MB)
# knobs: SOAK_CLIENTS (8), SOAK_RATE (calls/s in all, 40), SOAK_MEMORIES (10000),
#   SOAK_LOCK (a file to flock around each soak, so measurements on a shared machine never overlap)
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-30}
stores=${2:-sqlite postgres}
clients=${SOAK_CLIENTS:-8}
rate=${SOAK_RATE:-40}
memories=${SOAK_MEMORIES:-10000}
export CODIFIER_MODEL_FETCH=off
if [[ "${SOAK_MODEL:-0}" == 1 ]]; then
    CODIFIER_MODEL_DIR=$(bash scripts/model-dir.sh)
    export CODIFIER_MODEL_DIR CODIFIER_EMBEDDINGS=local
    # The seeded memories get stand-in vectors (the model would take minutes to embed them);
    # the server still loads the model and embeds every query and every write.
    seed_vectors=--synthetic-vectors
else
    export CODIFIER_EMBEDDINGS=none
    seed_vectors=
fi
if [[ " $stores " == *" postgres "* ]]; then
    # shellcheck source=scripts/test-env.sh
    source scripts/test-env.sh
    trap codifier_test_env_stop EXIT
fi
cargo build --release --locked
bin=$PWD/target/release/codifier
work=$(mktemp -d)
trap 'rm -rf "$work"; declare -F codifier_test_env_stop >/dev/null && codifier_test_env_stop' EXIT
status=0
for store in $stores; do
    case $store in
        sqlite) url="sqlite://$work/soak.db" ;;
        postgres)
            "$CODIFIER_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$TEST_DATABASE_URL" -c 'CREATE DATABASE codifier_soak'
            url="${TEST_DATABASE_URL%/*}/codifier_soak"
            ;;
        *) echo "unknown store $store: sqlite or postgres" >&2; exit 2 ;;
    esac
    echo "== $store: seeding $memories memories =="
    # shellcheck disable=SC2086  # $seed_vectors is one flag or none
    DATABASE_URL=$url "$bin" bench --memories "$memories" --seed-only $seed_vectors
    run=("$bin" bench --skip-seed --clients "$clients" --soak-secs $((minutes * 60))
        --soak-rate "$rate" --soak-every-secs 60 --soak-warmup-secs 60 --soak-cooldown-secs 60)
    echo "== $store: ${run[*]}"
    # uptime before and after, inside the lock when there is one.
    measured=(bash -c 'uptime; "$@"; rc=$?; uptime; exit $rc' soak "${run[@]}")
    [[ -n "${SOAK_LOCK:-}" ]] && measured=(flock "$SOAK_LOCK" "${measured[@]}")
    DATABASE_URL=$url "${measured[@]}" || status=1
done
exit $status
