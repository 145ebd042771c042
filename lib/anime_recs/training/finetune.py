"""Fine-tune a sentence-transformers bi-encoder on pairs of descriptions, resumably.

The loop is plain PyTorch around the sentence-transformers model and loss (the
``SentenceTransformerTrainer`` needs the ``datasets`` and ``accelerate`` packages, which this
project does not install; ``model.fit`` wraps that trainer in sentence-transformers 5.x).
It does what the trainer would do for this task:

- the recipe's loss (:data:`~anime_recs.options.LOSSES`): ``CosineSimilarityLoss``,
  ``loss = mean((cos(u, v) - label)^2)`` over a batch (the case study's, on 0/1 labels), or
  ``MultipleNegativesRankingLoss``, the cross-entropy of ``scale x cos(a_i, b_j)`` over the
  batch with ``b_i`` as the target of ``a_i`` (in-batch negatives; labels unused);
- AdamW (weight decay 0.01, none on biases and LayerNorm), gradient norm clipped at 1.0;
- learning rate warmed up linearly over ``ceil(warmup_ratio * total_steps)`` steps, then decayed
  linearly to 0 (:func:`make_scheduler`, ``transformers.get_linear_schedule_with_warmup``);
- a fixed seed: ``transformers.set_seed`` (python, numpy, torch) plus a per-epoch shuffling
  generator seeded with ``seed + epoch``;
- the Spearman correlation of cosine vs label on the validation pairs
  (:func:`evaluate_spearman`) before training and after every epoch.

On a CPU most of a step is spent on padding when descriptions of very different lengths share
a batch (the batch is padded to its longest text). With ``forward_chunk`` the texts of a batch
are encoded in length-sorted groups, each padded only to its own longest text
(:func:`batch_embeddings`); the batches and the loss over the whole batch (in-batch negatives
included) are the same, and so are the gradients but for dropout, whose random masks are drawn
in another order; only the padding computed is not.

Checkpoints (weights, optimizer, scheduler, RNG state, loss curve) go to
``<checkpoint_dir>/checkpoint-<step>/`` every ``checkpoint_steps`` steps and at the end of every
epoch, written to a temporary folder and renamed, so a killed process leaves either the previous
or the new checkpoint. :func:`train` continues from the newest one: the batches of the
interrupted epoch are replayed from the same permutation, so an interrupted and resumed run ends
with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anime_recs.options import LOSSES
from anime_recs.progress import eta_s
from anime_recs.training.examples import PairSet

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "checkpoint-"
STATE_FILE = "trainer_state.json"
NO_DECAY = ("bias", "LayerNorm.weight", "LayerNorm.bias")

MetricsCallback = Callable[[dict[str, float], int], None]


@dataclass(frozen=True)
class TrainSettings:
    """What the loop needs (explicit values; the job builds this from ``FinetuneConfig``)."""

    batch_size: int
    epochs: int
    learning_rate: float
    warmup_ratio: float
    seed: int
    logging_steps: int
    checkpoint_steps: int  # 0: only at the end of each epoch
    loss: str  # one of options.LOSSES
    forward_chunk: int  # texts per forward pass, by length (batch_embeddings); 0: the batch
    # not settings of the config: the loop's own constants
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    eval_batch_size: int = 32


@dataclass
class TrainResult:
    """What happened; also the JSON state stored with each checkpoint."""

    total_steps: int
    global_step: int = 0
    epoch: int = 0  # epochs completed
    next_batch: int = 0  # next batch of the epoch in progress (resume point)
    loss_curve: list[tuple[int, float]] = field(default_factory=list)
    epoch_spearman: list[tuple[int, float]] = field(default_factory=list)
    spearman_before: float | None = None
    spearman_after: float | None = None
    train_s: float = 0.0  # forward/backward/step time summed over all sessions
    pairs_trained: int = 0  # summed over all sessions
    session_train_s: float = 0.0  # this process only (throughput)
    session_pairs: int = 0
    resumed_from_step: int | None = None
    completed: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def pairs_per_s(self) -> float:
        return self.session_pairs / self.session_train_s if self.session_train_s else 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainResult:
        data = dict(data)
        data["loss_curve"] = [tuple(x) for x in data.get("loss_curve", [])]
        data["epoch_spearman"] = [tuple(x) for x in data.get("epoch_spearman", [])]
        return cls(**data)


# --------------------------------------------------------------------------------------------
# Formulas
# --------------------------------------------------------------------------------------------


def warmup_steps(total_steps: int, warmup_ratio: float) -> int:
    """Warmup length: ``ceil(warmup_ratio * total_steps)`` (as the Hugging Face trainer)."""
    return math.ceil(total_steps * warmup_ratio)


def make_scheduler(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_ratio: float
) -> torch.optim.lr_scheduler.LambdaLR:
    """The learning-rate schedule: ``transformers.get_linear_schedule_with_warmup``.

    The multiplier at optimizer step ``step`` (0-based) is ``step / warmup`` while
    ``step < warmup`` (``warmup = warmup_steps(total_steps, warmup_ratio)``), then
    ``(total_steps - step) / (total_steps - warmup)`` clipped at 0: a linear ramp from 0 to the
    peak rate, then a linear decay to 0.
    """
    from transformers import get_linear_schedule_with_warmup

    return get_linear_schedule_with_warmup(
        optimizer, warmup_steps(total_steps, warmup_ratio), total_steps
    )


def steps_per_epoch(n_pairs: int, batch_size: int) -> int:
    """Batches per epoch: ``ceil(n_pairs / batch_size)`` (the last batch may be smaller)."""
    return math.ceil(n_pairs / batch_size)


def length_groups(lengths: list[int], chunk: int) -> list[list[int]]:
    """The forward passes of a batch: its positions sorted by token length, longest first (ties
    by position), cut into groups of ``chunk``; ``chunk`` 0 or at least the batch size: one
    group in the batch's order. Each group is padded to its first (longest) text only.
    """
    positions = list(range(len(lengths)))
    if chunk <= 0 or chunk >= len(lengths):
        return [positions] if positions else []
    ordered = sorted(positions, key=lambda i: (-lengths[i], i))
    return [ordered[start : start + chunk] for start in range(0, len(ordered), chunk)]


# --------------------------------------------------------------------------------------------
# Pieces
# --------------------------------------------------------------------------------------------


def pick_device() -> str:
    """``cuda`` when a CUDA device is visible to this process, else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def encode_texts(model: Any, texts: list[str], batch_size: int = 32) -> Any:
    """Unit-norm vectors of ``texts`` in eval mode (dropout off), the model's mode restored."""
    was_training = model.training
    model.eval()
    try:
        return model.encode(
            texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
        )
    finally:
        model.train(was_training)


