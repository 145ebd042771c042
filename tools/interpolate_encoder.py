"""Weight-space interpolation of the base and a fine-tuned encoder (WiSE-FT, Wortsman et al.
2022): does a point between the two generalise better than either? An experiment tool, not a
pipeline stage.

For each ``alpha`` it loads ``(1 - alpha) * base + alpha * tuned`` into the base architecture,
prints the validation Spearman of the set's held-out ``copromoted_pairs`` (the measure the
finetune stage logs) and saves the encoders with ``0 < alpha < 1`` as folders that an embedder
can name (``embed.embedders.<name>.model: <folder>``):

    python -m tools.interpolate_encoder --root build/quality/mal2016_sample \\
        --alphas 0,0.25,0.5,0.75,1 --out build/interpolated/mal2016_sample

``--root`` is a ``make quality`` set folder (its lake and MLflow store). Result on the real
sets: docs/quality.md.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def interpolate_weights(base: dict[str, Any], tuned: dict[str, Any], alpha: float) -> dict:
    """``(1 - alpha) * base[k] + alpha * tuned[k]`` for every floating-point tensor ``k``;
    other tensors (integer buffers such as position ids) are the tuned model's. ``alpha`` 0 is
    the base encoder, 1 the fine-tuned one; both state dicts must have the same keys."""
    if base.keys() != tuned.keys():
        raise ValueError("the two encoders have different parameters")
    return {
        k: (1 - alpha) * base[k] + alpha * tuned[k] if base[k].is_floating_point() else tuned[k]
        for k in base
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="a make quality set folder")
    parser.add_argument("--tuned", default="models:/anime_encoder/latest")
    parser.add_argument("--alphas", default="0,0.25,0.5,0.75,1")
    parser.add_argument("--out", required=True, help="folder for the interpolated encoders")
    parser.add_argument("--conf", default=str(REPO / "conf" / "local.yaml"))
    args = parser.parse_args(argv)
    root = Path(args.root).resolve()
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlruns.db'}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from anime_recs.cli import session
    from anime_recs.config import load_config
    from anime_recs.lakehouse import table_version
    from anime_recs.models import load_sentence_transformer
    from anime_recs.stages import by_name
    from anime_recs.training.finetune import evaluate_spearman
    from anime_recs.training.inputs import read_val_pairs

    config = load_config(args.conf, [f"paths.lake={root / 'lake'}"])
    lake = config.paths.lake
    spark = session(config, "ERROR", "interpolate-encoder")
    versions = {name: table_version(spark, lake, name) for name in by_name("finetune").inputs}
    ft = config.finetune
    val_pairs = read_val_pairs(spark, lake, versions, ft.max_val_pairs, ft.seed)
    spark.stop()

    model = load_sentence_transformer(ft.base_model, ft.max_seq_length, "cpu")
    tuned = load_sentence_transformer(args.tuned, ft.max_seq_length, "cpu")
    base_state = {k: v.clone() for k, v in model.state_dict().items()}
    tuned_state = tuned.state_dict()
    print(f"{len(val_pairs)} validation pairs; tuned encoder {args.tuned}")  # noqa: T201
    print("| alpha | val Spearman | folder |\n|---:|---:|---|")  # noqa: T201
    for alpha in (float(a) for a in args.alphas.split(",")):
        model.load_state_dict(interpolate_weights(base_state, tuned_state, alpha))
        folder = ""
        if 0 < alpha < 1:
            folder = str(Path(args.out) / f"alpha_{alpha:.2f}")
            model.save(folder)
        print(f"| {alpha:.2f} | {evaluate_spearman(model, val_pairs):.4f} | {folder} |")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
