"""Typed configuration: YAML files in ``conf/`` loaded into frozen dataclasses.

A job loads ``conf/local.yaml`` (or ``--conf PATH``) and applies ``--set dotted.key=value``
overrides. Values are YAML-parsed, so ``--set recommend.k=5`` gives an int. Unknown keys and
wrong types fail at load time with a one-line :class:`ConfigError` naming the dotted key, and
value checks (ranges, allowed names) run in each section's ``validate``.

``${ENV_VAR}`` inside a string value is expanded from the environment at load time, so a
cluster config can point at ``${MLFLOW_TRACKING_URI}`` without writing it into the file.
Secrets (the OpenAI key) are never config values: they are read from the environment by the
code that needs them, and :func:`masked` hides anything that looks like a credential in logs.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_CONF = "conf/local.yaml"


class ConfigError(ValueError):
    """A configuration problem; the message names the offending dotted key."""


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SparkConfig:
    master: str | None = "local[*]"  # None: leave the master to spark-submit
    app_name: str = "anime-recs"
    shuffle_partitions: int = 8
    driver_memory: str | None = "6g"  # None: set by spark-submit
    log_level: str = "WARN"
    arrow_batch_size: int = 10000
    extra: dict[str, str] = field(default_factory=dict)

    def validate(self, prefix: str) -> None:
        _positive(prefix, "shuffle_partitions", self.shuffle_partitions)
        _positive(prefix, "arrow_batch_size", self.arrow_batch_size)


@dataclass(frozen=True)
class PathsConfig:
    raw: str = (
        "data/raw/sample"  # folder with anime.csv, anime_with_synopsis.csv, rating_complete.csv
    )
    lake: str = "lakehouse"  # each Delta table lives at <lake>/<table_name>
    reports: str = "reports"
    checkpoints: str = "checkpoints"

    def validate(self, prefix: str) -> None:
        for name in ("raw", "lake", "reports", "checkpoints"):
            if not getattr(self, name):
                raise ConfigError(f"{prefix}.{name}: must be a non-empty path")


@dataclass(frozen=True)
class MlflowConfig:
    tracking_uri: str = "sqlite:///mlruns.db"
    registry_uri: str | None = None  # None: same as tracking_uri
    artifact_location: str | None = "mlartifacts"  # for new experiments; None: server default
    experiment: str = "anime-recs"


@dataclass(frozen=True)
class IngestConfig:
    test_fraction: float = 0.1
    split_seed: int = 42
    max_rejected_fraction: float = 0.01
    cold_title_fraction: float = 0.1  # titles whose every rating is held out (cold start)

    def validate(self, prefix: str) -> None:
        _fraction(prefix, "test_fraction", self.test_fraction, open_interval=True)
        if not 0 <= self.cold_title_fraction < 1:
            raise ConfigError(
                f"{prefix}.cold_title_fraction: must be in [0, 1), got {self.cold_title_fraction}"
            )
        _fraction(prefix, "max_rejected_fraction", self.max_rejected_fraction)


@dataclass(frozen=True)
class JaccardConfig:
    min_intersection: int = 1
    positive_threshold: float = 0.3
    negative_threshold: float = 0.1
    negative_ratio: float = 1.0
    # support guards, chosen by a split-half study (tests/benchmarks/bench_jaccard.py
    # --support-study): without them ~94% of positives of one user half fall into the negative
    # band in the other half; with (20, 5) on all users (~(10, 3) per half) ~10% do
    min_promoters: int = 20
    min_positive_intersection: int = 5
    val_fraction: float = 0.2
    seed: int = 7
    title_blocks: int = 0  # 0: derived from the number of titles and cores
    max_block_cells: int = 4_000_000  # dense count cells per sub-chunk of a task (~200 MB peak)
    device: str = "auto"  # count kernel: auto (CUDA when visible), cpu (scipy), cuda

    def validate(self, prefix: str) -> None:
        _positive(prefix, "min_intersection", self.min_intersection)
        _positive(prefix, "max_block_cells", self.max_block_cells)
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"{prefix}.device: must be auto, cpu or cuda, got {self.device!r}")
        _fraction(prefix, "positive_threshold", self.positive_threshold)
        _fraction(prefix, "negative_threshold", self.negative_threshold)
        if self.negative_threshold > self.positive_threshold:
            raise ConfigError(
                f"{prefix}.negative_threshold: must not exceed {prefix}.positive_threshold"
            )
        if self.negative_ratio < 0:
            raise ConfigError(f"{prefix}.negative_ratio: must be >= 0, got {self.negative_ratio}")
        _non_negative(prefix, "min_promoters", self.min_promoters)
        _non_negative(prefix, "min_positive_intersection", self.min_positive_intersection)
        _fraction(prefix, "val_fraction", self.val_fraction, open_interval=True)
        _non_negative(prefix, "title_blocks", self.title_blocks)


EMBEDDER_KINDS = ("sentence-transformers", "openai")


@dataclass(frozen=True)
class EmbedderConfig:
    kind: str = "sentence-transformers"
    # sentence-transformers: "packaged:all-MiniLM-L6-v2", a Hugging Face id, a local folder
    # or an MLflow URI such as models:/anime_encoder/latest. openai: the API model name.
    model: str = "packaged:all-MiniLM-L6-v2"
    max_seq_length: int = 128
    batch_size: int = 64
    # openai only
    base_url: str | None = None
    max_concurrency: int = 4
    max_retries: int = 6
    timeout_s: float = 60.0
    max_batch_inputs: int = 256
    max_batch_tokens: int = 250_000
    dimensions: int | None = None
    backoff_base_s: float = 0.5  # retry n waits uniform(0, min(backoff_max_s, base * 2**n))
    backoff_max_s: float = 20.0
    # skip this embedder when its model cannot be resolved (e.g. fine-tuned model not yet
    # registered) instead of failing the job
    optional: bool = False

    def validate(self, prefix: str) -> None:
        if self.kind not in EMBEDDER_KINDS:
            raise ConfigError(f"{prefix}.kind: must be one of {EMBEDDER_KINDS}, got {self.kind!r}")
        _positive(prefix, "max_seq_length", self.max_seq_length)
        _positive(prefix, "batch_size", self.batch_size)
        _positive(prefix, "max_concurrency", self.max_concurrency)
        _non_negative(prefix, "max_retries", self.max_retries)
        _positive(prefix, "max_batch_inputs", self.max_batch_inputs)
        _positive(prefix, "max_batch_tokens", self.max_batch_tokens)
        _positive(prefix, "timeout_s", self.timeout_s)
        _non_negative(prefix, "backoff_base_s", self.backoff_base_s)
        _non_negative(prefix, "backoff_max_s", self.backoff_max_s)
        if self.dimensions is not None:
            _positive(prefix, "dimensions", self.dimensions)


@dataclass(frozen=True)
class EmbedConfig:
    embedders: dict[str, EmbedderConfig] = field(default_factory=dict)
    run: list[str] = field(default_factory=list)  # which embedders this run computes; [] = all
    arrow_batch_size: int = 256
    partitions: int = 0  # 0: one per core

    def validate(self, prefix: str) -> None:
        for name in self.run:
            if name not in self.embedders:
                raise ConfigError(f"{prefix}.run: unknown embedder {name!r}")
        _positive(prefix, "arrow_batch_size", self.arrow_batch_size)
        _non_negative(prefix, "partitions", self.partitions)


@dataclass(frozen=True)
class FinetuneConfig:
    base_model: str = "packaged:all-MiniLM-L6-v2"
    max_seq_length: int = 384
    loss: str = "CosineSimilarityLoss"
    batch_size: int = 16
    epochs: int = 1
    learning_rate: float = 2e-5
    warmup_ratio: float = 0.1
    seed: int = 13
    max_train_pairs: int = 0  # 0: all
    registered_model: str = "anime_encoder"
    force: bool = False  # train and register again even if this fingerprint already finished
    logging_steps: int = 10  # training loss logged every N steps
    checkpoint_steps: int = 100  # checkpoint every N steps (and at each epoch end); 0: epochs only

    def validate(self, prefix: str) -> None:
        if self.loss not in ("CosineSimilarityLoss",):
            raise ConfigError(f"{prefix}.loss: only CosineSimilarityLoss is supported")
        _positive(prefix, "max_seq_length", self.max_seq_length)
        _positive(prefix, "batch_size", self.batch_size)
        _positive(prefix, "epochs", self.epochs)
        if not self.learning_rate > 0:
            raise ConfigError(f"{prefix}.learning_rate: must be > 0")
        _fraction(prefix, "warmup_ratio", self.warmup_ratio)
        _non_negative(prefix, "max_train_pairs", self.max_train_pairs)
        _positive(prefix, "logging_steps", self.logging_steps)
        _non_negative(prefix, "checkpoint_steps", self.checkpoint_steps)


AGGREGATIONS = ("weighted", "max", "count", "sum")
BUILTIN_RECOMMENDERS = ("jaccard_cf", "popularity")


@dataclass(frozen=True)
class RecommendConfig:
    k: int = 3
    n_max: int = 10
    aggregation: str = "weighted"
    frequency_bonus: float = 0.05
    # [] = every embedder in anime_embeddings plus the built-in baselines
    recommenders: list[str] = field(default_factory=list)
    bootstrap_samples: int = 1000
    seed: int = 11

    def validate(self, prefix: str) -> None:
        _positive(prefix, "k", self.k)
        _positive(prefix, "n_max", self.n_max)
        if self.aggregation not in AGGREGATIONS:
            raise ConfigError(
                f"{prefix}.aggregation: must be one of {AGGREGATIONS}, got {self.aggregation!r}"
            )
        if self.frequency_bonus < 0:
            raise ConfigError(f"{prefix}.frequency_bonus: must be >= 0")
        _non_negative(prefix, "bootstrap_samples", self.bootstrap_samples)


@dataclass(frozen=True)
class AppConfig:
    spark: SparkConfig = field(default_factory=SparkConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    jaccard: JaccardConfig = field(default_factory=JaccardConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    recommend: RecommendConfig = field(default_factory=RecommendConfig)

    def validate(self, prefix: str = "") -> None:
        for name in self.recommend.recommenders:
            if name not in self.embed.embedders and name not in BUILTIN_RECOMMENDERS:
                raise ConfigError(
                    f"recommend.recommenders: unknown recommender {name!r} "
                    f"(known: {sorted(self.embed.embedders) + list(BUILTIN_RECOMMENDERS)})"
                )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def load_config(path: str | Path = DEFAULT_CONF, overrides: list[str] | None = None) -> AppConfig:
    """Load a YAML file, apply ``dotted.key=value`` overrides, build and validate the config."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}".splitlines()[0]) from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path}: top level must be a mapping")
    for item in overrides or []:
        key, value = parse_override(item)
        _check_key(key)
        _set_dotted(raw, key, value)
    return build_config(raw)


