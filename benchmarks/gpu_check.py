"""The GPU paths timed in one prepared run, on a machine without Spark or Java.

The three kernels the GPU configurations use are importable without pyspark (the device
machine has torch, sentence-transformers, numpy, scipy and pandas only), and this script times
each on CUDA next to its CPU counterpart in the same run:

1. ``jaccard``: the CUDA count kernel (``similarity.gpu.torch_counter``) against the scipy
   kernel the CPU job uses (``similarity.matrix.scipy_counter``) on a generated promoter
   matrix of the full MAL size (310,059 users, 17,562 titles, ~16M promoter pairs, skewed
   title popularity), every sub-chunk of the upper triangle as the job cuts it; the counts
   must be equal.
2. ``encode``: the embedding UDF's body (``embeddings.encode.make_encode_fn``) on 17,562
   texts at 128 and 384 tokens, on CUDA and (fewer texts) on the CPU threads.
3. ``train``: fine-tuning steps (``training.finetune.train``, the contrastive recipe's loss,
   batch 32, length-grouped forward passes of 8) at 128 and 384 tokens.

The model is a randomly initialised network of MiniLM-L6's shape (6 layers, hidden 384, 12
heads) with a synthetic word-level vocabulary, and the texts are synthetic with the token
lengths of the real descriptions (median 104, p90 264): the machine has no model hub and only
64 MiB travel to it, and FLOPs, not weights, set the time. Speed figures only.

    PYTHONPATH=lib python -m benchmarks.gpu_check --out $OUT            # on the GPU machine
    PYTHONPATH=lib python -m benchmarks.gpu_check --smoke --out /tmp/x  # tiny, on CPU (tests)
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

FULL = {"users": 310_059, "titles": 17_562, "per_user": 52, "texts": 17_562, "pairs": 3_000}
SMOKE = {"users": 2_000, "titles": 300, "per_user": 8, "texts": 48, "pairs": 64}
MAX_CELLS = 4_000_000  # the job's sub-chunk size (jaccard.max_block_cells of conf/base.yaml)
MEDIAN_TOKENS, P90_TOKENS = 104, 264  # real descriptions, MiniLM tokens (docs/performance.md)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="folder for gpu_check.json")
    p.add_argument("--smoke", action="store_true", help="tiny sizes and model, CPU allowed")
    p.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    p.add_argument("--cpu-texts", type=int, default=2_000, help="texts encoded on the CPU")
    p.add_argument("--parts", default="jaccard,encode,train")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def promoter_pairs(users: int, titles: int, per_user: int, seed: int):
    """Each user promotes ``per_user`` titles on average, titles drawn with Zipf-like weights."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, titles + 1) ** 0.9
    counts = rng.poisson(per_user, size=users)
    user_ids = np.repeat(np.arange(users, dtype=np.int32), counts)
    anime_ids = rng.choice(titles, size=user_ids.size, p=weights / weights.sum()).astype(np.int32)
    return user_ids, anime_ids