def evaluate_spearman(model: Any, pairs: PairSet, batch_size: int = 32) -> float | None:
    """Spearman rank correlation of cos(u, v) with the labels over the pairs (what
    ``EmbeddingSimilarityEvaluator`` reports), encoding every distinct text once: a validation
    set of thousands of pairs among a few hundred titles costs a few hundred encodings.

    None when it is undefined (fewer than 2 pairs or a single label value).
    """
    if len(pairs) < 2 or len(set(pairs.labels)) < 2:
        return None
    import numpy as np
    from scipy.stats import spearmanr

    texts = sorted(set(pairs.texts_a) | set(pairs.texts_b))
    index = {text: i for i, text in enumerate(texts)}
    vectors = encode_texts(model, texts, batch_size)
    a = vectors[[index[t] for t in pairs.texts_a]]
    b = vectors[[index[t] for t in pairs.texts_b]]
    cosine = np.sum(np.asarray(a, dtype=np.float64) * np.asarray(b, dtype=np.float64), axis=1)
    return float(spearmanr(cosine, pairs.labels).statistic)


def batch_embeddings(model: Any, texts: list[str], chunk: int, device: str):
    """The sentence embeddings of ``texts``, in their order and with gradients: one forward
    pass per :func:`length_groups` group, cut from the batch's tokenization to the group's
    longest text. Attention masks and mean pooling ignore padding, so this equals one pass over
    the whole padded batch (up to float rounding; in training mode dropout draws its masks in
    another order) and skips the padding's compute.
    """
    import torch
    from sentence_transformers.util import batch_to_device

    features = model.tokenize(texts)
    if getattr(model.tokenizer, "padding_side", "right") != "right":
        chunk = 0  # cutting columns assumes the padding is at the end
    lengths = features["attention_mask"].sum(dim=1).tolist()
    groups = length_groups(lengths, chunk)
    if len(groups) == 1:
        return model(batch_to_device(features, device))["sentence_embedding"]
    pieces = []
    for group in groups:
        rows, width = torch.tensor(group), lengths[group[0]]
        part = {
            key: value[rows, :width] if value.dim() == 2 else value[rows]
            for key, value in features.items()
        }
        pieces.append(model(batch_to_device(part, device))["sentence_embedding"])
    inverse = torch.empty(len(texts), dtype=torch.long)
    inverse[torch.tensor([i for group in groups for i in group])] = torch.arange(len(texts))
    return torch.cat(pieces)[inverse.to(pieces[0].device)]


