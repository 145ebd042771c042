"""Run every benchmark in sequence on one ingested lake (``make bench``); measures, never asserts.

usage: python -m benchmarks.run_all [--lake LAKE] [--sample-users N] [--sizes 2000,16000]

Each benchmark prints its markdown table and writes JSON under ``bench/``. The lake must hold
the ingested ``anime`` and ``ratings`` tables (e.g. ``jobs/ingest.py`` on the full generated
data); the recommend benchmark needs the later stages' tables too.
"""

from __future__ import annotations

import argparse
import subprocess
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", default="lakehouse")
    parser.add_argument("--sample-users", default="5000", help="self-join user sample")
    parser.add_argument("--sizes", default="2000,16000", help="embedding title counts")
    args = parser.parse_args()
    runs = [
        ["bench_jaccard", "--lake", args.lake, "--sample-users", args.sample_users],
        ["bench_jaccard_write", "--lake", args.lake],
        ["bench_jaccard_write", "--lake", args.lake, "--cold-scan"],
        ["bench_embed", "--lake", args.lake, "--sizes", args.sizes],
        ["bench_finetune"],
        ["bench_recommend", "--lake", args.lake],
    ]
    failed = []
    for script, *rest in runs:
        print(f"\n=== {script} {' '.join(rest)}", flush=True)
        if subprocess.call([sys.executable, "-m", f"benchmarks.{script}", *rest]) != 0:
            failed.append(script)
    if failed:
        print(f"failed: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
