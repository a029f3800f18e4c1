"""The reference half of scripts/bench-embed.sh: embeds the texts `codifier models bench --out DIR`
wrote with sentence-transformers on torch (CPU, THREADS threads, the same batch size), times it,
and compares every vector with codifier's (cosine): those in DIR/codifier.json, and those of any
other run in a subdirectory of DIR (DIR/f32/codifier.json: `cosine_min_f32`). Prints one JSON line.

    python bench_embed.py DIR THREADS BATCH MODEL_DIR
"""

import os

import json
import sys
import time

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer


def main() -> None:
    out, threads, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    model_dir = sys.argv[4]
    torch.set_num_threads(threads)
    with open(f"{out}/texts.json") as f:
        texts = json.load(f)
    with open(f"{out}/codifier.json") as f:
        ours = np.asarray(json.load(f), dtype=np.float32)
    # The model directory holds the weights, not sentence-transformers' module list: build the
    # published pipeline (BERT, mean pooling, L2 normalisation) explicitly.
    with open(f"{model_dir}/sentence_bert_config.json") as f:
        max_seq_length = json.load(f)["max_seq_length"]
    bert = Transformer(model_dir, max_seq_length=max_seq_length)
    pooling = Pooling(bert.get_embedding_dimension(), "mean")
    model = SentenceTransformer(modules=[bert, pooling, Normalize()], device="cpu")
    model.encode(texts[:batch], batch_size=batch)
    started = time.perf_counter()
    theirs = model.encode(texts, batch_size=batch)
    seconds = time.perf_counter() - started

    def cosines(ours):
        return np.sum(ours * theirs, axis=1) / (
            np.linalg.norm(ours, axis=1) * np.linalg.norm(theirs, axis=1)
        )

    cosine = cosines(ours)
    others = {}
    for name in sorted(os.listdir(out)):
        path = f"{out}/{name}/codifier.json"
        if os.path.isfile(path):
            with open(path) as f:
                other = np.asarray(json.load(f), dtype=np.float32)
            others[f"cosine_min_{name}"] = float(cosines(other).min())
    print(
        json.dumps(
            {
                "implementation": f"sentence-transformers on torch {torch.__version__}",
                "texts": len(texts),
                "batch": batch,
                "threads": torch.get_num_threads(),
                "seconds": seconds,
                "texts_per_second": len(texts) / seconds,
                "cosine_min": float(cosine.min()),
                "cosine_mean": float(cosine.mean()),
                **others,
            }
        )
    )


if __name__ == "__main__":
    main()
