"""Typed configuration: layered YAML files in ``conf/`` validated into frozen pydantic models.

``conf/base.yaml`` holds every setting with its default value and is the only place defaults
live: the models below declare types and allowed ranges, not values, so a key missing from
the merged result is an error. Embedders are named entries, so their defaults are per kind
(``embed.defaults.<kind>``, filled into each entry that does not set them).

The environment files are overlays holding only their differences; each names the file it
extends in a top-level ``base:`` key, resolved next to it (``local.yaml`` and ``cluster.yaml``
extend ``base.yaml``, ``cluster-gpu.yaml`` extends ``cluster.yaml``). Overlays merge key by
key into mappings; a list or scalar replaces the value below it, ``null`` included.

A job loads ``conf/local.yaml`` (or ``--conf PATH``) and applies ``--set dotted.key=value``
overrides, YAML-parsed, so ``--set recommend.k=5`` gives an int. Unknown keys, wrong types and
out-of-range values fail at load time with a one-line :class:`ConfigError` naming the dotted
key (``recommend.k: expected an integer, got 'three'``).

``${ENV_VAR}`` (or ``${ENV_VAR:-default}``) inside a string value is expanded from the
environment at load time, so a cluster config can point at ``${MLFLOW_TRACKING_URI}`` without
writing it into the file. Secrets (the OpenAI key) are never config values: they are read from
the environment by the code that needs them, and :func:`masked` hides anything that looks like
a credential in logs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)

from anime_recs.options import (
    BACKENDS,
    EMBEDDER_KINDS,
    JACCARD_MODES,
    OPENAI,
    QUANTIZATIONS,
    RECIPES,
    SENTENCE_TRANSFORMERS,
)

DEFAULT_CONF = "conf/local.yaml"
DEFAULT_BASE = "conf/base.yaml"
BASE_KEY = "base"


class ConfigError(ValueError):
    """A configuration problem; the message names the offending dotted key."""


# --------------------------------------------------------------------------------------------
# Value types
# --------------------------------------------------------------------------------------------


def _number_as_text(value: Any) -> Any:
    """YAML reads ``spark.executor.cores: 4`` as an int; a string setting takes it as text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _unit_interval(value: float) -> float:
    if not 0 <= value <= 1:
        raise ValueError(f"must be in [0, 1], got {value}")
    return value


def _open_unit_interval(value: float) -> float:
    if not 0 < value < 1:
        raise ValueError(f"must be in (0, 1), got {value}")
    return value


Text = Annotated[str, BeforeValidator(_number_as_text)]
Positive = Annotated[int, Field(gt=0)]
NonNegative = Annotated[int, Field(ge=0)]
PositiveNumber = Annotated[float, Field(gt=0)]
NonNegativeNumber = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, AfterValidator(_unit_interval)]
OpenFraction = Annotated[float, AfterValidator(_open_unit_interval)]


