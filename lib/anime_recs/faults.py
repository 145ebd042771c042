"""Faults of the lake and of the run, as one line an operator can act on.

A job that meets damaged storage stops with exit status 2 and one line naming the table, its
version, the damaged file and the remedy (:func:`diagnose`, called by ``cli.run_main``); the
full trace goes to the log at DEBUG. The faults told apart:

- a data file of the current version is missing (deleted, partial copy);
- a data file is corrupt: a Hadoop checksum mismatch or a Parquet decoding error naming it;
- a ``_delta_log`` commit is unreadable: checksum mismatch, truncated or invalid JSON;
- the table's columns differ from its contract in ``tables.SCHEMAS`` (:class:`StorageFault`
  raised by ``lakehouse.read_table``);
- the device is full while writing a table (``ENOSPC``): Delta did not commit, so the table
  stays at its previous version.

A missing table is ``lakehouse.read_table``'s ``FileNotFoundError`` (one line already).

Spark names the file in most of these errors; when it does not (a truncated commit without
its Hadoop ``.crc``: Jackson only says "Unexpected end-of-input"), the table being read or
written is known from the ``lakehouse`` call the error passed through (:func:`touching`),
and the table's ``_delta_log`` is inspected on the local file system (:func:`damaged_commits`).
The remedy names the newest earlier version that does not have the fault, from a replay of
the JSON commits (:func:`restorable_version`), and ``jobs/check.py --restore`` gets it back.
"""

from __future__ import annotations

import json
import logging
import re
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.sql.types import StructType

from anime_recs.tables import SCHEMAS, WRITTEN_BY

log = logging.getLogger(__name__)

DELTA_LOG = "_delta_log"
_COMMIT = re.compile(r"^(\d{20})\.json$")
_TABLE_ATTR = "_anime_recs_table"  # (name, path) of the lakehouse call an error passed through
_STEP_ATTR = "_anime_recs_step"  # the innermost cli.step an error left
_REASON_MAX = 400


class StorageFault(RuntimeError):
    """The lake cannot serve a table as its contract says; the message is the one line."""


# --------------------------------------------------------------------------------------------
# Reading a table's _delta_log on the local file system (no JVM: this runs after a failure)
# --------------------------------------------------------------------------------------------


def commit_versions(table_dir: Path) -> list[int]:
    """The versions with a JSON commit in ``<table_dir>/_delta_log``, ascending."""
    folder = table_dir / DELTA_LOG
    if not folder.is_dir():
        return []
    return sorted(int(m[1]) for p in folder.iterdir() if (m := _COMMIT.match(p.name)))


def commit_path(table_dir: Path, version: int) -> Path:
    return table_dir / DELTA_LOG / f"{version:020d}.json"


