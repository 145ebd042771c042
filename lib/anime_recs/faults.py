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

Spark names the file in most of these errors; when it does not (``DESCRIBE HISTORY`` over a
truncated commit: Jackson only says "Unexpected end-of-input"), the table being read or
written is known from the ``lakehouse`` call the error passed through (:func:`touching`), and
``delta_log.damaged_commit`` finds the commit. The table's version and the way back, the newest
earlier version Delta can read whose files exist and whose columns meet the contract
(``delta_log.restorable_version``), come from Delta's own log reader in the job's Spark
session, so checkpoints, commits removed after the log retention period and object stores are
Delta's business; ``jobs/check.py --restore`` brings that version back with Delta's RESTORE. A
commit Delta cannot read past blocks RESTORE as well: the remedy then names the commit(s) to
move out of the log, a step left to the operator (nothing here writes to a Delta log).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import SparkSession
from pyspark.sql.types import StructType

from anime_recs import delta_log
from anime_recs.contract import meets_contract, table_difference
from anime_recs.delta_log import DELTA_LOG
from anime_recs.error_text import ErrorFacts, chain, read_error
from anime_recs.tables import WRITTEN_BY

log = logging.getLogger(__name__)

_TABLE_ATTR = "_anime_recs_table"  # (name, path) of the lakehouse call an error passed through
_STEP_ATTR = "_anime_recs_step"  # the innermost cli.step an error left
_DIAGNOSIS_ATTR = "_anime_recs_diagnosis"  # each enclosing step asks again: Delta is asked once
_REASON_MAX = 400


class StorageFault(RuntimeError):
    """The lake cannot serve a table as its contract says; the message is the one line."""


# --------------------------------------------------------------------------------------------
# What Delta says about the table (through the job's session)
# --------------------------------------------------------------------------------------------


def _spark() -> SparkSession | None:
    """The job's session, to ask Delta about the damaged table (None: the error text alone)."""
    return SparkSession.getActiveSession()


def _latest(spark: SparkSession | None, path: str) -> int | None:
    """The table's latest version from Delta, or from the names of its commits when Delta
    cannot read the log; None without a session or a log."""
    if spark is None:
        return None
    try:
        return delta_log.latest_version(spark, path)
    except Exception:  # noqa: BLE001 - an unreadable newest commit: list the log instead
        versions = delta_log.commit_versions(spark, path)
        return versions[-1] if versions else None


def _restorable(
    spark: SparkSession | None, name: str, path: str, below: int | None, bad_file: str | None = None
) -> int | None:
    """The newest version below ``below`` to restore (``delta_log.restorable_version``)."""
    if spark is None or below is None:
        return None
    return delta_log.restorable_version(
        spark, path, below, bad_file, lambda schema: meets_contract(name, schema)
    )


def _reads(spark: SparkSession, path: str) -> bool:
    """Whether Delta can list the latest version's files (so RESTORE can run); its schema
    alone may come from the version checksum without reading the newest commit."""
    try:
        delta_log.snapshot(spark, path).inputFiles()
        return True
    except Exception:  # noqa: BLE001 - any failure means no
        return False


# --------------------------------------------------------------------------------------------
# The contract
# --------------------------------------------------------------------------------------------


def contract_fault(name: str, path: str, schema: StructType) -> str | None:
    """The line for table ``name`` (at ``path``) breaking its contract, else None."""
    difference = table_difference(name, schema)
    if difference is None:
        return None
    spark = _spark()
    version = _latest(spark, path)
    return (
        f"table {name}{_at(version)} does not match its contract in tables.py: {difference}; "
        + remedy(name, path, _restorable(spark, name, path, version))
    )


def check_contract(name: str, path: str, schema: StructType) -> None:
    """Raise :class:`StorageFault` when table ``name`` (at ``path``) breaks its contract."""
    line = contract_fault(name, path, schema)
    if line is not None:
        raise StorageFault(line)


# --------------------------------------------------------------------------------------------
# Diagnosis of an error
# --------------------------------------------------------------------------------------------


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
    marked = [getattr(e, _STEP_ATTR) for e in chain(exc) if getattr(e, _STEP_ATTR, None)]
    return marked[-1] if marked else None


def diagnose(exc: BaseException) -> str | None:
    """One line for a storage fault behind ``exc`` (see the module docstring), else None."""
    known = getattr(exc, _DIAGNOSIS_ATTR, False)
    if known is not False:
        return known
    try:
        line = _diagnose(exc)
    except Exception:  # noqa: BLE001 - a diagnosis must never hide the error it explains
        log.debug("no diagnosis: inspecting the storage failed", exc_info=True)
        line = None
    _tag(exc, _DIAGNOSIS_ATTR, line)
    return line


