"""anime_recs.submit: locating the wheel, the --py-files zip and the spark-submit line."""

from __future__ import annotations

import os
import zipfile

import pytest

from anime_recs.spark import DELTA_PACKAGE
from anime_recs.submit import find_wheel, main, py_files_zip, spark_submit_command


def fake_wheel(folder, version="0.1.0", content="x = 1\n"):
    path = folder / f"anime_recs-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("anime_recs/__init__.py", content)
    return path


def test_spark_submit_command_ships_the_zip_and_delta_then_the_job():
    cmd = spark_submit_command(
        "jobs/pipeline.py",
        ["--conf", "conf/cluster.yaml"],
        master="spark://h:7077",
        py_files="/d/anime_recs.zip",
        conf={"spark.executor.memory": "1g"},
    )
    assert cmd[:5] == ["spark-submit", "--master", "spark://h:7077", "--deploy-mode", "client"]
    assert cmd[cmd.index("--py-files") + 1] == "/d/anime_recs.zip"
    assert cmd[cmd.index("--packages") + 1] == DELTA_PACKAGE
    confs = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--conf"][:3]
    assert confs == [
        "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.executor.memory=1g",
    ]
    assert cmd[-3:] == ["jobs/pipeline.py", "--conf", "conf/cluster.yaml"]


def test_spark_submit_command_without_packages_for_an_image_with_the_jars():
    cmd = spark_submit_command("app.py", master="k8s://x", py_files="p.zip", packages=())
    assert "--packages" not in cmd


def test_py_files_zip_is_the_wheel_under_a_zip_name_and_follows_rebuilds(tmp_path):
    wheel = fake_wheel(tmp_path)
    target = py_files_zip(wheel)
    assert target.name == "anime_recs-0.1.0-py3-none-any.zip"
    assert target.read_bytes() == wheel.read_bytes()
    assert zipfile.ZipFile(target).read("anime_recs/__init__.py") == b"x = 1\n"

    fake_wheel(tmp_path, content="x = 2\n")  # rebuilt wheel, newer than the zip
    os.utime(wheel, (target.stat().st_mtime + 10,) * 2)
    assert zipfile.ZipFile(py_files_zip(wheel)).read("anime_recs/__init__.py") == b"x = 2\n"


def test_find_wheel_says_how_to_build_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="make wheel"):
        find_wheel(tmp_path)
    fake_wheel(tmp_path)
    assert find_wheel(tmp_path).name == "anime_recs-0.1.0-py3-none-any.whl"


def test_main_prints_the_command(tmp_path, capsys):
    fake_wheel(tmp_path)
    main(["--master", "spark://h:7077", "--dist", str(tmp_path), "jobs/x.py", "--", "--a", "1"])
    out = capsys.readouterr().out.strip()
    assert out.startswith("spark-submit --master spark://h:7077")
    assert f"--py-files {tmp_path}/anime_recs-0.1.0-py3-none-any.zip" in out
    assert out.endswith("jobs/x.py --a 1")
