"""Generate MAL-shaped raw files: anime.csv, anime_with_synopsis.csv, rating_complete.csv.

Reads nothing (the model and its calibration live in the ``malgen`` package beside
``anime_recs`` in ``lib/``, which no wheel ships); writes the three files, in exactly the real
MAL 2020 formats, into ``--out``.
Deterministic: the same seed and sizes give byte-identical files. Needs no Spark (plain
numpy/pyarrow), but can be submitted like every other job.

Scales: ``tiny`` (400 users, 200 titles, 20k ratings; seconds), ``sample`` (1,000 users, 500
titles, 150k ratings; ``make run``'s), ``full`` (310,059 users, 17,562 titles, 57,633,278
ratings); or a scale with any of ``--users/--titles/--ratings`` overriding its sizes.

Usage::

    python jobs/generate.py --scale sample --out data/raw/sample --seed 42
    python jobs/generate.py --scale tiny --out /tmp/raw --titles 500 --ratings 40000
    spark-submit jobs/generate.py --scale full --out data/raw/full --seed 42
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

# malgen is no part of the wheel: it is found in lib/ beside jobs/ (an editable install has
# lib/ on sys.path already); appended, so an installed anime_recs still comes first
LIB = str(Path(__file__).resolve().parents[1] / "lib")
if LIB not in sys.path:
    sys.path.append(LIB)

from anime_recs.cli import JobError, default_log_level, run_main, setup_logging, step  # noqa: E402
from malgen.generate import SCALES, generate_dataset  # noqa: E402

log = logging.getLogger("anime_recs.jobs.generate")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="sample", help="named sizes")
    parser.add_argument("--out", required=True, help="output folder for the three CSV files")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("--users", type=int, help="override the scale's number of users")
    parser.add_argument("--titles", type=int, help="override the scale's number of titles")
    parser.add_argument("--ratings", type=int, help="override the scale's number of ratings")
    parser.add_argument("--log-level", type=str.upper, default=default_log_level())
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(args.log_level)
    scale = SCALES[args.scale]
    sizes = dataclasses.replace(
        scale,
        **{k: getattr(args, k) for k in ("users", "titles", "ratings") if getattr(args, k)},
    )
    log.info("generate: scale %s %s seed %d -> %s", args.scale, sizes, args.seed, args.out)
    with step("generate") as facts:
        try:
            counts = generate_dataset(
                args.out, sizes.users, sizes.titles, sizes.ratings, seed=args.seed
            )
        except ValueError as exc:
            raise JobError(str(exc)) from exc
        facts.update(counts)
    return 0


if __name__ == "__main__":
    run_main(main)
