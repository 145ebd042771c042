"""Benchmark: raw ``SentenceTransformer.encode`` in one process vs the Spark embedding job.

On the same texts and machine, for each size (sample ~2k, full ~16k titles):

- ``raw``: the model loaded in this process (torch's default threads = all cores), one
  ``model.encode(texts, normalize_embeddings=True)`` call, timed after a short warm-up;
- ``spark cold``: ``jobs/embed.py``'s Spark path (iterator pandas UDF, one partition per core,
  torch threads = cores // concurrent tasks) writing ``anime_embeddings`` to Delta, Python
  workers started fresh (interpreter start, torch import and model load are included);
- ``spark warm``: the same again, workers reused (model already loaded): the steady state of a
  long job or of the second embedder of a run;
- ``spark oversubscribed``: warm, but every worker keeps torch's default thread count (cores),
  i.e. workers x cores threads on cores cores; shows why the job sets the thread count.

Throughput is descriptions per second; ``ratio`` = spark / raw (target >= 0.8). Texts come
from an ingested ``anime`` table (``--lake``) or are synthetic descriptions of realistic length
(MAL synopses: ~120 words on average). Prints a markdown table and writes JSON into ``bench/``.

    .venv/bin/python -m benchmarks.bench_embed --sizes 2000
    .venv/bin/python -m benchmarks.bench_embed --sizes 2000,16000 --lake lakehouse
    .venv/bin/python -m benchmarks.bench_embed --sizes 16000 --max-seq-length 384
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import tempfile
import time
from pathlib import Path

from benchmarks.bench_output import write_results

WORDS = (
    "the a young boy girl hero world school city war demon power friends journey mysterious "
    "ancient kingdom battle magic dream secret team life love family lost future past team "
    "must save discover strange village academy spirit sword robot space ship crew captain "
    "detective case murder club music idol band summer festival teacher student rival match "
    "tournament dragon princess knight guild adventure monsters island forest sea ocean sky "
    "time travel memory truth darkness light destiny fight protect together begins finds "
    "learns meets however when after before while during against between across every"
).split()


def synthetic_descriptions(n: int, seed: int = 0) -> list[str]:
    """Deterministic pseudo-synopses, ~120 words on average (lognormal lengths, 15..400)."""
    rnd = random.Random(seed)
    texts = []
    for _ in range(n):
        target = int(min(400, max(15, rnd.lognormvariate(4.65, 0.5))))
        sentences, words = [], 0
        while words < target:
            k = rnd.randint(8, 22)
            sentence = " ".join(rnd.choice(WORDS) for _ in range(k))
            sentences.append(sentence.capitalize() + ".")
            words += k
        texts.append(" ".join(sentences))
    return texts


def texts_from_lake(spark, lake: str) -> list[str]:
    from anime_recs.embeddings.text import titles_to_embed
    from anime_recs.lakehouse import read_table

    rows = titles_to_embed(read_table(spark, lake, "anime")).orderBy("anime_id").collect()
    return [r.text for r in rows]


def lake_texts(conf: str, lake: str, app: str) -> list[str]:
    """:func:`texts_from_lake` in a ``local[2]`` session (``conf``'s Spark settings) started
    for it and stopped after, for the benchmarks that need Spark only to read the texts."""
    from anime_recs.config import load_config
    from anime_recs.spark import get_spark

    sets = ["spark.master=local[2]", "spark.shuffle_partitions=2"]
    spark = get_spark(load_config(conf, sets).spark, "ERROR", app)
    try:
        return texts_from_lake(spark, lake)
    finally:
        spark.stop()


def take(texts: list[str], n: int) -> list[str]:
    """``n`` texts, cycling when the source has fewer (noted in the output)."""
    return [texts[i % len(texts)] for i in range(n)]


def bench_raw(model, texts: list[str], batch_size: int) -> float:
    model.encode(texts[:64], batch_size=batch_size, normalize_embeddings=True)  # warm-up
    start = time.perf_counter()
    model.encode(texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
    return time.perf_counter() - start


def bench_spark(spark, lake: str, texts: list[str], args, threads: int | None) -> float:
    """Embed ``texts`` through the job's Spark path and write them to Delta; wall seconds."""
    from pyspark.sql import functions as F

    from anime_recs.embeddings.sentence import embed_texts, with_identity
    from anime_recs.embeddings.text import text_hash
    from anime_recs.lakehouse import write_table
    from anime_recs.tables import ANIME_EMBEDDINGS, ANIME_EMBEDDINGS_SCHEMA

    df = spark.createDataFrame(
        [(i, t, text_hash(t)) for i, t in enumerate(texts)],
        "anime_id INT, text STRING, text_hash STRING",
    ).cache()
    df.count()
    start = time.perf_counter()
    vectors = embed_texts(
        df,
        args.model,
        args.max_seq_length,
        args.batch_size,
        args.partitions,
        threads,
        backend="torch",
        quantize="none",
    )
    rows = with_identity(vectors, "bench", args.model, None)
    write_table(
        rows,
        lake,
        ANIME_EMBEDDINGS,
        ANIME_EMBEDDINGS_SCHEMA,
        replace_where="embedder = 'bench'",
        partition_by=["embedder"],
    )
    elapsed = time.perf_counter() - start
    got = spark.read.format("delta").load(f"{lake}/{ANIME_EMBEDDINGS}")
    assert got.filter(F.col("embedder") == "bench").count() == len(texts)
    df.unpersist()
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,16000", help="comma-separated title counts")
    parser.add_argument("--lake", help="lake with an ingested `anime` table (else synthetic)")
    parser.add_argument("--conf", default="conf/local.yaml", help="config (spark settings)")
    parser.add_argument("--model", default="packaged:all-MiniLM-L6-v2")
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--arrow-batch-size", type=int, default=256)
    parser.add_argument("--master", default="local[*]")
    parser.add_argument("--partitions", type=int, default=0, help="0: one per core")
    parser.add_argument("--skip-oversubscribed", action="store_true")
    parser.add_argument(
        "--warm-max", type=int, default=1 << 30, help="measure warm/oversubscribed up to N titles"
    )
    parser.add_argument("--out", default="bench")
    args = parser.parse_args(argv)

    import torch

    from anime_recs.config import load_config
    from anime_recs.embeddings.encode import local_cores, worker_threads
    from anime_recs.models import load_sentence_transformer
    from anime_recs.spark import get_spark

    sets = [f"spark.master={args.master}", "spark.shuffle_partitions=4"]
    sets.append(f"spark.arrow_batch_size={args.arrow_batch_size}")
    spark = get_spark(load_config(args.conf, sets).spark, "ERROR", "bench-embed")
    cores = local_cores(spark.sparkContext.master) or spark.sparkContext.defaultParallelism
    args.partitions = args.partitions or spark.sparkContext.defaultParallelism
    threads = worker_threads(cores, min(cores, args.partitions))
    source = f"lake {args.lake}" if args.lake else "synthetic"
    pool = texts_from_lake(spark, args.lake) if args.lake else None

    model = load_sentence_transformer(args.model, args.max_seq_length, device="cpu")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-embed-") as tmp:
        for n in [int(s) for s in args.sizes.split(",") if s.strip()]:
            texts = take(pool, n) if pool else synthetic_descriptions(n)
            raw_s = bench_raw(model, texts, args.batch_size)
            print(f"titles={n} raw {n / raw_s:.1f}/s", flush=True)
            lake = str(Path(tmp) / f"lake{n}")
            # "cold" = first Spark pass at this size: fresh Python workers only for the first
            # size (later sizes find the workers of the previous one, unless they idled out)
            cold_s = bench_spark(spark, lake, texts, args, threads)
            print(f"titles={n} spark cold {n / cold_s:.1f}/s", flush=True)
            warm_s = over_s = None
            if n <= args.warm_max:
                warm_s = bench_spark(spark, lake, texts, args, threads)
                print(f"titles={n} spark warm {n / warm_s:.1f}/s", flush=True)
                if not args.skip_oversubscribed:
                    over_s = bench_spark(spark, lake, texts, args, cores)
            row = {
                "titles": n,
                "raw_per_s": n / raw_s,
                "spark_cold_per_s": n / cold_s,
                "spark_warm_per_s": n / warm_s if warm_s else None,
                "spark_oversubscribed_per_s": n / over_s if over_s else None,
                "ratio_cold": raw_s / cold_s,
                "ratio_warm": raw_s / warm_s if warm_s else None,
                "raw_s": raw_s,
                "spark_cold_s": cold_s,
                "spark_warm_s": warm_s,
                "spark_oversubscribed_s": over_s,
            }
            results.append(row)
            print(json.dumps(row), flush=True)

    meta = {
        "model": args.model,
        "max_seq_length": args.max_seq_length,
        "batch_size": args.batch_size,
        "arrow_batch_size": args.arrow_batch_size,
        "master": spark.sparkContext.master,
        "partitions": args.partitions,
        "torch_threads_per_worker": threads,
        "raw_torch_threads": torch.get_num_threads(),
        "cores": os.cpu_count(),
        "load_avg_at_end": os.getloadavg(),
        "texts": source,
        "machine": platform.platform(),
        "device": "cpu",
    }
    lines = [
        f"Embedding throughput, {args.model} at {args.max_seq_length} tokens, {source}, "
        f"{meta['master']}, {args.partitions} partitions x {threads} torch threads "
        f"(raw: {meta['raw_torch_threads']} threads)",
        "",
        "| titles | raw encode /s | spark cold /s | spark warm /s | oversubscribed /s "
        "| ratio cold | ratio warm |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:

        def cell(value, fmt=".1f"):
            return "-" if value is None else format(value, fmt)

        lines.append(
            f"| {r['titles']} | {r['raw_per_s']:.1f} | {r['spark_cold_per_s']:.1f} "
            f"| {cell(r['spark_warm_per_s'])} | {cell(r['spark_oversubscribed_per_s'])} "
            f"| {r['ratio_cold']:.2f} | {cell(r['ratio_warm'], '.2f')} |"
        )
    print("\n".join(lines))
    write_results(args.out, f"embed-{args.max_seq_length}", {"meta": meta, "results": results})
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
