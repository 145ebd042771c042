"""The prepared GPU script runs where Spark is not installed (the device machine has none).

``benchmarks/gpu_check.py`` is run in a subprocess whose imports of ``pyspark`` and ``delta``
fail, at its smoke size on the CPU: the Jaccard count kernel, the embedding UDF's body and a
fine-tuning step must import and run without Spark, and their results must hold.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

WITHOUT_SPARK = """
import importlib.abc, runpy, sys
class NoSpark(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("pyspark", "delta"):
            raise ImportError("not installed here: " + name)
sys.meta_path.insert(0, NoSpark())
sys.argv = ["gpu_check", *sys.argv[1:]]
runpy.run_module("benchmarks.gpu_check", run_name="__main__")
"""


@pytest.mark.e2e  # the timing script in its own process
def test_gpu_check_runs_without_spark_and_its_kernels_agree(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "lib"), str(REPO)])}
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_SPARK, "--smoke", "--device", "cpu", "--out", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    jaccard = report["jaccard"]
    assert jaccard["counts_equal"] and jaccard["titles"] == 300 and jaccard["promoter_pairs"] > 0
    encode = report["encode"]
    assert encode["texts"] == 48
    assert encode["cpu_128_unit_norm"] and encode["cpu_384_unit_norm"]
    train = report["train"]
    assert train["cpu_128_steps"] == train["cpu_384_steps"] == 2  # 64 pairs in batches of 32
    assert train["cpu_128_pairs_per_s"] > 0