class Section(BaseModel):
    """A config section: every key required (``conf/base.yaml`` gives them), none unknown."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


class SparkConfig(Section):
    master: Text | None  # None: leave the master to spark-submit
    app_name: Text
    shuffle_partitions: Positive
    driver_memory: Text | None  # None: set by spark-submit
    arrow_batch_size: Positive
    extra: dict[str, Text]


class PathsConfig(Section):
    raw: Annotated[Text, Field(min_length=1)]
    lake: Annotated[Text, Field(min_length=1)]
    reports: Annotated[Text, Field(min_length=1)]
    checkpoints: Annotated[Text, Field(min_length=1)]


class MlflowConfig(Section):
    tracking_uri: Text
    registry_uri: Text | None  # None: same as tracking_uri
    artifact_location: Text | None  # for new experiments; None: the server's default
    experiment: Text


class IngestConfig(Section):
    test_fraction: OpenFraction
    split_seed: int
    max_rejected_fraction: Fraction
    cold_title_fraction: Annotated[float, Field(ge=0, lt=1)]  # titles held out whole


class CopromotedConfig(Section):
    """Pairs of the contrastive recipe (``anime_recs.similarity.copromoted``)."""

    top_partners: Positive  # per train title, its partners of highest Jaccard
    min_promoters: NonNegative  # both titles
    min_intersection: Positive  # shared promoters of a pair


class JaccardConfig(Section):
    min_intersection: Positive
    positive_threshold: Fraction
    negative_threshold: Fraction  # must not exceed positive_threshold
    negative_ratio: NonNegativeNumber
    min_promoters: NonNegative
    min_positive_intersection: NonNegative
    val_fraction: OpenFraction
    seed: int
    title_blocks: NonNegative  # 0: derived from the number of titles and cores
    max_block_cells: Positive
    device: Literal["auto", "cpu", "cuda"]
    mode: Literal[JACCARD_MODES]  # auto: tiles past broadcast_memory_gb
    broadcast_memory_gb: PositiveNumber  # budget of one process of the broadcast design
    block_promoters: Positive  # promoter pairs per title block of the tiles
    copromoted: CopromotedConfig


class SentenceTransformersEmbedderConfig(Section):
    """An encoder run inside Spark: packaged, local folder, Hugging Face id or MLflow URI."""

    kind: Literal[SENTENCE_TRANSFORMERS]
    model: Text
    max_seq_length: Positive
    batch_size: Positive
    backend: Literal[BACKENDS]  # inference engine; onnx runs on CPU (ONNX Runtime)
    quantize: Literal[QUANTIZATIONS]  # int8: dynamic int8 weights, onnx only
    optional: bool  # skip (with a warning) when the model cannot be resolved


class OpenAIEmbedderConfig(Section):
    """An OpenAI-compatible embeddings API called from the driver."""

    kind: Literal[OPENAI]
    model: Text
    base_url: Text | None  # None: api.openai.com
    max_concurrency: Positive
    max_retries: NonNegative  # the openai SDK's retries (its backoff, Retry-After honoured)
    timeout_s: PositiveNumber  # one attempt
    max_batch_inputs: Positive
    max_batch_tokens: Positive
    dimensions: Positive | None  # None: the model's native size
    optional: bool  # skip (with a warning) when no API key is set


EMBEDDER_CONFIGS = (
    SentenceTransformersEmbedderConfig,
    OpenAIEmbedderConfig,
)
EmbedderConfig = Annotated[
    SentenceTransformersEmbedderConfig | OpenAIEmbedderConfig,
    Field(discriminator="kind"),
]
assert EMBEDDER_KINDS == tuple(
    get_args(model.model_fields["kind"].annotation)[0] for model in EMBEDDER_CONFIGS
), "one embedder config per kind in anime_recs.options.EMBEDDER_KINDS"


class EmbedConfig(Section):
    # by kind: the settings an embedder entry does not give (filled in before validation)
    defaults: dict[Literal[EMBEDDER_KINDS], dict[str, Any]]
    embedders: dict[str, EmbedderConfig]
    run: list[Text]  # which embedders this run computes; [] = all
    arrow_batch_size: Positive
    partitions: NonNegative  # 0: one per core


class LoraConfig(Section):
    """The ``lora`` recipe (``anime_recs.training.lora``): the contrastive recipe's examples
    and loss, low-rank updates of the encoder's ``target_modules`` only, merged when saved."""

    rank: Positive
    alpha: PositiveNumber
    dropout: Fraction
    target_modules: Annotated[list[Text], Field(min_length=1)]
    learning_rate: PositiveNumber  # replaces finetune.learning_rate for this recipe


class FinetuneConfig(Section):
    base_model: Text
    max_seq_length: Positive
    recipe: Literal[RECIPES]
    content_neighbours: NonNegative  # contrastive: pairs inside the base encoder's k-NN; 0: all
    content_neighbours_embedder: Text  # the embedder whose vectors give those neighbourhoods
    batch_size: Positive
    # texts per forward pass, grouped by token length (less padding, same gradients); 0: batch
    forward_chunk: NonNegative
    epochs: Positive
    learning_rate: PositiveNumber
    warmup_ratio: Fraction
    seed: int
    max_train_pairs: NonNegative  # 0: all
    max_val_pairs: NonNegative  # validation on a seeded sample of val pairs; 0: all
    validation_candidates: Annotated[int, Field(ge=2)]  # held-out neighbourhood size (NDCG)
    validation_k: Positive  # NDCG@k of the held-out titles' neighbourhoods
    registered_model: Text
    force: bool
    logging_steps: Positive
    checkpoint_steps: NonNegative
    lora: LoraConfig