def epoch_order(n_pairs: int, seed: int, epoch: int) -> list[int]:
    """The pair order of an epoch: a permutation seeded by ``seed + epoch`` (replayable)."""
    import torch

    generator = torch.Generator().manual_seed(seed + epoch)
    return torch.randperm(n_pairs, generator=generator).tolist()


def make_optimizer(model: Any, learning_rate: float, weight_decay: float):
    """AdamW with no weight decay on biases and LayerNorm weights (the trainer's default)."""
    import torch

    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if any(nd in name for nd in NO_DECAY) else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=learning_rate)


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------


def latest_checkpoint(checkpoint_dir: str | Path) -> Path | None:
    """The complete checkpoint with the highest step in ``checkpoint_dir``, or None."""
    root = Path(checkpoint_dir)
    if not root.is_dir():
        return None
    found = []
    for path in root.glob(f"{CHECKPOINT_PREFIX}*"):
        suffix = path.name[len(CHECKPOINT_PREFIX) :]
        if suffix.isdigit() and (path / STATE_FILE).is_file():
            found.append((int(suffix), path))
    return max(found)[1] if found else None


def read_checkpoint_state(checkpoint_dir: str | Path) -> TrainResult | None:
    """The state stored with the newest checkpoint (e.g. the MLflow run it belongs to)."""
    path = latest_checkpoint(checkpoint_dir)
    if path is None:
        return None
    return TrainResult.from_json(json.loads((path / STATE_FILE).read_text()))


def save_checkpoint(checkpoint_dir: Path, model: Any, optimizer, scheduler, state: TrainResult):
    """Write ``checkpoint-<step>`` atomically (temp folder + rename); drop older checkpoints."""
    import torch

    final = checkpoint_dir / f"{CHECKPOINT_PREFIX}{state.global_step}"
    tmp = checkpoint_dir / f".tmp-{CHECKPOINT_PREFIX}{state.global_step}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(model.state_dict(), tmp / "model.pt")
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save(rng, tmp / "rng.pt")
    (tmp / STATE_FILE).write_text(json.dumps(state.to_json(), indent=1))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in checkpoint_dir.glob(f"{CHECKPOINT_PREFIX}*"):
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    log.info("checkpoint %s (epoch %s, batch %s)", final, state.epoch, state.next_batch)


