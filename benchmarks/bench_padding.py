"""Benchmark: the tokens the model stages compute against the tokens their texts hold.

A transformer's cost grows with the padded length of each batch, not with the text's own
length: every position of a padded batch runs through every layer (linear in the tokens) and
attention (quadratic in the padded length). For the descriptions of ``--lake`` (or synthetic
ones), at ``--max-seq-length``:

- ``texts``: the tokens of the texts themselves (truncated to the window): the floor;
- ``full window``: every text padded to the window;
- ``embed, anime_id order``: mini-batches of ``--batch-size`` in the table's order, each
  padded to its longest (``SentenceTransformer.encode`` on unsorted input, no grouping);
- ``embed, the UDF``: the embedding job's layout: ``--partitions`` tasks, each sorted by
  character length (longest first), Arrow batches of ``--arrow-batch``, which ``encode`` cuts
  into mini-batches of ``--batch-size`` padded to their longest;
- ``finetune, one pass``: random batches of ``--train-batch`` texts per side, padded to
  their longest; ``finetune, forward_chunk c``: the same batches in the fine-tune's
  length-sorted groups of c (``anime_recs.training.finetune.length_groups``).

``linear`` is positions computed / text tokens; ``attention`` is the sum of squared padded
lengths / the sum of squared text lengths. Tokenization is timed once (the fast tokenizer, one
process). No model runs: this counts, so it is exact and quick.

    .venv/bin/python -m benchmarks.bench_padding --lake LAKE
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np

from benchmarks.bench_embed import lake_texts, synthetic_descriptions
from benchmarks.bench_output import write_results


def padded_cost(groups: list[list[int]], lengths: np.ndarray) -> tuple[int, int]:
    """(positions, sum of squared padded lengths) of ``groups`` of text indices, each group
    padded to its longest entry of ``lengths`` (the texts' token lengths, or the window for
    texts padded to it)."""
    positions = attention = 0
    for group in groups:
        if group:
            longest = int(lengths[group].max())
            positions += len(group) * longest
            attention += len(group) * longest * longest
    return positions, attention


def chunks(indices: list[int], size: int) -> list[list[int]]:
    return [indices[start : start + size] for start in range(0, len(indices), size)]


def udf_groups(
    chars: list[int], partitions: int, arrow_batch: int, batch_size: int
) -> list[list[int]]:
    """The embedding job's mini-batches: round-robin partitions (hash partitioning spreads
    lengths alike), each sorted by character length, longest first (ties by index), cut into
    Arrow batches and those into mini-batches (``encode`` sorts each Arrow batch by characters
    again: already in that order)."""
    groups = []
    for part in range(partitions):
        members = sorted(range(part, len(chars), partitions), key=lambda i: (-chars[i], i))
        for arrow in chunks(members, arrow_batch):
            groups.extend(chunks(arrow, batch_size))
    return groups


def finetune_groups(n_texts: int, batch: int, chunk: int, steps: int, seed: int, lengths):
    """The forward passes of ``steps`` random training batches of ``batch`` texts per side,
    in ``length_groups`` of ``chunk`` (0: one pass per side)."""
    from anime_recs.training.finetune import length_groups

    rng = random.Random(seed)
    groups = []
    for _ in range(steps):
        for _side in range(2):
            side = [rng.randrange(n_texts) for _ in range(batch)]
            local = length_groups([int(lengths[i]) for i in side], chunk)
            groups.extend([side[j] for j in group] for group in local)
    return groups


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", help="a lake with an ingested anime table")
    parser.add_argument("--conf", default="conf/local.yaml", help="config (spark settings)")
    parser.add_argument("--model", default="packaged:all-MiniLM-L6-v2")
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64, help="embedding mini-batch")
    parser.add_argument("--arrow-batch", type=int, default=256)
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--train-batch", type=int, default=32, help="pairs per training step")
    parser.add_argument("--chunks", default="8,4", help="forward_chunk values")
    parser.add_argument("--steps", type=int, default=200, help="training batches drawn")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="bench/padding")
    args = parser.parse_args(argv)

    from transformers import AutoTokenizer

    from anime_recs.models import resolve_model_path

    if args.lake:
        texts = lake_texts(args.conf, args.lake, "bench-padding")
    else:
        texts = synthetic_descriptions(4000)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(args.model))
    start = time.perf_counter()
    ids = tokenizer(texts, truncation=True, max_length=args.max_seq_length)["input_ids"]
    tokenize_s = time.perf_counter() - start
    lengths = np.array([len(i) for i in ids])
    chars = [len(t) for t in texts]
    n = len(texts)

    window = np.full(n, args.max_seq_length)
    # name -> (forward passes, the length each text is padded from): the window, or the texts'
    layouts = {
        "full window": ([[i] for i in range(n)], window),
        f"embed, anime_id order, batches of {args.batch_size}": (
            chunks(list(range(n)), args.batch_size),
            lengths,
        ),
        f"embed, the UDF ({args.partitions} tasks, Arrow {args.arrow_batch}, "
        f"batches of {args.batch_size})": (
            udf_groups(chars, args.partitions, args.arrow_batch, args.batch_size),
            lengths,
        ),
    }
    for chunk in [0, *(int(c) for c in args.chunks.split(","))]:
        name = (
            f"finetune, forward_chunk {chunk}"
            if chunk
            else f"finetune, one pass per side of {args.train_batch}"
        )
        groups = finetune_groups(n, args.train_batch, chunk, args.steps, args.seed, lengths)
        layouts[name] = (groups, lengths)
    rows = []
    for name, (groups, padded_from) in layouts.items():
        members = [i for group in groups for i in group]
        real = int(lengths[members].sum())
        positions, attention = padded_cost(groups, padded_from)
        rows.append(
            {
                "layout": name,
                "texts": len(members),
                "text_tokens": real,
                "positions": positions,
                "linear": positions / real,
                "attention": attention / int((lengths[members] ** 2).sum()),
            }
        )
    print(
        f"texts: {n} ({'lake' if args.lake else 'synthetic'}); window {args.max_seq_length}; "
        f"tokens per text: median {np.median(lengths):.0f}, mean {lengths.mean():.1f}, "
        f"{(lengths >= args.max_seq_length).mean():.1%} fill the window; "
        f"tokenization {n / tokenize_s:,.0f} texts/s"
    )
    print("| layout | texts | text tokens | positions computed | linear | attention |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['layout']} | {r['texts']:,} | {r['text_tokens']:,} | {r['positions']:,} | "
            f"{r['linear']:.3f}x | {r['attention']:.3f}x |"
        )
    write_results(
        args.out,
        "padding",
        {"args": vars(args), "tokenize_s": tokenize_s, "texts": n, "rows": rows},
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
