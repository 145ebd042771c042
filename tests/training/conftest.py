"""Fixtures for the fine-tune tests: learnable pairs (generated in ``training_data.py``) and the
tiny random sentence-transformer, loaded from the session fixture ``tiny_model_dir``."""

from __future__ import annotations

import os

import pytest

from anime_recs.training.examples import PairSet
from tests.training.training_data import pair_set, train_settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def train_pairs() -> PairSet:
    return pair_set("train")


@pytest.fixture(scope="session")
def val_pairs() -> PairSet:
    return pair_set("val")


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

    from anime_recs.training.finetune import train

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = SentenceTransformer(tiny_model_dir, device="cpu")
        result = train(
            model,
            train_pairs,
            val_pairs,
            train_settings(**TINY_SETTINGS, logging_steps=3, checkpoint_steps=0),
            tmp_path_factory.mktemp("trained_checkpoints"),
        )
    finally:
        torch.set_num_threads(before)
    return model, result
