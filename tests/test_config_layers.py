"""Layered config: base + overlays, one-line errors of the pydantic models, embedders by kind."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from anime_recs.config import (
    ConfigError,
    OpenAIEmbedderConfig,
    SentenceTransformersEmbedderConfig,
    load_config,
    merge,
    read_layers,
)

CONF = Path(__file__).resolve().parents[1] / "conf"
LOCAL = CONF / "local.yaml"


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def leaves(node: dict, prefix: str = "") -> dict[str, object]:
    out = {}
    for key, value in node.items():
        dotted = f"{prefix}.{key}" if prefix else key
        out.update(leaves(value, dotted) if isinstance(value, dict) and value else {dotted: value})
    return out


def test_merge_is_key_by_key_for_mappings_and_replaces_the_rest():
    below = {"a": {"x": 1, "y": [1, 2]}, "b": 1, "c": {"z": 1}}
    above = {"a": {"y": [3]}, "b": None, "d": 2}
    assert merge(below, above) == {"a": {"x": 1, "y": [3]}, "b": None, "c": {"z": 1}, "d": 2}


def test_an_overlay_extends_its_base_and_overlays_chain(tmp_path):
    base = yaml.safe_load((CONF / "base.yaml").read_text())
    write(tmp_path / "base.yaml", base)
    write(tmp_path / "mid.yaml", {"base": "base.yaml", "recommend": {"k": 7}})
    top = write(tmp_path / "top.yaml", {"base": "mid.yaml", "recommend": {"n_max": 4}})
    config = load_config(top, ["recommend.seed=5"])
    assert (config.recommend.k, config.recommend.n_max, config.recommend.seed) == (7, 4, 5)
    assert config.jaccard.seed == base["jaccard"]["seed"]


def test_base_cycle_and_missing_base_fail_with_one_line(tmp_path):
    write(tmp_path / "a.yaml", {"base": "b.yaml"})
    write(tmp_path / "b.yaml", {"base": "a.yaml"})
    with pytest.raises(ConfigError, match=r"base files form a cycle"):
        load_config(tmp_path / "a.yaml")
    write(tmp_path / "c.yaml", {"base": "nosuch.yaml"})
    with pytest.raises(ConfigError, match=r"^config file not found: .*nosuch\.yaml$"):
        load_config(tmp_path / "c.yaml")


def test_a_key_missing_from_every_layer_fails_naming_it(tmp_path):
    base = yaml.safe_load((CONF / "base.yaml").read_text())
    del base["finetune"]["seed"]
    with pytest.raises(ConfigError, match=r"^finetune\.seed: missing"):
        load_config(write(tmp_path / "base.yaml", base))


@pytest.mark.parametrize("path", ["local.yaml", "quality.yaml", "cluster.yaml", "cluster-gpu.yaml"])
def test_overlays_hold_only_differences_from_what_they_extend(path, monkeypatch):
    monkeypatch.setenv("DATA_BUCKET", "bucket")
    own = yaml.safe_load((CONF / path).read_text())
    below = leaves(read_layers(CONF / own.pop("base")))
    restated = {k: v for k, v in leaves(own).items() if k in below and below[k] == v}
    assert not restated, f"{path} restates values of its base: {restated}"


def test_the_first_run_differs_from_the_quality_runs_only_in_its_fine_tune_budget():
    """make run (conf/local.yaml) runs what make quality (conf/quality.yaml) measures, with
    fewer training pairs."""
    local, quality = leaves(read_layers(LOCAL)), leaves(read_layers(CONF / "quality.yaml"))
    differ = {k for k in local.keys() | quality.keys() if local.get(k) != quality.get(k)}
    assert differ == {"finetune.max_train_pairs"}
    assert 0 < local["finetune.max_train_pairs"] < quality["finetune.max_train_pairs"]


@pytest.mark.parametrize(
    ("path", "engine"),
    [("local.yaml", ("torch", "none")), ("cluster.yaml", ("onnx", "int8"))]
    + [("cluster-gpu.yaml", ("torch", "none"))],
)
def test_cpu_clusters_embed_with_int8_onnx_and_gpus_with_torch(path, engine, monkeypatch):
    monkeypatch.setenv("DATA_BUCKET", "bucket")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    embedders = load_config(CONF / path).embed.embedders
    for name in ("base_minilm_128", "finetuned_minilm"):
        assert (embedders[name].backend, embedders[name].quantize) == engine, (path, name)


def test_embedders_are_typed_by_kind():
    config = load_config(LOCAL)
    embedders = config.embed.embedders
    assert isinstance(embedders["base_minilm_128"], SentenceTransformersEmbedderConfig)
    assert isinstance(embedders["openai_small"], OpenAIEmbedderConfig)
    assert "max_retries" not in embedders["base_minilm_128"].model_dump()
    assert "batch_size" not in embedders["openai_small"].model_dump()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        # a key of the other kind is not a key of this embedder
        (
            "embed.embedders.base_minilm_128.dimensions=8",
            r"^embed\.embedders\.base_minilm_128\.dimensions: unknown config key$",
        ),
        (
            "embed.embedders.openai_small.max_retries=-1",
            r"^embed\.embedders\.openai_small\.max_retries: must be >= 0, got -1$",
        ),
        ("finetune.force=1", r"^finetune\.force: expected true/false, got 1$"),
        ("recommend.k=2.5", r"^recommend\.k: expected an integer, got 2\.5$"),
        ("embed.run=[nosuch]", r"^embed\.run: unknown embedder 'nosuch'$"),
        ("embed.run=[1]", r"^embed\.run: unknown embedder '1'$"),
        ("paths.lake=", r"^paths\.lake: must be a non-empty path$"),
        (
            "jaccard.negative_threshold=0.5",
            r"^jaccard\.negative_threshold: must not exceed jaccard\.positive_threshold$",
        ),
        ("recommend.k.x=1", r"^recommend\.k\.x: unknown config key$"),
        ("embed.embedders.new.kind=openai", r"^embed\.embedders\.new\.model: missing"),
        ("embed.embedders.x.kind=adapter", r"^embed\.embedders\.x\.kind: "),
        ("finetune.recipe=adapter", r"^finetune\.recipe: must be one of"),
    ],
)
def test_errors_are_one_line_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_config(LOCAL, [override])
    assert "\n" not in str(info.value)


def test_numbers_are_accepted_as_text_where_a_string_is_expected():
    config = load_config(LOCAL, ["spark.extra={spark.task.cpus: 1}", "spark.driver_memory=4"])
    assert config.spark.extra == {"spark.task.cpus": "1"}
    assert config.spark.driver_memory == "4"
