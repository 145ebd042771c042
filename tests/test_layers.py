"""Imports in ``lib/anime_recs`` flow one way: core <- stage packages (in order) <- registry.

Every ``import``/``from`` of an ``anime_recs`` module (also those inside functions) is read with
``ast`` from the source files, so a lazy import cannot hide a wrong direction. A module may
import modules of its own layer or of a lower one; nothing imports ``jobs`` or the test-data
generator.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[1] / "lib" / "anime_recs"

# lowest first; a name is a module (``config``) or a subpackage (``data``) of anime_recs
LAYERS: list[set[str]] = [
    # foundations: import no anime_recs module
    {"error_text", "errors", "hashing", "options", "paths", "tables"},
    {"config", "spark", "delta_log", "contract", "faults", "lakehouse"},
    # core: knows no stage
    {"runlog", "tracking", "models", "steps", "submit", "lakecheck", "progress"},
    {"data"},  # stage packages, in pipeline order
    {"similarity"},
    {"embeddings"},
    {"training"},
    {"evaluation"},
    {"recommend"},
    {"serve"},
    {"stages"},  # the stage registry
    {"pipeline"},  # the runner that reads it
    {"cli"},  # what entry points share (arguments, logging setup, exit codes)
]


def module_name(path: Path) -> str:
    parts = path.relative_to(LIB.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, package: str) -> set[str]:
    """Absolute names of every module a source file in ``package`` imports (relative resolved)."""
    tree = ast.parse(source)
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = parts[: len(parts) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
    return out


def layer_of(name: str) -> int:
    """The layer of ``anime_recs.<top>...``; fails for a module missing from :data:`LAYERS`."""
    top = name.split(".")[1]
    for index, members in enumerate(LAYERS):
        if top in members:
            return index
    raise AssertionError(f"anime_recs.{top} is in no layer of tests/test_layers.py: add it")


def modules() -> dict[str, set[str]]:
    """Every module of the package -> the anime_recs modules (and others) it imports."""
    out = {}
    for path in sorted(LIB.rglob("*.py")):
        name = module_name(path)
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        out[name] = imported_modules(path.read_text(), package)
    return out


def existing(name: str, known: set[str]) -> str | None:
    """``name`` if it is a module of the package, else its parent (``from pkg import name``)."""
    if name in known:
        return name
    parent = name.rsplit(".", 1)[0]
    return parent if parent in known else None


def test_every_module_is_in_a_layer():
    for name in modules():
        if name != "anime_recs":
            layer_of(name)


def test_imports_point_to_the_same_or_a_lower_layer():
    graph = modules()
    known = set(graph)
    wrong = set()
    for name, imports in graph.items():
        if name == "anime_recs":
            continue
        own = layer_of(name)
        for target in imports:
            if not target.startswith("anime_recs."):
                continue
            target = existing(target, known)
            if target is None or target == "anime_recs":
                continue
            if layer_of(target) > own:
                wrong.add(f"{name} (layer {own}) imports {target} (layer {layer_of(target)})")
    assert not wrong, "\n".join(sorted(wrong))


def test_foundations_import_no_package_module():
    graph = modules()
    for name, imports in graph.items():
        if name != "anime_recs" and layer_of(name) == 0:
            assert not [t for t in imports if t.startswith("anime_recs")], name


def test_nothing_imports_jobs_tests_or_the_generator():
    # the generator (``malgen``) is test tooling beside the product
    for name, imports in modules().items():
        bad = [t for t in imports if t.split(".")[0] in ("jobs", "tests", "malgen")]
        assert not bad, f"{name} imports {bad}"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from anime_recs.tables import ANIME\n", {"anime_recs.tables", "anime_recs.tables.ANIME"}),
        ("def f():\n    import anime_recs.jobs\n", {"anime_recs.jobs"}),
        ("from . import x\n", {"anime_recs.data", "anime_recs.data.x"}),
        ("from ..config import AppConfig\n", {"anime_recs.config", "anime_recs.config.AppConfig"}),
    ],
)
def test_imports_are_read_also_inside_functions_and_relative(source, expected):
    """The reader itself: a missed import would make the layer test pass vacuously."""
    assert imported_modules(source, "anime_recs.data") == expected