def time_counter(make, matrix) -> tuple[float, list[np.ndarray]]:
    """Seconds to count every sub-chunk of the upper triangle, one block, as the job cuts it."""
    n = matrix.n_titles
    step = max(1, MAX_CELLS // n)
    start = time.perf_counter()
    counter = make(matrix, 0)
    chunks = [np.triu(counter(s0, min(n, s0 + step))[:, s0:], 1) for s0 in range(0, n, step)]
    return time.perf_counter() - start, chunks


def check_jaccard(sizes: dict, device: str, seed: int) -> dict:
    from anime_recs.similarity.gpu import torch_counter
    from anime_recs.similarity.matrix import build_promoter_matrix, scipy_counter

    matrix = build_promoter_matrix(
        *promoter_pairs(sizes["users"], sizes["titles"], sizes["per_user"], seed)
    )
    scipy_s, expected = time_counter(scipy_counter, matrix)
    torch_counter(matrix, 0, device)  # warm-up: CUDA context and kernels
    torch_s, got = time_counter(lambda m, lo: torch_counter(m, lo, device), matrix)
    equal = len(got) == len(expected) and all(
        np.array_equal(a, b) for a, b in zip(got, expected, strict=True)
    )
    return {
        "users": matrix.n_users,
        "titles": matrix.n_titles,
        "promoter_pairs": int(matrix.promoters.sum()),
        "scipy_s": round(scipy_s, 3),
        f"torch_{device}_s": round(torch_s, 3),
        "speedup": round(scipy_s / torch_s, 2),
        "counts_equal": bool(equal),
    }


def build_model(root: Path, smoke: bool) -> str:
    """A random network of MiniLM-L6's shape (or a tiny one) with a synthetic vocabulary."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, BertTokenizerFast

    words = [f"w{i}" for i in range(30_000)]
    vocab = root / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True)
    shape = (
        {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2}
        if smoke
        else {"hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12}
    )
    torch.manual_seed(0)
    bert = BertModel(
        BertConfig(
            vocab_size=len(tokenizer),
            intermediate_size=4 * shape["hidden_size"],
            max_position_embeddings=512,
            **shape,
        )
    )
    bert.save_pretrained(root / "bert")
    tokenizer.save_pretrained(root / "bert")
    transformer = models.Transformer(str(root / "bert"), max_seq_length=128)
    pooling = models.Pooling(transformer.get_word_embedding_dimension(), "mean")
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(root / "st"))
    return str(root / "st")


def synthetic_texts(n: int, seed: int) -> list[str]:
    """``n`` texts of one-token words, lengths lognormal with the real median and p90."""
    rng = np.random.default_rng(seed)
    sigma = math.log(P90_TOKENS / MEDIAN_TOKENS) / 1.2816
    lengths = np.clip(rng.lognormal(math.log(MEDIAN_TOKENS), sigma, size=n), 5, 1_000)
    return [" ".join(f"w{w}" for w in rng.integers(0, 30_000, int(k))) for k in lengths]


def check_encode(model: str, texts: list[str], device: str, cpu_texts: int) -> dict:
    import pandas as pd
    import torch

    from anime_recs.embeddings.encode import make_encode_fn

    out = {"texts": len(texts)}
    runs = [(device, texts)] + ([("cpu", texts[:cpu_texts])] if device != "cpu" else [])
    for seq in (128, 384):
        for on, batch in runs:
            threads = torch.get_num_threads() if on == "cpu" else None
            encode = make_encode_fn(
                model, seq, 64, num_threads=threads, device=on, backend="torch", quantize="none"
            )
            list(encode(iter([pd.Series(batch[:64])])))  # load and warm up
            start = time.perf_counter()
            vectors = [v for part in encode(iter([pd.Series(batch)])) for v in part]
            seconds = time.perf_counter() - start
            norms = np.linalg.norm(np.stack(vectors), axis=1)
            out[f"{on}_{seq}_texts_per_s"] = round(len(batch) / seconds, 1)
            out[f"{on}_{seq}_unit_norm"] = bool(np.allclose(norms, 1.0, atol=1e-4))
    return out


def check_train(model_dir: str, texts: list[str], pairs: int, device: str, seed: int) -> dict:
    from anime_recs.models import load_sentence_transformer
    from anime_recs.training.examples import PairSet
    from anime_recs.training.finetune import TrainSettings, train

    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, len(texts), pairs), rng.integers(0, len(texts), pairs)
    train_pairs = PairSet([texts[i] for i in a], [texts[j] for j in b], [1.0] * pairs)
    settings = TrainSettings(  # the contrastive recipe's settings of conf/base.yaml
        batch_size=32,
        epochs=1,
        learning_rate=2e-5,
        warmup_ratio=0.1,
        seed=seed,
        forward_chunk=8,
        loss="MultipleNegativesRankingLoss",
        logging_steps=1_000,
        checkpoint_steps=0,
    )
    out = {"pairs": pairs}
    for seq in (128, 384):
        model = load_sentence_transformer(model_dir, seq, device)
        with tempfile.TemporaryDirectory() as checkpoints:
            result = train(model, train_pairs, PairSet(), settings, checkpoints)
        out[f"{device}_{seq}_pairs_per_s"] = round(result.pairs_per_s, 2)
        out[f"{device}_{seq}_steps"] = result.global_step
    return out


def main(argv: list[str] | None = None) -> int:
    import torch

    args = parse_args(argv)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    sizes = SMOKE if args.smoke else FULL
    parts = args.parts.split(",")
    report: dict = {
        "device": torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu",
        "torch": torch.__version__,
        "cpu_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "sizes": sizes,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if "jaccard" in parts:
        report["jaccard"] = check_jaccard(sizes, device, args.seed)
        print(json.dumps(report["jaccard"]), flush=True)  # noqa: T201 - a command-line tool
    with tempfile.TemporaryDirectory() as root:
        model = build_model(Path(root), args.smoke)
        texts = synthetic_texts(sizes["texts"], args.seed)
        if "encode" in parts:
            report["encode"] = check_encode(model, texts, device, args.cpu_texts)
            print(json.dumps(report["encode"]), flush=True)  # noqa: T201
        if "train" in parts:
            report["train"] = check_train(model, texts, sizes["pairs"], device, args.seed)
            print(json.dumps(report["train"]), flush=True)  # noqa: T201
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
