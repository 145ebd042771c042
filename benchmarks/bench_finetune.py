"""Fine-tune throughput benchmark: pairs per second of the training loop, forward-pass settings
side by side in one run.

Runs ``anime_recs.training.finetune.train`` (the code the job runs: the packaged
all-MiniLM-L6-v2, AdamW with linear warmup, ``--loss``) for ``--steps`` timed optimizer steps
after ``--skip`` untimed ones, once per ``forward_chunk`` value of ``--chunks`` (0 = one forward
pass over the whole padded batch; c = length-sorted groups of c texts, each padded to its own
longest) and per window of ``--seqs``. Every setting starts from the same weights and trains on
the same batches; the settings run interleaved for ``--rounds`` rounds so a noisy machine hits
all of them alike, and the best round is reported. ``ratio`` is pairs/s over ``forward_chunk``
0 at the same window; ``mean loss`` is the training loss over the timed steps (the settings
differ only by float rounding and dropout's random masks, drawn in another order).

    .venv/bin/python -m benchmarks.bench_finetune --lake LAKE
    .venv/bin/python -m benchmarks.bench_finetune --seqs 384 --chunks 0,4,8,16
    .venv/bin/python -m benchmarks.bench_finetune --lake LAKE --lora --seqs 128 --chunks 8 \
        --profile

``--lora`` wraps the model as the ``lora`` recipe does (``finetune.lora`` of ``--conf``, its
learning rate). ``--profile`` runs the first window with the last chunk once more under
``torch.profiler`` and splits a step's wall time into forward (the operators outside autograd
and the optimizer), backward (autograd), the optimizer (step and zero_grad) and the rest
(tokenization, Python, the loss's bookkeeping: the step's wall minus the operators).

``LAKE`` holds an ingested ``anime`` table: pairs are random pairs of its descriptions (what
the finetune stage encodes). Without it, generated texts whose token lengths follow the real MAL
synopses (lognormal, median 69 and mean 92 MiniLM tokens, measured on 2,000 synopses of
anime_with_synopsis.csv). Writes JSON into ``bench/``.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import tempfile
import time

TOKENS_MEDIAN, TOKENS_MEAN = 69.0, 92.0  # MiniLM tokens per MAL synopsis (2,000 sampled)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lake", help="a lake with an ingested anime table (real descriptions)")
    p.add_argument("--conf", default="conf/local.yaml", help="config (spark settings)")
    p.add_argument("--model", default="packaged:all-MiniLM-L6-v2")
    p.add_argument("--seqs", default="384,128", help="max_seq_length values")
    p.add_argument("--chunks", default="0,8", help="forward_chunk values (0 = whole batch)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--loss", default="MultipleNegativesRankingLoss")
    p.add_argument("--steps", type=int, default=12, help="timed optimizer steps")
    p.add_argument("--skip", type=int, default=2, help="untimed first steps (warm-up)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--learning-rate", type=float, default=2e-5)
    p.add_argument("--warmup-ratio", type=float, default=0.1)
    p.add_argument("--lora", action="store_true", help="wrap as the lora recipe does")
    p.add_argument("--profile", action="store_true", help="split a step's time by phase")
    p.add_argument("--out", default="bench")
    return p.parse_args(argv)


def phase_of(name: str) -> str:
    """The phase of a top-level profiler event: backward, optimizer or forward."""
    if name.startswith("autograd::engine"):
        return "backward"
    if name.startswith("Optimizer."):
        return "optimizer"
    return "forward"


TOP_OPERATORS = 6


def profile_steps(
    model, initial, pairs, args, seq: int, chunk: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds per step of each phase (:func:`phase_of`) of one :func:`run_setting` under
    ``torch.profiler``: the operators' time over all its steps (the untimed first ones
    included) per step, and ``rest`` = the timed steps' mean wall - those; and the
    :data:`TOP_OPERATORS` operators of most self time, seconds per step."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        result = run_setting(model, initial, pairs, args, seq, chunk)
    phases = {"forward": 0.0, "backward": 0.0, "optimizer": 0.0}
    for event in prof.events():
        if event.cpu_parent is None:
            phases[phase_of(event.name)] += event.cpu_time_total / 1e6
    steps = args.skip + args.steps
    per_step = {name: seconds / steps for name, seconds in phases.items()}
    per_step["rest"] = max(0.0, result["step_s"] - sum(per_step.values()))
    averages = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    top = {e.key: e.self_cpu_time_total / 1e6 / steps for e in averages[:TOP_OPERATORS]}
    return per_step, top


def generated_texts(n: int, seed: int, vocab: list[str]) -> list[str]:
    """``n`` texts whose lengths (in single-token words) follow the synopses'."""
    import numpy as np

    rng = np.random.default_rng(seed)
    mu = math.log(TOKENS_MEDIAN)
    sigma = math.sqrt(2 * math.log(TOKENS_MEAN / TOKENS_MEDIAN))
    lengths = np.clip(rng.lognormal(mu, sigma, size=n), 8, 700).astype(int)
    return [" ".join(rng.choice(vocab, size=length)) for length in lengths]


