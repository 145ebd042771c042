"""Time jobs/recommend.py stage by stage on a lake; optionally generate a synthetic one first.

    .venv/bin/python -m benchmarks.bench_recommend --lake /tmp/bench_lake --generate 30000

``--generate USERS`` writes MAL-shaped synthetic ``ratings`` (about 186 ratings per user,
Zipf-like title popularity, the MAL rating histogram, 10% test), ``anime_embeddings`` (random
unit vectors per embedder) and ``anime_pair_jaccard`` (random pairs) into ``--lake``. Without
it, the lake must already hold those tables (e.g. the full-scale pipeline's). The job runs with
``--conf`` plus the given ``--set`` overrides; step wall times (from the job's step log) and
the sizes go to ``bench/bench_recommend.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from tools.job_loader import load_job

REPO = Path(__file__).resolve().parents[1]
RATING_P = np.array([567, 721, 1140, 2363, 5651, 11002, 21756, 25676, 17704, 13004], float)


def tree_cpu_s() -> float:
    """CPU seconds (user + system) of this process and its live descendants (the Spark JVM,
    the Python workers); a proxy for the work done, independent of other load on the box."""
    import psutil

    me = psutil.Process()
    total = 0.0
    for proc in [me, *me.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


class StepTimes(logging.Handler):
    """Wall time and process-tree CPU time of each :func:`anime_recs.cli.step` of the job."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._cpu_start: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if not isinstance(record.msg, str) or not isinstance(record.args, tuple) or not record.args:
            return
        name = str(record.args[0])
        if record.msg.startswith("step %s: start"):
            self._cpu_start[name] = tree_cpu_s()
        elif record.msg.startswith("step %s: done in"):
            self.steps[name] = round(float(record.args[1]), 2)
            self.cpu[name] = round(tree_cpu_s() - self._cpu_start.get(name, 0.0), 1)


def generate(
    spark,
    lake: str,
    users: int,
    titles: int,
    dim: int,
    embedders: int,
    pairs_per_title: int,
    seed: int,
) -> dict:
    from anime_recs import tables
    from anime_recs.lakehouse import write_table

    rng = np.random.default_rng(seed)
    anime_ids = np.sort(rng.choice(np.arange(1, 3 * titles), size=titles, replace=False))
    weights = 1.0 / np.arange(1, titles + 1) ** 0.9
    weights /= weights.sum()
    sizes = np.clip(rng.lognormal(np.log(110), 0.9, size=users), 5, 3000).astype(int)
    parts = []
    for start in range(0, users, 2000):
        chunk = []
        for u in range(start, min(users, start + 2000)):
            size = min(sizes[u], titles)
            chunk.append(
                (np.full(size, u + 1), rng.choice(anime_ids, size, replace=False, p=weights))
            )
        user = np.concatenate([c[0] for c in chunk])
        anime = np.concatenate([c[1] for c in chunk])
        parts.append(pd.DataFrame({"user_id": user, "anime_id": anime}))
    ratings = pd.concat(parts, ignore_index=True)
    ratings["rating"] = rng.choice(np.arange(1, 11), size=len(ratings), p=RATING_P / RATING_P.sum())
    ratings["split"] = np.where(rng.random(len(ratings)) < 0.1, "test", "train")
    write_table(spark.createDataFrame(ratings), lake, tables.RATINGS, tables.RATINGS_SCHEMA)

    for e in range(embedders):
        vectors = rng.normal(size=(titles, dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        emb = pd.DataFrame({"anime_id": anime_ids, "embedding": list(vectors)})
        emb = emb.assign(
            embedder=f"emb_{e}", dim=dim, model="random", model_version=None, text_hash="x"
        )
        schema = tables.ANIME_EMBEDDINGS_SCHEMA
        frame = spark.createDataFrame(emb[schema.fieldNames()], schema=schema)
        mode_kwargs = {"replace_where": f"embedder = 'emb_{e}'"} if e else {}
        write_table(frame, lake, tables.ANIME_EMBEDDINGS, schema, **mode_kwargs)

    n_pairs = titles * pairs_per_title // 2
    a = rng.integers(0, titles, n_pairs)
    b = rng.integers(0, titles, n_pairs)
    keep = a != b
    lo, hi = np.minimum(a, b)[keep], np.maximum(a, b)[keep]
    pairs = pd.DataFrame({"anime_a": anime_ids[lo], "anime_b": anime_ids[hi]}).drop_duplicates()
    n = len(pairs)
    pairs = pairs.assign(
        promoters_a=50,
        promoters_b=50,
        intersection=1,
        union=99,
        jaccard=np.round(rng.beta(1, 20, n), 6),
    )
    write_table(
        spark.createDataFrame(pairs),
        lake,
        tables.ANIME_PAIR_JACCARD,
        tables.ANIME_PAIR_JACCARD_SCHEMA,
    )
    return {
        "users": users,
        "ratings": len(ratings),
        "titles": titles,
        "dim": dim,
        "embedders": embedders,
        "pairs": n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", required=True)
    parser.add_argument("--generate", type=int, metavar="USERS")
    parser.add_argument("--titles", type=int, default=16000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--embedders", type=int, default=3)
    parser.add_argument("--pairs-per-title", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--conf", default=str(REPO / "conf" / "local.yaml"))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--out", default=str(REPO / "bench" / "bench_recommend.json"))
    args = parser.parse_args()

    from anime_recs.cli import session, setup_logging
    from anime_recs.config import load_config

    setup_logging()
    work = Path(tempfile.mkdtemp(prefix="bench_recommend_"))
    overrides = [
        f"paths.lake={args.lake}",
        f"paths.reports={work / 'reports'}",
        f"mlflow.tracking_uri={(work / 'mlruns').as_uri()}",
        f"mlflow.artifact_location={work / 'mlartifacts'}",
        *args.overrides,
    ]
    config = load_config(args.conf, overrides)
    spark = session(config, "INFO", "bench")
    result: dict = {"command": " ".join(["python", *sys.argv]), "cpus": os.cpu_count()}
    if args.generate:
        start = time.perf_counter()
        result["generated"] = generate(
            spark,
            args.lake,
            args.generate,
            args.titles,
            args.dim,
            args.embedders,
            args.pairs_per_title,
            args.seed,
        )
        result["generate_s"] = round(time.perf_counter() - start, 1)

    job = load_job("recommend")
    times = StepTimes()
    logging.getLogger("anime_recs").addHandler(times)
    load_before = os.getloadavg()
    start = time.perf_counter()
    argv = ["--conf", args.conf, "--force"] + [x for o in overrides for x in ("--set", o)]
    job.main(argv)
    result["job_s"] = round(time.perf_counter() - start, 1)
    result["steps_s"] = times.steps
    result["steps_cpu_s"] = times.cpu
    result["loadavg_before"] = [round(x, 1) for x in load_before]
    result["loadavg_after"] = [round(x, 1) for x in os.getloadavg()]
    from anime_recs import tables
    from anime_recs.lakehouse import read_table

    evaluation = read_table(spark, args.lake, tables.EVALUATION)
    result["users_total"] = int(evaluation.agg({"users_total": "max"}).first()[0])
    result["evaluation_rows"] = evaluation.count()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
