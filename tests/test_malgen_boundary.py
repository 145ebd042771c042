"""The production package never imports the generator: ``anime_recs`` -> ``malgen`` is forbidden,
and of the jobs only ``jobs/generate.py`` does.

``malgen`` (the synthetic-data generator) is test and benchmark tooling beside the product; it
may use ``anime_recs``, never the other way round. The check reads every source file of
``lib/anime_recs`` with :mod:`ast` (imports inside functions included) and also catches
``importlib.import_module("malgen...")`` / ``__import__("malgen...")`` with a literal name.
Nor does the wheel ship it: the product is ``anime_recs`` alone.
"""

from __future__ import annotations

import ast
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PRODUCT = REPO_ROOT / "lib" / "anime_recs"
FORBIDDEN = "malgen"


def imported_modules(source: str) -> list[str]:
    """Absolute module names a source imports, statically or by a literal dynamic import."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            first = node.args[0]
            if called in ("import_module", "__import__") and isinstance(first, ast.Constant):
                names.append(str(first.value))
    return names


def is_forbidden(module: str) -> bool:
    return module == FORBIDDEN or module.startswith(FORBIDDEN + ".")


def test_the_check_sees_every_kind_of_import():
    source = (
        "import malgen\n"
        "from malgen.generate import SCALES\n"
        "def f():\n"
        "    import malgen.text as t\n"
        "    return importlib.import_module('malgen.calibration')\n"
        "import malgenius\n"
        "from . import malgen_like\n"
    )
    found = [m for m in imported_modules(source) if is_forbidden(m)]
    assert found == ["malgen", "malgen.generate", "malgen.text", "malgen.calibration"]


def test_anime_recs_imports_nothing_from_malgen():
    files = sorted(PRODUCT.rglob("*.py"))
    assert len(files) > 20, f"expected the anime_recs sources under {PRODUCT}"
    offenders = [
        f"{path.relative_to(REPO_ROOT)}: {module}"
        for path in files
        for module in imported_modules(path.read_text(encoding="utf-8"))
        if is_forbidden(module)
    ]
    assert offenders == []


def test_no_job_but_the_generator_imports_malgen():
    """``jobs/pipeline.py --generate`` runs ``jobs/generate.py`` in its own process instead of
    importing the generator (a scheduled pipeline never loads it)."""
    jobs = sorted((REPO_ROOT / "jobs").glob("*.py"))
    importing = {
        path.name
        for path in jobs
        if any(is_forbidden(m) for m in imported_modules(path.read_text(encoding="utf-8")))
    }
    assert importing == {"generate.py"}


def test_the_wheel_config_packages_anime_recs_and_not_the_generator():
    """What ``[tool.setuptools.packages.find]`` of pyproject.toml finds in ``lib``: the product's
    packages only; no package data is declared for the generator."""
    from setuptools import find_packages

    setuptools_config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"][
        "setuptools"
    ]
    find = setuptools_config["packages"]["find"]
    packages = find_packages(
        where=str(REPO_ROOT / find["where"][0]),
        include=find.get("include", ("*",)),
        exclude=find.get("exclude", ()),
    )
    assert "anime_recs" in packages and "anime_recs.data" in packages
    assert [p for p in packages if is_forbidden(p)] == []
    assert FORBIDDEN not in setuptools_config.get("package-data", {})


@pytest.mark.slow
def test_the_wheel_ships_anime_recs_and_no_generator(tmp_path):
    """The built wheel (``uv build``, as ``make wheel`` and the cluster tests build it)."""
    from anime_recs.submit import build_wheel

    with zipfile.ZipFile(build_wheel(REPO_ROOT, tmp_path)) as wheel:
        names = wheel.namelist()
    assert "anime_recs/__init__.py" in names and "anime_recs/data/ingest.py" in names
    assert [n for n in names if n.split("/")[0] == FORBIDDEN] == []