class HybridConfig(Section):
    """The ``hybrid`` recommender (``anime_recs.recommend.hybrid``)."""

    content: Text | None  # the embedder that ranks the cold titles; None: no hybrid
    collaborative: Text  # the recommender that ranks the warm titles
    cold_slots: list[Positive]  # 1-based list positions that may hold a cold title
    min_similarity: float  # a cold title's content similarity needed to take a slot


class EaseConfig(Section):
    """The ``ease`` recommender (``anime_recs.recommend.peers``)."""

    l2: Annotated[float, Field(gt=0)]  # the closed form's ridge penalty
    max_titles: Positive  # guard of the driver solve (T x T matrices)


class AlsConfig(Section):
    """The ``als`` recommender: Spark MLlib ALS with implicit feedback."""

    rank: Positive
    reg: Annotated[float, Field(gt=0)]  # regParam
    alpha: Annotated[float, Field(gt=0)]  # confidence 1 + alpha x rating
    max_iter: Positive
    seed: int


class RecommendConfig(Section):
    k: Positive
    n_max: Positive
    frequency_bonus: NonNegativeNumber
    recommenders: list[Text]  # [] = every embedder in anime_embeddings + the baselines
    bootstrap_samples: NonNegative
    seed: int
    hybrid: HybridConfig
    ease: EaseConfig
    als: AlsConfig


class ServeConfig(Section):
    """The ``serve`` stage (``anime_recs.serve``): what a scheduled run publishes."""

    n: Positive  # titles per user in user_recommendations
    # any recommender: an embedder, jaccard_cf, a peer (ease, als), hybrid or popularity
    recommender: Annotated[Text, Field(min_length=1)]
    export: Annotated[Text, Field(min_length=1)] | None  # Parquet + JSON Lines folder; None: none


class AppConfig(Section):
    spark: SparkConfig
    paths: PathsConfig
    mlflow: MlflowConfig
    ingest: IngestConfig
    jaccard: JaccardConfig
    embed: EmbedConfig
    finetune: FinetuneConfig
    recommend: RecommendConfig
    serve: ServeConfig

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


def check_consistency(config: AppConfig) -> None:
    """Rules that span keys, after each value passed its own check."""
    jc = config.jaccard
    if jc.negative_threshold > jc.positive_threshold:
        raise ConfigError("jaccard.negative_threshold: must not exceed jaccard.positive_threshold")
    for name in config.embed.run:
        if name not in config.embed.embedders:
            raise ConfigError(f"embed.run: unknown embedder {name!r}")
    for name, embedder in config.embed.embedders.items():
        quantize = getattr(embedder, "quantize", "none")
        if quantize != "none" and embedder.backend != "onnx":
            raise ConfigError(
                f"embed.embedders.{name}.quantize: {quantize} needs backend onnx, "
                f"got {embedder.backend!r}"
            )
    neighbours = config.finetune.content_neighbours_embedder
    if neighbours not in config.embed.embedders:
        raise ConfigError(f"finetune.content_neighbours_embedder: unknown embedder {neighbours!r}")
    hybrid = config.recommend.hybrid.content
    if hybrid is not None and hybrid not in config.embed.embedders:
        raise ConfigError(f"recommend.hybrid.content: unknown embedder {hybrid!r}")
    # the recommender names (recommend.recommenders, serve.recommender, the hybrid's
    # collaborative side) are checked against the recommender registry, which sits above
    # this module: anime_recs.recommend.registry.check_config (every job runs it at start)


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def load_config(path: str | Path = DEFAULT_CONF, overrides: list[str] | None = None) -> AppConfig:
    """Load a config file with the files it extends, apply ``dotted.key=value`` overrides,
    validate."""
    raw = read_layers(Path(path))
    for item in overrides or []:
        key, value = parse_override(item)
        _check_key(key)
        _set_dotted(raw, key, value)
    return _validate(raw)


def build_config(raw: dict[str, Any], base: str | Path = DEFAULT_BASE) -> AppConfig:
    """``raw`` merged over ``base`` (a file and the files it extends), validated."""
    return _validate(merge(read_layers(Path(base)), raw))