def _load_checkpoint(path: Path, model: Any, optimizer, scheduler, device: str) -> TrainResult:
    import torch

    model.load_state_dict(torch.load(path / "model.pt", map_location=device))
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", map_location=device))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt"))
    rng = torch.load(path / "rng.pt")
    torch.set_rng_state(rng["cpu"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    return TrainResult.from_json(json.loads((path / STATE_FILE).read_text()))


def clear_checkpoints(checkpoint_dir: str | Path) -> None:
    """Remove the checkpoints of a finished training (its model lives in MLflow now)."""
    root = Path(checkpoint_dir)
    for path in list(root.glob(f"{CHECKPOINT_PREFIX}*")) + list(root.glob(".tmp-*")):
        shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------


def train(
    model: Any,
    train_pairs: PairSet,
    val_pairs: PairSet,
    settings: TrainSettings,
    checkpoint_dir: str | Path,
    on_metrics: MetricsCallback | None = None,
    meta: dict[str, Any] | None = None,
    stop_after_steps: int | None = None,
) -> TrainResult:
    """Fine-tune ``model`` in place with ``settings.loss``; resume from a checkpoint.

    ``on_metrics(metrics, step)`` receives ``train_loss``/``learning_rate`` every
    ``logging_steps`` steps and ``val_spearman`` after each epoch (step = global step).
    ``meta`` is stored with the checkpoints (e.g. the MLflow run id). ``stop_after_steps``
    stops (with a checkpoint) once the global step reaches it, as if interrupted; the result
    then has ``completed=False``.
    """
    import torch
    from sentence_transformers import losses
    from transformers import set_seed

    if len(train_pairs) == 0:
        raise ValueError("no training pairs")
    checkpoint_dir = Path(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    device = str(model.device)
    set_seed(settings.seed)

    per_epoch = steps_per_epoch(len(train_pairs), settings.batch_size)
    total = per_epoch * settings.epochs
    if settings.loss not in LOSSES:
        raise ValueError(f"unknown loss {settings.loss!r}; expected one of {LOSSES}")
    loss_fn = getattr(losses, settings.loss)(model)
    optimizer = make_optimizer(model, settings.learning_rate, settings.weight_decay)
    scheduler = make_scheduler(optimizer, total, settings.warmup_ratio)

    resume = latest_checkpoint(checkpoint_dir)
    if resume is not None:
        state = _load_checkpoint(resume, model, optimizer, scheduler, device)
        if state.total_steps != total:
            raise ValueError(
                f"checkpoint {resume} was made for {state.total_steps} steps, not {total}: "
                "inputs or settings changed; remove it or use another checkpoint folder"
            )
        state.resumed_from_step = state.global_step
        state.session_train_s, state.session_pairs = 0.0, 0
        log.info("resuming from %s at step %s/%s", resume, state.global_step, total)
    else:
        state = TrainResult(total_steps=total)
        state.spearman_before = evaluate_spearman(model, val_pairs, settings.eval_batch_size)
        log.info("val spearman before training: %s", state.spearman_before)
        if on_metrics and state.spearman_before is not None:
            on_metrics({"val_spearman": state.spearman_before}, 0)
    state.meta.update(meta or {})

    def emit(metrics: dict[str, float], step: int) -> None:
        if on_metrics:
            on_metrics(metrics, step)

    model.train()
    window: list[float] = []
    log_every = max(1, settings.logging_steps)
    for epoch in range(state.epoch, settings.epochs):
        order = epoch_order(len(train_pairs), settings.seed, epoch)
        for batch in range(state.next_batch, per_epoch):
            index = order[batch * settings.batch_size : (batch + 1) * settings.batch_size]
            started = time.perf_counter()
            chunk = settings.forward_chunk
            embeddings = [
                batch_embeddings(model, [texts[i] for i in index], chunk, device)
                for texts in (train_pairs.texts_a, train_pairs.texts_b)
            ]
            labels = torch.tensor([train_pairs.labels[i] for i in index], device=device)
            loss = loss_fn.compute_loss_from_embeddings(embeddings, labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            loss_value = float(loss.detach())
            elapsed = time.perf_counter() - started

            state.global_step += 1
            state.next_batch = batch + 1
            state.train_s += elapsed
            state.session_train_s += elapsed
            state.pairs_trained += len(index)
            state.session_pairs += len(index)
            window.append(loss_value)
            if state.global_step % log_every == 0 or state.next_batch == per_epoch:
                mean_loss = sum(window) / len(window)
                state.loss_curve.append((state.global_step, mean_loss))
                emit(
                    {"train_loss": mean_loss, "learning_rate": scheduler.get_last_lr()[0]},
                    state.global_step,
                )
                session_steps = state.global_step - (state.resumed_from_step or 0)
                left = eta_s(
                    session_steps, total - (state.resumed_from_step or 0), state.session_train_s
                )
                log.info(
                    "epoch %s step %s/%s loss %.5f (%.1f pairs/s, ETA %s)",
                    epoch + 1,
                    state.global_step,
                    total,
                    mean_loss,
                    state.pairs_per_s,
                    "?" if left is None else f"{left:.0f}s",
                )
                window = []
            stop = stop_after_steps is not None and state.global_step >= stop_after_steps
            if stop or (
                settings.checkpoint_steps and state.global_step % settings.checkpoint_steps == 0
            ):
                save_checkpoint(checkpoint_dir, model, optimizer, scheduler, state)
            if stop:
                log.info("stopping after step %s as asked", state.global_step)
                return state

        spearman = evaluate_spearman(model, val_pairs, settings.eval_batch_size)
        state.epoch = epoch + 1
        state.next_batch = 0
        if spearman is not None:
            state.epoch_spearman.append((state.epoch, spearman))
            emit({"val_spearman": spearman}, state.global_step)
        log.info("epoch %s done: val spearman %s", state.epoch, spearman)
        save_checkpoint(checkpoint_dir, model, optimizer, scheduler, state)

    state.spearman_after = state.epoch_spearman[-1][1] if state.epoch_spearman else None
    state.completed = True
    return state
