"""Exports are published atomically: a killed export leaves the previous one intact."""

import hashlib
from pathlib import Path

import pytest

from anime_recs.serve.export import export_recommendations, recover
from tests.slow_write import kill_mid_write


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def previous_export(spark, target: Path) -> dict[str, str]:
    df = spark.createDataFrame(
        [(1, 1, 5, "old", 0.5, "model", [2], "jaccard_cf", "v", "r")],
        "user_id int, rank int, anime_id int, name string, score double, source string, "
        "because array<int>, recommender string, model_version string, run_id string",
    )
    export_recommendations(df, target)
    return snapshot(target)


@pytest.mark.slow
@pytest.mark.e2e
def test_killed_export_leaves_the_previous_export_intact(spark, tmp_path):
    target = tmp_path / "exports" / "latest"
    before = previous_export(spark, target)
    assert any(k.startswith("jsonl/part-") for k in before)
    assert any(k.startswith("parquet/recommender=jaccard_cf/") for k in before)

    tmp_glob = ".latest.tmp-*"
    # kill once the new export has started writing its temporary folder
    kill_mid_write(
        "export",
        target,
        lambda: any(p.is_dir() for p in target.parent.glob(f"{tmp_glob}/parquet")),
    )

    assert list(target.parent.glob(tmp_glob))  # the killed export was under way
    assert snapshot(target) == before  # readers still see the whole previous export

    # the next export cleans up what the killed one left and publishes the new rows
    export_recommendations(
        spark.read.parquet(str(target / "parquet")).select(
            "user_id",
            "rank",
            "anime_id",
            "name",
            "score",
            "source",
            "because",
            "recommender",
            "model_version",
            "run_id",
        ),  # fmt: skip
        target,
    )
    assert not list(target.parent.glob(".latest.*"))
    lines = [
        line for part in sorted((target / "jsonl").glob("part-*.json"))
        for line in part.read_text().splitlines()
    ]  # fmt: skip
    assert lines == [
        '{"user_id":1,"items":[{"anime_id":5,"name":"old","score":0.5,"because":[2]}]}'
    ]


def test_an_export_killed_between_the_renames_is_restored(tmp_path):
    target = tmp_path / "latest"
    aside = tmp_path / ".latest.old-0123"
    (aside / "jsonl").mkdir(parents=True)
    (aside / "jsonl" / "part-0.json").write_text('{"user_id": 1, "items": []}\n')
    (tmp_path / ".latest.tmp-4567").mkdir()
    recover(target)
    assert (target / "jsonl" / "part-0.json").read_text() == '{"user_id": 1, "items": []}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest"]