def read_layers(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config file merged over the file its ``base:`` names (recursively), without ``base``."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    if path.resolve() in seen:
        raise ConfigError(f"config file {path}: base files form a cycle")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}".splitlines()[0]) from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path}: top level must be a mapping")
    base = raw.pop(BASE_KEY, None)
    if base is None:
        return raw
    if not isinstance(base, str):
        raise ConfigError(f"config file {path}: {BASE_KEY} must be a file name")
    below = read_layers(path.parent / base, (*seen, path.resolve()))
    return merge(below, raw)


def merge(below: dict[str, Any], above: dict[str, Any]) -> dict[str, Any]:
    """``above`` over ``below``: mappings merge key by key, anything else replaces."""
    out = dict(below)
    for key, value in above.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


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
    """Fail with the whole dotted key when an override names no setting of a fixed section
    (the entries of a mapping such as ``embed.embedders`` are checked by validation)."""
    model: Any = AppConfig
    for part in key.split("."):
        if model is None:
            raise ConfigError(f"{key}: unknown config key")
        field = model.model_fields.get(part)
        if field is None:
            raise ConfigError(f"{key}: unknown config key")
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        elif getattr(annotation, "__origin__", None) is dict:
            return
        else:
            model = None


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


def with_embedder_defaults(raw: dict[str, Any]) -> dict[str, Any]:
    """``embed.embedders`` entries completed from ``embed.defaults`` of their kind (an entry's
    own values win); entries of unknown kind are left for validation to report."""
    embed = raw.get("embed")
    if not isinstance(embed, dict) or not isinstance(embed.get("defaults"), dict):
        return raw
    embedders = embed.get("embedders")
    if not isinstance(embedders, dict):
        return raw
    filled = {}
    for name, entry in embedders.items():
        defaults = embed["defaults"].get(entry.get("kind")) if isinstance(entry, dict) else None
        filled[name] = {**defaults, **entry} if isinstance(defaults, dict) else entry
    return {**raw, "embed": {**embed, "embedders": filled}}


def _validate(raw: dict[str, Any]) -> AppConfig:
    try:
        config = AppConfig.model_validate(with_embedder_defaults(_expand_env(raw)))
    except ValidationError as exc:
        raise ConfigError(_one_line(exc.errors()[0])) from None
    check_consistency(config)
    return config


_EXPECTED = {
    "int_type": "expected an integer",
    "float_type": "expected a number",
    "bool_type": "expected true/false",
    "string_type": "expected a string",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "list_type": "expected a list",
}


def _dotted(loc: tuple) -> str:
    """``('embed', 'embedders', 'x', 'openai', 'model')`` -> ``embed.embedders.x.model``
    (pydantic puts the union tag into the location), list positions as ``[i]``."""
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in EMBEDDER_KINDS and loc[:2] == ("embed", "embedders") and i == 3:
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "<root>"


def _one_line(error: dict) -> str:
    """``<dotted key>: <what is wrong>`` for one pydantic error."""
    key, kind = _dotted(error["loc"]), error["type"]
    value, ctx = error.get("input"), error.get("ctx") or {}
    if kind == "extra_forbidden":
        return f"{key}: unknown config key"
    if kind == "missing":
        return f"{key}: missing (every key needs a value; conf/base.yaml sets them all)"
    if kind == "union_tag_invalid":
        return f"{key}.kind: must be one of {EMBEDDER_KINDS}, got {ctx['tag']!r}"
    if kind == "union_tag_not_found":
        return f"{key}.kind: missing, one of {EMBEDDER_KINDS}"
    if kind in _EXPECTED:
        return f"{key}: {_EXPECTED[kind]}, got {value!r}"
    if kind in ("greater_than", "greater_than_equal"):
        bound = ctx.get("gt", ctx.get("ge"))
        return f"{key}: must be {'>' if 'gt' in ctx else '>='} {bound}, got {value}"
    if kind == "literal_error":
        return f"{key}: must be one of {ctx['expected']}, got {value!r}"
    if kind in ("string_too_short", "too_short"):
        return f"{key}: must be a non-empty path"
    message = error["msg"].removeprefix("Value error, ")
    return f"{key}: {message}"


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