def hadoop_checksum_ok(path: Path) -> bool | None:
    """Whether ``path`` matches its Hadoop ``.<name>.crc`` sidecar (None: there is none).

    The sidecar (written by Hadoop's local ``ChecksumFileSystem``) is ``b"crc\\0"``, the
    chunk size as a big-endian int, then the CRC-32 of each chunk as big-endian ints.
    """
    sidecar = path.with_name(f".{path.name}.crc")
    if not sidecar.is_file():
        return None
    raw = sidecar.read_bytes()
    if len(raw) < 8 or raw[:4] != b"crc\x00":
        return False
    (chunk,) = struct.unpack(">i", raw[4:8])
    expected = [v for (v,) in struct.iter_unpack(">I", raw[8 : 8 + (len(raw) - 8) // 4 * 4])]
    data = path.read_bytes()
    actual = [zlib.crc32(data[i : i + chunk]) for i in range(0, len(data), chunk)] if chunk else []
    return actual == expected


def commit_problem(path: Path) -> str | None:
    """Why a JSON commit file cannot be read (None when it can)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    if hadoop_checksum_ok(path) is False:
        return "checksum mismatch"
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            json.loads(line)
        except ValueError:
            return f"truncated or invalid JSON at line {number}"
    if not data.strip():
        return "empty"
    return None


def damaged_commits(table_dir: Path) -> list[tuple[int, str]]:
    """``(version, problem)`` of every unreadable JSON commit of a local table, ascending."""
    out = []
    for version in commit_versions(table_dir):
        problem = commit_problem(commit_path(table_dir, version))
        if problem:
            out.append((version, problem))
    return out


@dataclass
class VersionState:
    """A table version from the replay: its data files (relative paths) and schema."""

    files: set[str] = field(default_factory=set)
    schema: StructType | None = None


def replay(table_dir: Path) -> dict[int, VersionState]:
    """Each version's state from the JSON commits ``0..n`` (stops at the first unreadable
    or absent one: later states are unknown)."""
    states: dict[int, VersionState] = {}
    current = VersionState()
    expected = 0
    for version in commit_versions(table_dir):
        path = commit_path(table_dir, version)
        if version != expected or commit_problem(path):
            break
        current = VersionState(set(current.files), current.schema)
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            action = json.loads(line)
            if "add" in action:
                current.files.add(action["add"]["path"])
            elif "remove" in action:
                current.files.discard(action["remove"]["path"])
            elif "metaData" in action:
                current.schema = StructType.fromJson(json.loads(action["metaData"]["schemaString"]))
        states[version] = current
        expected += 1
    return states


def restorable_version(
    table_dir: Path, name: str, below: int, bad_file: str | None = None
) -> int | None:
    """The newest version below ``below`` whose data files all exist (and do not include
    ``bad_file``) and whose schema meets the contract; None when there is none or the log
    cannot be replayed that far."""
    contract = SCHEMAS.get(name)
    states = replay(table_dir)
    for version in sorted((v for v in states if v < below), reverse=True):
        state = states[version]
        if bad_file is not None and any(_same_file(f, bad_file) for f in state.files):
            continue
        if contract is not None and (
            state.schema is None or contract_difference(contract, state.schema)
        ):
            continue
        if all((table_dir / f).is_file() for f in state.files):
            return version
    return None


def _same_file(relative: str, file: str) -> bool:
    return relative == file or relative.endswith("/" + file) or file.endswith("/" + relative)


# --------------------------------------------------------------------------------------------
# The contract
# --------------------------------------------------------------------------------------------


def contract_difference(contract: StructType, actual: StructType) -> str | None:
    """How ``actual``'s columns differ from ``contract``'s (names, order, types; nullability
    is not compared: Delta keeps whatever the writer's plan said), or None when they match."""
    expected = [(f.name, f.dataType.simpleString()) for f in contract.fields]
    found = [(f.name, f.dataType.simpleString()) for f in actual.fields]
    if expected == found:
        return None
    want, have = dict(expected), dict(found)
    parts = []
    missing = [f"{n} {t}" for n, t in expected if n not in have]
    unexpected = [f"{n} {t}" for n, t in found if n not in want]
    retyped = [f"{n} is {have[n]} (contract {t})" for n, t in expected if have.get(n, t) != t]
    if missing:
        parts.append(f"missing column(s) {', '.join(missing)}")
    if unexpected:
        parts.append(f"unexpected column(s) {', '.join(unexpected)}")
    if retyped:
        parts.append(f"column type(s) {', '.join(retyped)}")
    if not parts:
        parts.append(
            f"column order ({', '.join(n for n, _ in found)}) differs from the contract's "
            f"({', '.join(n for n, _ in expected)})"
        )
    return "; ".join(parts)


def contract_fault(name: str, path: str, schema: StructType) -> str | None:
    """The line for table ``name`` (at ``path``) breaking its contract, else None."""
    contract = SCHEMAS.get(name)
    difference = contract_difference(contract, schema) if contract is not None else None
    if difference is None:
        return None
    table_dir = _local_dir(path)
    version = _latest(table_dir)
    target = (
        restorable_version(table_dir, name, version) if table_dir and version is not None else None
    )
    return (
        f"table {name}{_at(version)} does not match its contract in tables.py: {difference}; "
        + remedy(name, path, target)
    )


def check_contract(name: str, path: str, schema: StructType) -> None:
    """Raise :class:`StorageFault` when table ``name`` (at ``path``) breaks its contract."""
    line = contract_fault(name, path, schema)
    if line is not None:
        raise StorageFault(line)


# --------------------------------------------------------------------------------------------
# Diagnosis of an error
# --------------------------------------------------------------------------------------------

_DATA_FILE = re.compile(r"((?:file:|[a-z][a-z0-9+.-]*://)[^\s'\"]+?\.parquet)(?![\w-]|\.\w)")
_LOG_FILE = re.compile(r"((?:file:|[a-z][a-z0-9+.-]*://)[^\s'\"]+?/_delta_log/(\d{20})\.json)")
_MISSING = ("FILE_NOT_EXIST", "FileNotFoundException", "DELTA_FILE_NOT_FOUND", "does not exist")
_CORRUPT = {
    "ChecksumException": "checksum mismatch",
    "ParquetDecodingException": "Parquet decoding error",
    "CANNOT_READ_FILE_FOOTER": "unreadable Parquet footer",
    "is not a Parquet file": "not a Parquet file",
    "FAILED_READ_FILE": "read error",
}
_NO_SPACE = "No space left on device"


@contextmanager
def touching(name: str, path: str) -> Iterator[None]:
    """Tag an error raised inside with the table being read or written (innermost wins)."""
    try:
        yield
    except Exception as exc:
        _tag(exc, _TABLE_ATTR, (name, path))
        raise


def mark_step(exc: BaseException, step: str) -> None:
    """Remember on ``exc`` the innermost step it left (``cli.step``)."""
    _tag(exc, _STEP_ATTR, step)


def failed_step(exc: BaseException) -> str | None:
    """The innermost step an error (or the error it wraps) left, or None."""
    marked = [getattr(e, _STEP_ATTR) for e in _chain(exc) if getattr(e, _STEP_ATTR, None)]
    return marked[-1] if marked else None


def diagnose(exc: BaseException) -> str | None:
    """One line for a storage fault behind ``exc`` (see the module docstring), else None."""
    try:
        return _diagnose(exc)
    except Exception:  # noqa: BLE001 - a diagnosis must never hide the error it explains
        log.debug("no diagnosis: inspecting the storage failed", exc_info=True)
        return None


def _diagnose(exc: BaseException) -> str | None:
    for link in _chain(exc):
        if isinstance(link, StorageFault):
            return str(link)
    text = "\n".join(str(e) for e in _chain(exc))
    tagged = next((getattr(e, _TABLE_ATTR) for e in _chain(exc) if hasattr(e, _TABLE_ATTR)), None)
    if _NO_SPACE in text or any(getattr(e, "errno", None) == 28 for e in _chain(exc)):
        return _no_space(text, tagged, exc)
    match = _LOG_FILE.search(text)
    if match:
        table_dir = _local_dir(match[1].rsplit(f"/{DELTA_LOG}/", 1)[0])
        problem = commit_problem(Path(local_path(match[1]))) if table_dir else None
        return diagnose_commit(table_dir, match[1], int(match[2]), problem or "unreadable")
    match = _DATA_FILE.search(text)
    storage_error = any(m in text for m in (*_MISSING, *_CORRUPT))
    if match and f"/{DELTA_LOG}/" not in match[1] and storage_error:
        return _data_file_fault(match[1], text)
    if tagged:
        table_dir = _local_dir(tagged[1])
        damaged = damaged_commits(table_dir) if table_dir else []
        if damaged:
            version, problem = damaged[0]
            return diagnose_commit(
                table_dir, str(commit_path(table_dir, version)), version, problem
            )
    return None


def one_line(exc: BaseException) -> str:
    """A short one-line reason for any error: its diagnosis, else the root cause's first line
    (for a Py4J error the last ``Caused by:`` of the Java trace)."""
    diagnosis = diagnose(exc)
    if diagnosis:
        return diagnosis
    text = str(exc)
    causes = re.findall(r"^Caused by: (.+)$", text, flags=re.MULTILINE)
    java = re.search(r"^: (.+)$", text, flags=re.MULTILINE)
    if causes:
        line = causes[-1]
    elif java:
        line = java[1]
    else:
        line = f"{type(exc).__name__}: {next((s for s in text.splitlines() if s.strip()), '')}"
    line = line.strip()
    return line if len(line) <= _REASON_MAX else line[: _REASON_MAX - 3] + "..."


def failure_record(exc: BaseException) -> dict[str, str | None]:
    """What the run log keeps of a failed stage: the step it failed in and the one line."""
    return {"failed_step": failed_step(exc), "error": one_line(exc)}


def remedy(name: str, path: str, target: int | None) -> str:
    """The way back: a restore to ``target`` (when there is one) and/or the table's job."""
    job = WRITTEN_BY.get(name)
    rerun = f"rerun jobs/{job}.py" if job else None
    if target is None:
        return f"{rerun} to rewrite it" if rerun else "no earlier version to restore"
    lake = path.rsplit("/", 1)[0]
    restore = (
        f"restore an earlier version with: python jobs/check.py --set paths.lake={lake} "
        f"--restore {name} --to-version {target}"
    )
    return f"{restore}, or {rerun}" if rerun else restore


def diagnose_data_file(uri: str, what: str) -> str:
    """The line for data file ``uri`` of a table that ``what`` (e.g. ``is missing``)."""
    table_uri = _table_root(uri)
    name = table_uri.rstrip("/").rsplit("/", 1)[-1]
    relative = local_path(uri)[len(local_path(table_uri)) :].lstrip("/")
    table_dir = _local_dir(table_uri)
    version = _latest(table_dir)
    target = (
        restorable_version(table_dir, name, version, bad_file=relative)
        if table_dir and version is not None
        else None
    )
    return f"table {name}{_at(version)} is damaged: data file {relative} {what}; " + remedy(
        name, _plain(table_uri), target
    )


def _data_file_fault(uri: str, text: str) -> str:
    if any(marker in text for marker in _MISSING):
        return diagnose_data_file(uri, "is missing")
    kind = next(v for k, v in _CORRUPT.items() if k in text or k == "FAILED_READ_FILE")
    return diagnose_data_file(uri, f"is corrupt ({kind})")


def diagnose_commit(table_dir: Path | None, commit: str, version: int, problem: str) -> str:
    """The line for unreadable commit ``version`` (file ``commit``) of a table."""
    table_root = _plain(commit.rsplit(f"/{DELTA_LOG}/", 1)[0])
    name = table_root.rstrip("/").rsplit("/", 1)[-1]
    latest = _latest(table_dir) if table_dir else None
    target = restorable_version(table_dir, name, version) if table_dir and version > 0 else None
    return (
        f"table {name}{_at(latest if latest is not None else version)} is damaged: log entry "
        f"{DELTA_LOG}/{version:020d}.json is unreadable ({problem}); "
        + remedy(name, table_root, target)
    )


def _no_space(text: str, tagged: tuple[str, str] | None, exc: BaseException) -> str:
    match = _DATA_FILE.search(text) or re.search(r"writing rows to (\S+?)\.?(?:\s|$)", text)
    if tagged:
        name, path = tagged
    elif match:
        path = _plain(_table_root(match[1]))
        name = path.rstrip("/").rsplit("/", 1)[-1]
    else:
        where = next((e.filename for e in _chain(exc) if getattr(e, "filename", None)), None)
        return f"no space left on device{f' writing {where}' if where else ''}; free space, rerun"
    version = _latest(_local_dir(path))
    job = WRITTEN_BY.get(name)
    return (
        f"no space left on device writing table {name} at {path}: the write was not committed, "
        f"the table stays at {'version ' + str(version) if version is not None else 'no version'}"
        f"; free space and rerun{f' jobs/{job}.py' if job else ''}"
    )


def _table_root(uri: str) -> str:
    """The table folder of a data file (or the folder itself): the nearest one holding a
    ``_delta_log`` (local),
    else the parent above any ``column=value`` partition folders."""
    local = _local_dir(uri)
    if local is not None:
        for parent in (local, *local.parents):
            if (parent / DELTA_LOG).is_dir():
                return str(parent)
    parts = uri.split("/")[:-1]
    while parts and "=" in parts[-1]:
        parts.pop()
    return "/".join(parts)


def local_path(uri: str) -> str:
    """A ``file:`` URI as a local path; other URIs unchanged."""
    return re.sub(r"^file:(//)?", "", uri) if uri.startswith("file:") else uri


def _plain(uri: str) -> str:
    """A local path without ``file:``; other URIs unchanged."""
    return local_path(uri)


def _local_dir(path_or_uri: str | None) -> Path | None:
    if not path_or_uri:
        return None
    if "://" in path_or_uri and not path_or_uri.startswith("file:"):
        return None
    return Path(local_path(path_or_uri))


def _latest(table_dir: Path | None) -> int | None:
    versions = commit_versions(table_dir) if table_dir else []
    return versions[-1] if versions else None


def _at(version: int | None) -> str:
    return f" (version {version})" if version is not None else ""


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and link not in out:
        out.append(link)
        suppressed = link.__suppress_context__ and link.__cause__ is None  # raise ... from None
        link = link.__cause__ or (None if suppressed else link.__context__)
    return out


def _tag(exc: BaseException, attr: str, value: object) -> None:
    if getattr(exc, attr, None) is None:
        try:
            setattr(exc, attr, value)
        except (AttributeError, TypeError):  # an exception type without a __dict__
            log.debug("cannot tag %s with %s", type(exc).__name__, attr)
