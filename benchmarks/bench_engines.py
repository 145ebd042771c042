"""Benchmark: inference engines of the embedding UDF side by side (torch fp32, ONNX fp32, ONNX
int8), on the same texts, in one process, at each token window.

For each window (``--seqs``, default 128 and 384) and engine: descriptions/s of
``model.encode`` over ``--sample`` texts (after a warm-up; ``--threads`` intra-op threads, 1 =
what each of the UDF's Python workers gets on a 2-core machine), and the cosine between each
text's vector and torch fp32's (min, 1st percentile, median over the texts measured). With
``--cosine-all`` the cosines of int8 at the first window cover every text of the lake, not
only the timed sample. The engines run interleaved (``--repeats`` rounds) so a noisy machine
hits all of them alike; the best round is reported and ``ratio`` is engine / torch fp32.

    .venv/bin/python -m benchmarks.bench_engines --lake LAKE --sample 1000
    .venv/bin/python -m benchmarks.bench_engines --lake LAKE --sample 1000 --cosine-all

``LAKE`` holds an ingested ``anime`` table (texts = what the embed stage encodes); without
it, synthetic descriptions of realistic length are used. Writes JSON into ``bench/``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.bench_embed import lake_texts, synthetic_descriptions
from benchmarks.bench_output import write_results

ENGINES = (("torch", "none"), ("onnx", "none"), ("onnx", "int8"))


def engine_name(backend: str, quantize: str) -> str:
    return f"{backend} {'fp32' if quantize == 'none' else quantize}"


def encode(model, texts: list[str], batch_size: int) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    vectors = model.encode(texts, batch_size=batch_size, normalize_embeddings=True)
    return vectors, time.perf_counter() - start


def cosine_summary(vectors: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    cosine = (vectors * reference).sum(axis=1)
    return {
        "cos_min": float(cosine.min()),
        "cos_p01": float(np.percentile(cosine, 1)),
        "cos_median": float(np.median(cosine)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", help="a lake with an ingested anime table")
    parser.add_argument("--conf", default="conf/local.yaml", help="config (spark settings)")
    parser.add_argument("--model", default="packaged:all-MiniLM-L6-v2")
    parser.add_argument("--sample", type=int, default=1000, help="texts timed per engine")
    parser.add_argument("--seqs", default="128,384")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cosine-all", action="store_true")
    parser.add_argument("--out", default="bench/engines")
    args = parser.parse_args(argv)

    import torch

    from anime_recs.embeddings.engine import exported_folder, load_onnx_model
    from anime_recs.embeddings.sentence import model_fingerprint
    from anime_recs.models import load_sentence_transformer, resolve_model_path

    torch.set_num_threads(args.threads)
    if args.lake:
        texts = lake_texts(args.conf, args.lake, "bench-engines")
    else:
        texts = synthetic_descriptions(max(args.sample, 2000))
    # a spread of lengths: every k-th text in anime_id order, not the first ones
    step = max(1, len(texts) // args.sample)
    sample = texts[::step][: args.sample]
    path = resolve_model_path(args.model)
    cache = Path(tempfile.mkdtemp(prefix="bench-engines-"))
    start = time.perf_counter()
    folder = exported_folder(path, model_fingerprint(path) or "model", "int8", cache)
    export_s = time.perf_counter() - start

    rows = []
    for n, seq in enumerate(int(s) for s in args.seqs.split(",")):
        models = {
            (b, q): (
                load_sentence_transformer(path, seq, "cpu")
                if b == "torch"
                else load_onnx_model(folder, q, seq, args.threads)
            )
            for b, q in ENGINES
        }
        for model in models.values():
            model.encode(sample[:32], batch_size=args.batch_size)  # warm-up
        best: dict[tuple[str, str], float] = {}
        vectors: dict[tuple[str, str], np.ndarray] = {}
        for _ in range(args.repeats):
            for key, model in models.items():
                vectors[key], seconds = encode(model, sample, args.batch_size)
                best[key] = min(best.get(key, float("inf")), seconds)
        compared = {key: (vectors[key], vectors[("torch", "none")]) for key in models}
        if args.cosine_all and n == 0:  # ONNX fp32 equals torch to float error: not repeated
            reference, _ = encode(models[("torch", "none")], texts, args.batch_size)
            int8, _ = encode(models[("onnx", "int8")], texts, args.batch_size)
            compared[("onnx", "int8")] = (int8, reference)
        for key in models:
            rows.append(
                {
                    "seq": seq,
                    "engine": engine_name(*key),
                    "texts_per_s": len(sample) / best[key],
                    "ratio": best[("torch", "none")] / best[key],
                    "cosine_texts": len(compared[key][0]),
                    **cosine_summary(*compared[key]),
                }
            )
    print(
        f"texts: {len(texts)} ({'lake' if args.lake else 'synthetic'}); timed: {len(sample)}; "
        f"threads {args.threads}; ONNX export + int8 quantization {export_s:.1f} s"
    )
    print("| window | engine | texts/s | ratio | cosine min | p1 | median | over |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['seq']} | {r['engine']} | {r['texts_per_s']:.1f} | {r['ratio']:.2f}x | "
            f"{r['cos_min']:.4f} | {r['cos_p01']:.4f} | {r['cos_median']:.4f} | "
            f"{r['cosine_texts']} |"
        )
    write_results(args.out, "engines", {"args": vars(args), "export_s": export_s, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
