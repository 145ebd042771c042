"""LoRA on the encoder (the ``lora`` recipe): low-rank updates of chosen projections, merged.

``W' = W + (alpha / rank) B A`` on each module named in ``finetune.lora.target_modules`` (the
attention projections ``query``/``value`` of a BERT-style encoder such as MiniLM), ``A`` and
``B`` trained, every other weight frozen, with ``peft``. Fewer trainable weights than the full
fine-tune (tens of thousands instead of 22M) bound how far little data can move the encoder.
After training the update is merged into the weights (:func:`merge_lora`), so the registered
model is a plain sentence-transformers model: the embed stage, the ONNX export and anyone
loading it need no ``peft``.

The training loop, checkpoints and MLflow logging are the encoder recipes'
(:mod:`anime_recs.training.encoder`, :mod:`anime_recs.training.finetune`,
:mod:`anime_recs.training.stage`): a resumed run wraps the model the same way before loading
its checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LoraSettings:
    rank: int
    alpha: float
    dropout: float
    target_modules: tuple[str, ...]
    seed: int  # draws the adapters' initial A (B starts at 0: the untrained update is 0)


def transformer_module(model: Any) -> Any:
    """The sentence-transformers module that holds the Hugging Face model (``auto_model``)."""
    for module in model.modules():
        if hasattr(module, "auto_model"):
            return module
    raise ValueError("no transformer module (auto_model) in this SentenceTransformer")


def apply_lora(model: Any, settings: LoraSettings) -> dict[str, int]:
    """Wrap the encoder's transformer in LoRA adapters (in place); returns the trainable and
    total weight counts. Only the adapters' weights are trainable afterwards. Their initial
    weights are drawn with ``settings.seed`` whatever random numbers the process drew before,
    and the process's random state is left as it was."""
    import torch
    from peft import LoraConfig, get_peft_model

    module = transformer_module(model)
    config = LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules),
        bias="none",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        module.auto_model = get_peft_model(module.auto_model, config)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable": trainable, "total": total}


def merge_lora(model: Any) -> None:
    """Fold the trained adapters into the weights and drop them (in place):
    ``W <- W + (alpha / rank) B A``; the model is a plain encoder again, every weight
    trainable as before wrapping."""
    module = transformer_module(model)
    merged = module.auto_model.merge_and_unload()
    for param in merged.parameters():
        param.requires_grad_(True)
    module.auto_model = merged
