#!/usr/bin/env bash
# Local embedding throughput, side by side in one run: codifier's all-MiniLM-L6-v2 (gemm, f32)
# against sentence-transformers on torch, on the same texts (the first N memories of the benchmark
# corpus), the same model files, the same batch size and thread count, each run twice in turn;
# then the cosine of every vector against the reference. Installs torch and sentence-transformers
# from PyPI into $CODIFIER_TORCH_VENV (default target/venv-torch; several GB: torch's Linux wheel
# pulls its CUDA libraries) and builds the release binary.
#
#   bash scripts/bench-embed.sh [N]      # default 2000 texts
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
texts=${1:-2000}
venv=${CODIFIER_TORCH_VENV:-$PWD/target/venv-torch}
threads=$(nproc)
log() { printf 'bench-embed: %s\n' "$*" >&2; }

if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import sentence_transformers' 2>/dev/null; then
    log "installing torch and sentence-transformers into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "torch==2.15.0" "sentence-transformers==6.3.0" "numpy==2.4.6" >&2
fi
model_dir=$(bash scripts/model-dir.sh)
cargo build --release --locked --quiet
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

log "$texts texts, $threads threads, uptime: $(uptime)"
for round in 1 2; do
    CODIFIER_MODEL_DIR=$model_dir CODIFIER_MODEL_FETCH=off RAYON_NUM_THREADS=$threads \
        target/release/codifier models bench --texts "$texts" --out "$out" | tee "$out/ours.$round"
    "$venv/bin/python" scripts/bench_embed.py "$out" "$threads" 32 "$model_dir" | tee "$out/torch.$round"
done
"$venv/bin/python" - "$out" <<'PY'
import json, sys
out = sys.argv[1]
best = lambda name: max(json.load(open(f"{out}/{name}.{r}")) ["texts_per_second"] for r in (1, 2))
ours, torch = best("ours"), best("torch")
cos = min(json.load(open(f"{out}/torch.{r}"))["cosine_min"] for r in (1, 2))
print(f"best of two: codifier {ours:.1f} texts/s, torch {torch:.1f} texts/s, "
      f"ratio {ours / torch:.2f}x; lowest cosine against the reference {cos:.6f}")
PY