def build_config(raw: dict[str, Any]) -> AppConfig:
    config = _build(AppConfig, _expand_env(raw), "")
    _validate_all(config, "")
    return config


def parse_override(item: str) -> tuple[str, Any]:
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected dotted.key=value")
    key, text = item.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {item!r}: empty key")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    return key, value


def _check_key(key: str) -> None:
    """Fail with the whole dotted key when an override names no config value."""
    tp: Any = AppConfig
    for part in key.split("."):
        if typing.get_origin(tp) in (typing.Union, types.UnionType):
            tp = next(a for a in typing.get_args(tp) if a is not type(None))
        if dataclasses.is_dataclass(tp):
            hints = typing.get_type_hints(tp)
            if part not in hints:
                raise ConfigError(f"{key}: unknown config key")
            tp = hints[part]
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
        else:
            raise ConfigError(f"{key}: unknown config key")


def _set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    node = raw
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{'.'.join(parts[: i + 1])}: is not a section, cannot set {key}")
        node = child
    node[parts[-1]] = value


_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand_env(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _expand_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v) for v in value]
    if isinstance(value, str):
        return _ENV_PATTERN.sub(lambda m: os.environ.get(m.group(1), m.group(2) or ""), value)
    return value


def _build(cls: type, raw: Any, prefix: str) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix or '<root>'}: expected a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in names:
            dotted = f"{prefix}.{key}" if prefix else str(key)
            raise ConfigError(f"{dotted}: unknown config key")
    kwargs = {}
    for name in names:
        if name in raw:
            dotted = f"{prefix}.{name}" if prefix else name
            kwargs[name] = _coerce(hints[name], raw[name], dotted)
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, key)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    if origin is dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__}")
        return {str(k): _coerce(args[1], v, f"{key}.{k}") for k, v in value.items()}
    if origin is list:
        if value is None:
            return []
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__}")
        return [_coerce(args[0], v, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise ConfigError(f"{key}: unsupported type {tp}")  # pragma: no cover - programming error


def _validate_all(node: Any, prefix: str) -> None:
    if dataclasses.is_dataclass(node):
        for f in dataclasses.fields(node):
            child = getattr(node, f.name)
            _validate_all(child, f"{prefix}.{f.name}" if prefix else f.name)
        if hasattr(node, "validate"):
            node.validate(prefix)
    elif isinstance(node, dict):
        for k, v in node.items():
            _validate_all(v, f"{prefix}.{k}")


def _positive(prefix: str, name: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(f"{prefix}.{name}: must be > 0, got {value}")


def _non_negative(prefix: str, name: str, value: float) -> None:
    if value < 0:
        raise ConfigError(f"{prefix}.{name}: must be >= 0, got {value}")


def _fraction(prefix: str, name: str, value: float, open_interval: bool = False) -> None:
    ok = 0 < value < 1 if open_interval else 0 <= value <= 1
    if not ok:
        bounds = "(0, 1)" if open_interval else "[0, 1]"
        raise ConfigError(f"{prefix}.{name}: must be in {bounds}, got {value}")


# --------------------------------------------------------------------------------------------
# Secrets
# --------------------------------------------------------------------------------------------

_SECRET_KEY_PATTERN = re.compile(r"(key|secret|token|password|credential)", re.IGNORECASE)
_SECRET_VALUE_PATTERN = re.compile(r"(sk-[A-Za-z0-9_\-]{8,}|://[^/\s:@]+:[^/\s@]+@)")


def masked(value: Any, key: str = "") -> Any:
    """Copy of a config structure with credential-looking keys and values replaced by ``***``."""
    if isinstance(value, dict):
        return {k: masked(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v, key) for v in value]
    if isinstance(value, str) and value:
        if _SECRET_KEY_PATTERN.search(key) or _SECRET_VALUE_PATTERN.search(value):
            return "***"
    return value
