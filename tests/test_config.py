from pathlib import Path

import pytest

from anime_recs.config import ConfigError, build_config, load_config, masked, parse_override

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
LOCAL = str(CONF_DIR / "local.yaml")
SHIPPED = sorted(CONF_DIR.glob("*.yaml"))


def test_local_config_loads_with_defaults():
    config = load_config(LOCAL)
    assert config.spark.master == "local[*]"
    assert config.paths.lake == "lakehouse"
    assert config.embed.embedders["base_minilm_128"].max_seq_length == 128


def test_overrides_are_yaml_typed():
    config = load_config(LOCAL, ["recommend.k=5", "paths.lake=/tmp/x"])
    assert config.recommend.k == 5
    assert config.paths.lake == "/tmp/x"


def test_unknown_key_names_the_key():
    with pytest.raises(ConfigError, match=r"^nosuch\.key: unknown config key$"):
        load_config(LOCAL, ["nosuch.key=1"])


def test_wrong_type_names_the_key():
    with pytest.raises(ConfigError, match=r"^recommend\.k: expected an integer"):
        load_config(LOCAL, ["recommend.k=three"])


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("recommend.k=-1", "recommend.k"),
        ("recommend.n_max=0", "recommend.n_max"),
        ("jaccard.positive_threshold=1.5", "jaccard.positive_threshold"),
        ("jaccard.negative_threshold=-0.1", "jaccard.negative_threshold"),
        ("ingest.test_fraction=1.0", "ingest.test_fraction"),
        ("embed.embedders.x.kind=word2vec", "embed.embedders.x.kind"),
    ],
)
def test_invalid_values_fail_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=rf"^{key.replace('.', chr(92) + '.')}:"):
        load_config(LOCAL, [override])


def test_env_expansion(monkeypatch):
    monkeypatch.setenv("LAKE_ROOT", "s3a://bucket/lake")
    config = build_config({"paths": {"lake": "${LAKE_ROOT}"}})
    assert config.paths.lake == "s3a://bucket/lake"


def test_override_syntax_error():
    with pytest.raises(ConfigError, match="expected dotted.key=value"):
        parse_override("recommend.k")


def test_masked_hides_credentials():
    out = masked(
        {"openai_api_key": "abc", "uri": "https://u:p@host/x", "m": "ok", "t": "sk-12345678901"}
    )
    assert out == {"openai_api_key": "***", "uri": "***", "m": "ok", "t": "***"}


def test_the_shipped_configs_are_found_from_any_working_directory():
    shipped = {p.name for p in SHIPPED}
    assert {"local.yaml", "quality.yaml", "cluster.yaml", "cluster-gpu.yaml"} <= shipped


@pytest.mark.parametrize("path", [str(p) for p in SHIPPED], ids=[p.name for p in SHIPPED])
def test_every_shipped_config_loads(path, monkeypatch):
    monkeypatch.setenv("DATA_BUCKET", "bucket")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    config = load_config(path)
    assert config.paths.lake
