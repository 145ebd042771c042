"""The README and docs/ against what they describe: the defaults they quote against
``conf/base.yaml``, the guarantee table against the tests, the table catalogue against
``tables.SCHEMAS``, links against the files and headings, and no machine paths. (The README's
stage table is checked against the registry in ``tests/test_stages.py``.)

Convention the default check relies on: a backquoted ``key.path: value`` in the prose always
states the key's default; another value is written as ``--set key.path=value`` or as the key
followed by the value in its own backquotes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from anime_recs import tables

REPO = Path(__file__).resolve().parents[1]
DOCS = sorted((REPO / "docs").glob("*.md"))
PAGES = [REPO / "README.md", *DOCS, REPO / "docker" / "README.md"]
BASE = yaml.safe_load((REPO / "conf" / "base.yaml").read_text())
MISSING = object()

# a backquoted `section.key: value`, and `section.key` (default `value`)
QUOTED_SETTING = re.compile(r"`([a-z_]+(?:\.[A-Za-z0-9_-]+)+): ([^`]+)`")
DEFAULT_PHRASE = re.compile(r"`([a-z_]+(?:\.[A-Za-z0-9_-]+)+)` \(default `([^`]+)`\)")
# an absolute path on a development machine, not a path inside an image or a URL
MACHINE_PATH = re.compile(r"(?<![\w/.:-])/(?:work|root|home|Users)/")
LINK = re.compile(r"\]\(([^)\s]+)\)")
DOC_REFERENCE = re.compile(r"\bdocs/([\w-]+\.md)")


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def lookup(mapping: object, dotted: str) -> object:
    """The value at ``dotted`` in a nested mapping, or :data:`MISSING`."""
    for part in dotted.split("."):
        if not isinstance(mapping, dict) or part not in mapping:
            return MISSING
        mapping = mapping[part]
    return mapping


def table_rows(text: str, header: str) -> list[list[str]]:
    """The cells of each body row of the markdown table whose header row starts ``header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
    return rows


def unquote(cell: str) -> str:
    assert cell.startswith("`") and cell.endswith("`"), cell
    return cell[1:-1]


def test_readme_is_a_front_door_of_at_most_150_lines():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines"
    assert "## Quality" in lines


def test_the_defaults_table_is_conf_base_yaml():
    text = (REPO / "docs" / "configuration.md").read_text()
    rows = table_rows(text, "| key | default |")
    assert len(rows) >= 20
    for key, value, *_ in rows:
        key, value = unquote(key), unquote(value)
        want = lookup(BASE, key)
        assert want is not MISSING, f"docs/configuration.md: {key} is not in conf/base.yaml"
        assert yaml.safe_load(value) == want, f"docs/configuration.md: {key}: {value} != {want!r}"


def quoted_defaults(text: str) -> list[tuple[str, str]]:
    return [*QUOTED_SETTING.findall(text), *DEFAULT_PHRASE.findall(text)]


def test_quoted_defaults_find_what_they_should():
    text = "`finetune.recipe: lora`, `spark.task.cpus: 1`, `recommend.k` (default `3`), `a: b`"
    assert quoted_defaults(text) == [
        ("finetune.recipe", "lora"),
        ("spark.task.cpus", "1"),
        ("recommend.k", "3"),
    ]


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_every_default_a_page_quotes_is_conf_base_yaml(page):
    for key, value in quoted_defaults(page.read_text()):
        section, second = key.split(".")[:2]
        if section not in BASE or (isinstance(BASE[section], dict) and second not in BASE[section]):
            continue  # not a setting of ours (e.g. a Spark property `spark.task.cpus: 1`)
        want = lookup(BASE, key)
        assert want is not MISSING, f"{rel(page)}: {key} is not in conf/base.yaml"
        assert yaml.safe_load(value) == want, f"{rel(page)}: `{key}: {value}`, base: {want!r}"


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_no_machine_paths(page):
    found = [m.group(0) for m in MACHINE_PATH.finditer(page.read_text())]
    assert not found, f"{rel(page)} names machine paths {found}"


def slug(heading: str) -> str:
    """GitHub's anchor of a markdown heading."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {slug(h) for h in re.findall(r"^#+ (.+)$", text, re.M)}


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_links_reach_a_file_and_a_heading(page):
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # a URL
        name, _, anchor = target.partition("#")
        linked = (page.parent / name).resolve() if name else page
        assert linked.exists(), f"{rel(page)}: link to a missing file {target}"
        if anchor:
            assert anchor in anchors(linked), f"{rel(page)}: link to a missing heading {target}"


def test_code_and_config_name_only_existing_docs():
    files = [REPO / "Makefile"]
    for root in ("lib", "jobs", "tools", "benchmarks", "conf", "tests", "docker"):
        files += [p for p in (REPO / root).rglob("*") if p.suffix in {".py", ".yaml", ".md"}]
    for path in files:
        for name in DOC_REFERENCE.findall(path.read_text()):
            assert (REPO / "docs" / name).is_file(), f"{rel(path)} names docs/{name}"


def has_test(path: str, name: str) -> bool:
    pattern = re.escape(name).replace(r"\*", r"\w*")
    return re.search(rf"^def {pattern}\(", (REPO / path).read_text(), re.M) is not None


def test_every_guarantee_names_existing_tests():
    """Each row's proof names test files or folders that exist, and each test it names
    (``file::test``, then ``::test`` or a bare ``test_...`` of the same file; ``*`` a prefix)
    is defined there."""
    rows = table_rows((REPO / "docs" / "guarantees.md").read_text(), "| guarantee | proved by |")
    assert len(rows) >= 30
    for guarantee, proof in rows:
        tokens = re.findall(r"`([^`]+)`", proof)
        assert any(t.startswith("tests/") for t in tokens), f"no test for: {guarantee[:60]}"
        path = None
        for token in tokens:
            if token.startswith("tests/"):
                path, _, name = token.partition("::")
                assert (REPO / path).exists(), f"docs/guarantees.md names a missing {path}"
            elif token.startswith(("::", "test_")) and path is not None:
                name = token.removeprefix("::")
            else:
                continue
            if name:
                assert has_test(path, name), f"docs/guarantees.md: no test {path}::{name}"


def test_the_table_catalogue_names_every_table_and_column():
    rows = table_rows((REPO / "docs" / "tables.md").read_text(), "| table | written by |")
    cells = {unquote(row[0]): " ".join(row[1:]) for row in rows}
    assert set(cells) == set(tables.SCHEMAS)
    for name, schema in tables.SCHEMAS.items():
        missing = [f for f in schema.fieldNames() if f"`{f}`" not in cells[name]]
        assert not missing, f"docs/tables.md: {name} lacks columns {missing}"
