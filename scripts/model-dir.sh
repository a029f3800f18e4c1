#!/usr/bin/env bash
# Prints the directory holding the all-MiniLM-L6-v2 model files, installing them first when
# needed (scripts/install-model.sh, the same step the Docker image runs) into
# $CODIFIER_MODEL_CACHE (default: target/codifier-model in the repository).
#
#   CODIFIER_MODEL_DIR=$(bash scripts/model-dir.sh) cargo run -- serve
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
exec bash "$repo/scripts/install-model.sh" "${CODIFIER_MODEL_CACHE:-$repo/target/codifier-model}"