def random_pairs(texts: list[str], n: int, seed: int):
    """``n`` pairs of two different texts drawn at random, labels 0/1 at random."""
    import numpy as np

    from anime_recs.training.examples import PairSet

    rng = np.random.default_rng(seed)
    a = rng.integers(0, len(texts), size=n)
    b = (a + rng.integers(1, len(texts), size=n)) % len(texts)
    labels = [float(x) for x in rng.integers(0, 2, size=n)]
    return PairSet([texts[i] for i in a], [texts[i] for i in b], labels)


def run_setting(model, initial, pairs, args, seq: int, chunk: int) -> dict:
    """Train ``--skip + --steps`` steps from ``initial`` weights; step times and losses."""
    import numpy as np

    from anime_recs.training.finetune import TrainSettings, train

    model.load_state_dict(initial)
    model.max_seq_length = seq
    marks: list[float] = []
    losses: list[float] = []

    def on_metrics(metrics: dict, step: int) -> None:
        if "train_loss" in metrics:
            marks.append(time.perf_counter())
            losses.append(metrics["train_loss"])

    settings = TrainSettings(
        batch_size=args.batch_size,
        epochs=1,
        learning_rate=args.learning_rate,
        warmup_ratio=args.warmup_ratio,
        seed=args.seed,
        logging_steps=1,
        checkpoint_steps=0,
        loss=args.loss,
        forward_chunk=chunk,
    )
    no_validation = pairs.subset(range(0))
    with tempfile.TemporaryDirectory() as ckpt:
        start = time.perf_counter()
        train(
            model,
            pairs,
            no_validation,
            settings,
            ckpt,
            on_metrics=on_metrics,
            stop_after_steps=args.skip + args.steps,
        )
    step_times = np.diff([start] + marks)[args.skip :]
    mean_step = float(np.mean(step_times))
    return {"step_s": mean_step, "pairs_per_s": args.batch_size / mean_step, "losses": losses}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import copy

    import numpy as np
    import torch

    from anime_recs.models import load_sentence_transformer
    from anime_recs.training.finetune import pick_device
    from benchmarks.bench_output import write_results

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.lora:
        from anime_recs.config import load_config
        from anime_recs.training.recipes import lora_settings

        ft = load_config(args.conf).finetune
        args.learning_rate = ft.lora.learning_rate
    seqs = [int(s) for s in args.seqs.split(",")]
    chunks = [int(c) for c in args.chunks.split(",")]
    if chunks[0] != 0:
        chunks.insert(0, 0)  # the reference
    device = pick_device()
    model = load_sentence_transformer(args.model, max(seqs), device)
    if args.lora:
        from anime_recs.training.lora import apply_lora

        apply_lora(model, lora_settings(ft))
    initial = copy.deepcopy(model.state_dict())
    if args.lake:
        from benchmarks.bench_embed import lake_texts

        texts = lake_texts(args.conf, args.lake, "bench-finetune")
    else:
        vocab = sorted(w for w in model.tokenizer.get_vocab() if w.isalpha() and len(w) >= 3)
        texts = generated_texts(4000, args.seed, vocab)
    pairs = random_pairs(texts, args.batch_size * (args.skip + args.steps), args.seed)
    tokenized = model.tokenizer(pairs.texts_a + pairs.texts_b, verbose=False)["input_ids"]
    token_counts = [len(ids) for ids in tokenized]

    load_before = os.getloadavg()
    best: dict[tuple[int, int], dict] = {}
    for _ in range(args.rounds):
        for seq in seqs:
            for chunk in chunks:
                result = run_setting(model, initial, pairs, args, seq, chunk)
                key = (seq, chunk)
                if key not in best or result["step_s"] < best[key]["step_s"]:
                    best[key] = result

    profiled, top = (
        profile_steps(model, initial, pairs, args, seqs[0], chunks[-1])
        if args.profile
        else ({}, {})
    )

    rows = []
    for seq in seqs:
        reference = best[(seq, 0)]
        for chunk in chunks:
            result = best[(seq, chunk)]
            rows.append(
                {
                    "max_seq_length": seq,
                    "forward_chunk": chunk,
                    "step_s": round(result["step_s"], 3),
                    "pairs_per_s": round(result["pairs_per_s"], 2),
                    "ratio": round(result["pairs_per_s"] / reference["pairs_per_s"], 2),
                    "mean_loss": round(float(np.mean(result["losses"][args.skip :])), 4),
                }
            )
    lengths = np.asarray(token_counts)
    results = {
        "setting": {
            "model": args.model,
            "texts": "lake descriptions" if args.lake else "generated",
            "batch_size": args.batch_size,
            "loss": args.loss,
            "timed_steps": args.steps,
            "untimed_first_steps": args.skip,
            "rounds": args.rounds,
            "lora": args.lora,
        },
        "machine": {
            "device": device,
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "torch": torch.__version__,
        },
        "tokens_per_text_untruncated": {
            "mean": round(float(lengths.mean()), 1),
            "median": float(np.median(lengths)),
            "p90": float(np.percentile(lengths, 90)),
            "share_over_128": round(float((lengths > 128).mean()), 3),
            "share_over_384": round(float((lengths > 384).mean()), 3),
        },
        "results": rows,
        "profile_s_per_step": {k: round(v, 3) for k, v in profiled.items()},
        "top_operators_s_per_step": {k: round(v, 3) for k, v in top.items()},
    }
    t = results["tokens_per_text_untruncated"]
    print(
        f"{args.model} on {device} ({torch.get_num_threads()} threads), batch {args.batch_size}, "
        f"{args.loss}, {results['setting']['texts']}: tokens/text mean {t['mean']}, median "
        f"{t['median']}, p90 {t['p90']}; load {load_before[0]:.1f} -> {os.getloadavg()[0]:.1f}"
    )
    print("| max_seq_length | forward_chunk | s/step | pairs/s | ratio | mean loss |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['max_seq_length']} | {r['forward_chunk']} | {r['step_s']:.3f} | "
            f"{r['pairs_per_s']:.2f} | {r['ratio']:.2f}x | {r['mean_loss']:.4f} |"
        )
    if profiled:
        total = sum(profiled.values())
        print(
            f"\nprofile, window {seqs[0]}, forward_chunk {chunks[-1]}, {args.steps} steps: "
            f"{total:.3f} s/step"
        )
        print("| phase | s/step | share |")
        print("|---|---:|---:|")
        for name, seconds in profiled.items():
            print(f"| {name} | {seconds:.3f} | {seconds / total:.0%} |")
        print("\n| operator (self time) | s/step | share of the step |")
        print("|---|---:|---:|")
        for name, seconds in top.items():
            print(f"| {name} | {seconds:.3f} | {seconds / total:.0%} |")
    write_results(args.out, "finetune", results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
