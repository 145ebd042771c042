"""Fine-tune throughput benchmark: pairs per second of the training loop on this machine.

Runs ``anime_recs.training.finetune.train`` (the code the job runs) with the demo setting
(the packaged all-MiniLM-L6-v2 at max_seq_length 384, batch 16, CosineSimilarityLoss, AdamW with
linear warmup) on generated pairs whose token lengths follow the real MAL synopses (lognormal
with median 69 and mean 92 MiniLM tokens, measured on 2,000 synopses of
anime_with_synopsis.csv), for a bounded number of optimizer steps. The first ``--skip`` steps
are not timed. Full-epoch times are EXTRAPOLATED from the mean measured step time and labelled
as such.

    .venv/bin/python -m benchmarks.bench_finetune                 # demo setting
    .venv/bin/python -m benchmarks.bench_finetune --steps 10 --pairs 320

Prints a table and writes JSON to ``bench/finetune.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

# the case study: ~6 minutes for 5 epochs of ~2.3k pairs on a GPU
CASE_STUDY = {"pairs": 2300, "epochs": 5, "wall_s": 360.0}
TOKENS_MEDIAN, TOKENS_MEAN = 69.0, 92.0  # MiniLM tokens per MAL synopsis (2,000 sampled)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="packaged:all-MiniLM-L6-v2")
    p.add_argument("--max-seq-length", type=int, default=384)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--pairs", type=int, default=480, help="generated training pairs")
    p.add_argument("--val-pairs", type=int, default=64)
    p.add_argument("--steps", type=int, default=24, help="timed optimizer steps")
    p.add_argument("--skip", type=int, default=2, help="untimed first steps (warm-up)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    p.add_argument("--demo-pairs", type=int, default=CASE_STUDY["pairs"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="bench/finetune.json")
    return p.parse_args(argv)


def generated_pairs(n: int, seed: int, vocab: list[str]):
    """``n`` pairs of texts whose lengths (in single-token words) follow the synopses'."""
    import numpy as np

    from anime_recs.training.pairs import PairSet

    rng = np.random.default_rng(seed)
    mu = math.log(TOKENS_MEDIAN)
    sigma = math.sqrt(2 * math.log(TOKENS_MEAN / TOKENS_MEDIAN))

    def text() -> str:
        length = int(np.clip(rng.lognormal(mu, sigma), 8, 700))
        return " ".join(rng.choice(vocab, size=length))

    a = [text() for _ in range(n)]
    b = [text() for _ in range(n)]
    labels = [float(x) for x in rng.integers(0, 2, size=n)]
    return PairSet(a, b, labels)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np
    import torch

    from anime_recs.models import load_sentence_transformer
    from anime_recs.training.finetune import (
        TrainSettings,
        evaluate_spearman,
        pick_device,
        steps_per_epoch,
        train,
    )

    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device()
    load_before = os.getloadavg()
    model = load_sentence_transformer(args.model, args.max_seq_length, device)
    tokenizer = model.tokenizer
    vocab = [w for w in tokenizer.get_vocab() if w.isalpha() and len(w) >= 3]
    vocab.sort()
    train_pairs = generated_pairs(args.pairs, args.seed, vocab)
    val_pairs = generated_pairs(args.val_pairs, args.seed + 1, vocab)
    lengths = [
        min(len(ids), args.max_seq_length)
        for ids in tokenizer(train_pairs.texts_a + train_pairs.texts_b)["input_ids"]
    ]

    start = time.perf_counter()
    evaluate_spearman(model, val_pairs, batch_size=32)
    encode_s = time.perf_counter() - start
    encode_rate = 2 * len(val_pairs) / encode_s

    marks: list[float] = []
    cpu_marks: list[float] = []

    def on_metrics(metrics: dict, step: int) -> None:
        if "train_loss" in metrics:
            marks.append(time.perf_counter())
            cpu_marks.append(time.process_time())

    total_steps = args.skip + args.steps
    if total_steps > steps_per_epoch(len(train_pairs), args.batch_size):
        raise SystemExit(f"--pairs {args.pairs} is too small for {total_steps} steps")
    settings = TrainSettings(
        batch_size=args.batch_size, epochs=1, seed=args.seed, logging_steps=1, checkpoint_steps=0
    )
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as ckpt:
        train(
            model,
            train_pairs,
            val_pairs.subset(range(2)),  # the loop's own evaluations: negligible here
            settings,
            ckpt,
            on_metrics=on_metrics,
            stop_after_steps=total_steps,
        )
    wall_s = time.perf_counter() - wall_start
    step_times = np.diff([wall_start] + marks)[args.skip :]
    mean_step = float(np.mean(step_times))
    # CPU seconds per step (all threads of this process): independent of other processes'
    # load; cpu_s / threads is the wall time per step on an otherwise idle machine (lower bound)
    cpu_step = float(np.mean(np.diff([cpu_start] + cpu_marks)[args.skip :]))
    idle_step = cpu_step / torch.get_num_threads()
    pairs_per_s = args.batch_size / mean_step

    demo_steps = steps_per_epoch(args.demo_pairs, args.batch_size)
    case_steps = CASE_STUDY["epochs"] * steps_per_epoch(CASE_STUDY["pairs"], args.batch_size)
    result = {
        "setting": {
            "model": args.model,
            "max_seq_length": args.max_seq_length,
            "batch_size": args.batch_size,
            "loss": "CosineSimilarityLoss",
            "generated_pairs": args.pairs,
            "timed_steps": args.steps,
            "untimed_first_steps": args.skip,
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
        "tokens_per_text": {
            "mean": round(float(np.mean(lengths)), 1),
            "median": float(np.median(lengths)),
            "p90": round(float(np.percentile(lengths, 90)), 1),
        },
        "measured": {
            "step_s_mean": round(mean_step, 4),
            "step_s_median": round(float(statistics.median(step_times)), 4),
            "step_s_min": round(float(np.min(step_times)), 4),
            "step_s_max": round(float(np.max(step_times)), 4),
            "train_pairs_per_s": round(pairs_per_s, 2),
            "cpu_s_per_step": round(cpu_step, 3),
            "idle_machine_estimate_pairs_per_s": round(args.batch_size / idle_step, 2),
            "encode_texts_per_s": round(encode_rate, 1),
            "wall_s_incl_setup_eval_checkpoint": round(wall_s, 1),
        },
        "extrapolated": {
            f"one_epoch_{args.demo_pairs}_pairs_s": round(demo_steps * mean_step, 1),
            "case_study_5_epochs_2300_pairs_s": round(case_steps * mean_step, 1),
            "case_study_gpu_reference_s": CASE_STUDY["wall_s"],
            f"idle_machine_one_epoch_{args.demo_pairs}_pairs_s": round(demo_steps * idle_step, 1),
            "idle_machine_case_study_5_epochs_2300_pairs_s": round(case_steps * idle_step, 1),
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))

    m, e = result["measured"], result["extrapolated"]
    rows = [
        ("model / device", f"{args.model} / {device} ({torch.get_num_threads()} threads)"),
        ("max_seq_length / batch", f"{args.max_seq_length} / {args.batch_size}"),
        (
            "tokens per text (mean/median/p90)",
            "{mean} / {median} / {p90}".format(**result["tokens_per_text"]),
        ),
        ("load average before/after", f"{load_before[0]:.1f} / {os.getloadavg()[0]:.1f}"),
        (f"measured: step time mean over {args.steps} steps", f"{m['step_s_mean']:.3f} s"),
        (
            "measured: step time median / min / max",
            f"{m['step_s_median']:.3f} / {m['step_s_min']:.3f} / {m['step_s_max']:.3f} s",
        ),
        ("measured: training throughput", f"{m['train_pairs_per_s']:.2f} pairs/s"),
        ("measured: encode throughput (eval)", f"{m['encode_texts_per_s']:.1f} texts/s"),
        ("measured: CPU seconds per step (all threads)", f"{m['cpu_s_per_step']:.3f} s"),
        (
            "ESTIMATE idle machine (cpu_s / threads)",
            f"{m['idle_machine_estimate_pairs_per_s']:.2f} pairs/s",
        ),
        (
            f"EXTRAPOLATED: 1 epoch of {args.demo_pairs} pairs",
            f"{e[f'one_epoch_{args.demo_pairs}_pairs_s'] / 60:.1f} min",
        ),
        (
            "EXTRAPOLATED: 5 epochs of 2300 pairs",
            f"{e['case_study_5_epochs_2300_pairs_s'] / 60:.1f} min",
        ),
        (
            "EXTRAPOLATED idle machine: 1 epoch / 5 epochs",
            f"{e[f'idle_machine_one_epoch_{args.demo_pairs}_pairs_s'] / 60:.1f} / "
            f"{e['idle_machine_case_study_5_epochs_2300_pairs_s'] / 60:.1f} min",
        ),
        ("case study (GPU): 5 epochs of ~2300 pairs", "~6 min"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    print(f"JSON: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
