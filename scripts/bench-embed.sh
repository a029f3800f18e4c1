#!/usr/bin/env bash
# Local embedding throughput, side by side in one run: codifier's all-MiniLM-L6-v2 (as `serve`
# runs it: int8 products on CPUs with AVX-512 VNNI, bf16 with AVX-512 BF16 only, else f32; and
# with f32 products) against
# sentence-transformers on torch, on the same texts (the first N memories of the benchmark
# corpus), the same model files, the same batch size and thread count, each run twice in turn;
# then the cosine of every vector against torch's. Installs torch and sentence-transformers from
# PyPI into $CODIFIER_TORCH_VENV (default target/venv-torch; several GB: torch's Linux wheel
# pulls its CUDA libraries) and builds the release binary (or runs $CODIFIER_BIN when set).
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
bin=${CODIFIER_BIN:-}
if [[ -z "$bin" ]]; then
    cargo build --release --locked --quiet
    bin=target/release/codifier
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

ours() {
    CODIFIER_MODEL_DIR=$model_dir CODIFIER_MODEL_FETCH=off RAYON_NUM_THREADS=$threads \
        "$bin" models bench --texts "$texts" "$@"
}
log "$texts texts, $threads threads, uptime: $(uptime)"
for round in 1 2; do
    ours --out "$out" | tee "$out/ours.$round"
    ours --out "$out/f32" --precision f32 | tee "$out/f32.$round"
    "$venv/bin/python" scripts/bench_embed.py "$out" "$threads" 32 "$model_dir" | tee "$out/torch.$round"
done
log "uptime: $(uptime)"
"$venv/bin/python" - "$out" <<'PY'
import json, sys
out = sys.argv[1]
runs = lambda name: [json.load(open(f"{out}/{name}.{r}")) for r in (1, 2)]
best = lambda name: max(run["texts_per_second"] for run in runs(name))
ours, f32, torch = best("ours"), best("f32"), best("torch")
label = runs("ours")[0]["implementation"]
cos = min(run["cosine_min"] for run in runs("torch"))
cos32 = min(run.get("cosine_min_f32", 0.0) for run in runs("torch"))
print(f"best of two: {label} {ours:.1f} texts/s, codifier f32 {f32:.1f} texts/s, "
      f"torch {torch:.1f} texts/s; ratio {ours / torch:.2f}x (f32: {f32 / torch:.2f}x); "
      f"lowest cosine against torch {cos:.6f} (f32: {cos32:.6f})")
PY