def _diagnose(exc: BaseException) -> str | None:
    for link in chain(exc):
        if isinstance(link, StorageFault):
            return str(link)
    facts = read_error(exc)
    tagged = next((getattr(e, _TABLE_ATTR) for e in chain(exc) if hasattr(e, _TABLE_ATTR)), None)
    if facts.no_space:
        return _no_space(facts, tagged, exc)
    if facts.commit:
        uri, version, problem = facts.commit
        return diagnose_commit(_plain(uri.rsplit(f"/{DELTA_LOG}/", 1)[0]), version, problem)
    if facts.data_file and facts.data_file_problem:
        return diagnose_data_file(facts.data_file, facts.data_file_problem)
    spark = _spark()
    if tagged and spark is not None and facts.log_error:
        found = delta_log.damaged_commit(spark, tagged[1])
        if found:
            _, version, problem = found
            return diagnose_commit(tagged[1], version, problem)
    return None


def one_line(exc: BaseException) -> str:
    """A short one-line reason for any error: its diagnosis, else the root cause's first line
    (for a Py4J error the last ``Caused by:`` of the Java trace)."""
    diagnosis = diagnose(exc)
    if diagnosis:
        return diagnosis
    text = str(exc)
    first = next((s for s in text.splitlines() if s.strip()), "")
    line = read_error(exc).root_cause or f"{type(exc).__name__}: {first}"
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
    relative = delta_log.normalized(uri)[len(delta_log.normalized(table_uri)) :].lstrip("/")
    path = _plain(table_uri)
    spark = _spark()
    version = _latest(spark, path)
    target = _restorable(spark, name, path, version, bad_file=relative)
    return f"table {name}{_at(version)} is damaged: data file {relative} {what}; " + remedy(
        name, path, target
    )


def diagnose_commit(path: str, version: int, problem: str) -> str:
    """The line for the unreadable commit ``version`` of the table at ``path``."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    spark = _spark()
    latest = _latest(spark, path)
    line = (
        f"table {name}{_at(latest if latest is not None else version)} is damaged: log entry "
        f"{delta_log.commit_name(version)} is unreadable ({problem}); "
    )
    if spark is not None and version > 0 and not _reads(spark, path):
        return line + _move_out(name, path, version, latest)
    target = _restorable(spark, name, path, version) if version > 0 else None
    return line + remedy(name, path, target)


def _move_out(name: str, path: str, version: int, latest: int | None) -> str:
    """The remedy when Delta cannot read the latest version: RESTORE cannot run either, and
    only the operator takes the damaged version's files (its checksums too: a stale one would
    fail the next commit of that version) out of the log."""
    files = f"{DELTA_LOG}/*{version:020d}.*"
    if latest is not None and latest > version:
        what = f"the files of versions {version}..{latest} ({files} and those after it)"
    else:
        what = f"the files of version {version} ({files}, checksums included)"
    job = WRITTEN_BY.get(name)
    return (
        f"Delta cannot read the table past it: move {what} out of {delta_log.log_folder(path)} "
        f"(the table is then back at version {version - 1})"
        + (f", then rerun jobs/{job}.py" if job else "")
    )


def _no_space(facts: ErrorFacts, tagged: tuple[str, str] | None, exc: BaseException) -> str:
    if tagged:
        name, path = tagged
    elif facts.data_file or facts.written_folder:
        path = _plain(_table_root(facts.data_file) if facts.data_file else facts.written_folder)
        name = path.rstrip("/").rsplit("/", 1)[-1]
    else:
        where = next((e.filename for e in chain(exc) if getattr(e, "filename", None)), None)
        return f"no space left on device{f' writing {where}' if where else ''}; free space, rerun"
    version = _latest(_spark(), path)
    job = WRITTEN_BY.get(name)
    return (
        f"no space left on device writing table {name} at {path}: the write was not committed, "
        f"the table stays at {'version ' + str(version) if version is not None else 'no version'}"
        f"; free space and rerun{f' jobs/{job}.py' if job else ''}"
    )


def _table_root(uri: str) -> str:
    """The table folder of a data file: its folder, above any ``column=value`` partition
    folders."""
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


def _at(version: int | None) -> str:
    return f" (version {version})" if version is not None else ""


def _tag(exc: BaseException, attr: str, value: object) -> None:
    if getattr(exc, attr, None) is None:
        try:
            setattr(exc, attr, value)
        except (AttributeError, TypeError):  # an exception type without a __dict__
            log.debug("cannot tag %s with %s", type(exc).__name__, attr)
