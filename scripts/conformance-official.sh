#!/usr/bin/env bash
# The official MCP conformance suite (@modelcontextprotocol/conformance 0.1.16, from npm) against
# the real binary on a temporary SQLite store, at every revision it has scenarios for
# (2025-06-18, 2025-11-25; it has none for 2026-07-28). Failures must match
# tests/conformance/official/expected-failures.yml. Not part of CI: it needs Node 22, which
# it installs from npm (`node@22`) into $CONFORMANCE_DIR (default /tmp/codifier-conformance).
#
#   bash scripts/conformance-official.sh   # CODIFIER_BIN defaults to target/debug/codifier
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${CODIFIER_BIN:-$repo/target/debug/codifier}
dir=${CONFORMANCE_DIR:-/tmp/codifier-conformance}
mkdir -p "$dir" && cd "$dir"
[[ -x node_modules/.bin/node && -d node_modules/@modelcontextprotocol/conformance ]] ||
    npm install --no-audit --no-fund node@22 @modelcontextprotocol/conformance@0.1.16 >&2
export PATH=$dir/node_modules/.bin:$PATH
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
export DATABASE_URL=sqlite://$work/c.db API_AUTH_TOKEN=operator-$(openssl rand -hex 16)
export CODIFIER_MODEL_FETCH=off
"$bin" projects create --name conformance >/dev/null
CODIFIER_ADDR_FILE=$work/addr "$bin" serve --listen 127.0.0.1:0 >"$work/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [[ -s $work/addr ]] && break; sleep 0.1; done
TARGET=http://$(cat "$work/addr") KEY=$API_AUTH_TOKEN node "$repo/tests/conformance/official/bearer-proxy.mjs" >"$work/port" &
pids+=($!)
for _ in $(seq 50); do [[ -s $work/port ]] && break; sleep 0.1; done
status=0
for version in 2025-06-18 2025-11-25; do
    echo "== $version"
    node node_modules/@modelcontextprotocol/conformance/dist/index.js server \
        --url "http://localhost:$(cat "$work/port")/mcp" --spec-version "$version" \
        --expected-failures "$repo/tests/conformance/official/expected-failures.yml" \
        | grep -E '^(✓|✗)|Total|Baseline|Unexpected|stale' || true
    [[ ${PIPESTATUS[0]} == 0 ]] || status=1
done
exit $status
