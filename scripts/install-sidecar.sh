#!/usr/bin/env bash
# Installs the Athena sidecar (aws-athena-mcp, pinned in scripts/requirements-sidecar.txt) into a
# venv of its own, and prints the venv's python, which is what CODIFIER_ATHENA_COMMAND names.
#
#   bash scripts/install-sidecar.sh /opt/athena-mcp            # the Docker image
#   bash scripts/install-sidecar.sh .venv-athena --with-moto   # tests: also moto[server]
#
# Idempotent: a venv whose requirements are unchanged is left as it is.
# Knob: PYTHON (default python3) creates the venv.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv=${1:?usage: install-sidecar.sh VENV_DIR [--with-moto]}
with_moto=${2:-}
reqs=("$here/requirements-sidecar.txt")
[[ "$with_moto" == "--with-moto" ]] && reqs+=("$here/requirements-sidecar-test.txt")
[[ -z "$with_moto" || "$with_moto" == "--with-moto" ]] || { echo "unknown option $with_moto" >&2; exit 2; }

log() { printf 'install-sidecar: %s\n' "$*" >&2; }

if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
    log "creating venv at $venv"
    rm -rf "$venv"
    "${PYTHON:-python3}" -m venv "$venv"
fi
marker=$venv/.codifier-sidecar-requirements.sha256
want=$( { cat "${reqs[@]}"; "$venv/bin/python" -VV; } | sha256sum | cut -d' ' -f1)
if [[ -f "$marker" && "$(<"$marker")" == "$want" ]]; then
    log "sidecar venv up to date ($venv)"
else
    log "installing $(basename -a "${reqs[@]}" | tr '\n' ' ')into $venv"
    args=()
    for req in "${reqs[@]}"; do args+=(-r "$req"); done
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${args[@]}" >&2
    # Fail here, not at the first query, if the package does not import.
    "$venv/bin/python" -c 'import athena_mcp.server' >&2
    printf '%s\n' "$want" >"$marker"
fi
cd "$venv" && printf '%s/bin/python\n' "$PWD"
