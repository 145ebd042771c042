"""What an error says about storage, read in one place: :func:`read_error`.

Spark, Hadoop, Parquet, Jackson and Delta report storage faults through a few Python types (a
Py4J error or a captured Spark exception wrapping the Java one), so the typed facts come first:
an ``OSError``'s ``errno`` and a Spark exception's error condition (``getCondition()``, e.g.
``FAILED_READ_FILE.FILE_NOT_EXIST``). What the types do not carry (the file a task failed on,
the commit Jackson could not parse, the Java class of a wrapped cause) is read from the texts
of the exception chain here and nowhere else. The markers are those of the pinned versions
(pyspark 4.0.1, delta-spark 4.0.0 and the Hadoop, Parquet and Jackson they bring); the
storage-fault tests damage real tables with them (``tests/reliability/test_storage_faults.py``)
and ``tests/test_faults.py`` pins each marker.
"""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass

from py4j.protocol import Py4JError, Py4JJavaError
from pyspark.errors import PySparkException

#: a Parquet data file named in an error text (Spark writes local files as ``file:/...``)
_DATA_FILE = re.compile(r"((?:file:|[a-z][a-z0-9+.-]*://)[^\s'\"]+?\.parquet)(?![\w-]|\.\w)")
#: a JSON commit named in an error text or a listing
_COMMIT = re.compile(r"((?:file:|[a-z][a-z0-9+.-]*://)[^\s'\"]+?/_delta_log/(\d{20})\.json)")
_WRITING_TO = re.compile(r"writing rows to (\S+?)\.?(?:\s|$)")  # TASK_WRITE_FAILED's folder
_CAUSED_BY = re.compile(r"^Caused by: (.+)$", re.MULTILINE)
_JAVA_ERROR = re.compile(r"^: (.+)$", re.MULTILINE)  # Py4J's line of the Java exception
_DELTA_CONFLICT = re.compile(
    r"io\.delta\.exceptions\.((?:Concurrent\w*|MetadataChanged|ProtocolChanged)Exception): "
    r"(?:\[\w+\] )?(?:\1: )?([^\n]*)"
)

_MISSING = ("FILE_NOT_EXIST", "FileNotFoundException", "DELTA_FILE_NOT_FOUND", "does not exist")
_CORRUPT = {  # marker -> what the line calls it; the generic read failure last
    "ChecksumException": "checksum mismatch",
    "ParquetDecodingException": "Parquet decoding error",
    "CANNOT_READ_FILE_FOOTER": "unreadable Parquet footer",
    "is not a Parquet file": "not a Parquet file",
    "FAILED_READ_FILE": "read error",
}
_CHECKSUM = "ChecksumException"
_BAD_JSON = ("MALFORMED_RECORD", "JsonParseException", "JsonEOFException", "end-of-input")
_NO_SPACE = "No space left on device"


@dataclass(frozen=True)
class ErrorFacts:
    """What an error chain says about storage; None/False where it says nothing.

    ``data_file``/``data_file_problem``: a table's Parquet file and ``is missing`` or
    ``is corrupt (<kind>)``; ``commit``: ``(uri, version, problem)`` of an unreadable JSON
    commit; ``log_error``: the text is what Delta says when a commit cannot be read, even
    naming no file; ``no_space`` and ``written_folder`` (the folder a failed write went to);
    ``conflict``: ``(exception class, message)`` of a Delta concurrent-writer conflict;
    ``root_cause``: the deepest Java cause's line, for a short reason.
    """

    data_file: str | None = None
    data_file_problem: str | None = None
    commit: tuple[str, int, str] | None = None
    log_error: bool = False
    no_space: bool = False
    written_folder: str | None = None
    conflict: tuple[str, str] | None = None
    root_cause: str | None = None


def chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the errors it was raised from or during, outermost first."""
    out: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and link not in out:
        out.append(link)
        suppressed = link.__suppress_context__ and link.__cause__ is None  # raise ... from None
        link = link.__cause__ or (None if suppressed else link.__context__)
    return out


def java_causes(exc: BaseException, depth: int = 16) -> list[tuple[str, str | None]]:
    """``(class name, Spark error condition or None)`` of each Java exception behind the
    chain's Py4J errors, outermost first (``Throwable.getCause``, ``SparkThrowable``)."""
    out: list[tuple[str, str | None]] = []
    for link in chain(exc):
        java = link.java_exception if isinstance(link, Py4JJavaError) else None
        try:
            while java is not None and len(out) < depth:
                out.append((java.getClass().getName(), _condition(java)))
                java = java.getCause()
        except Py4JError:  # the JVM is gone: the texts still say what they say
            break
    return out


def _condition(java: object) -> str | None:
    try:
        return java.getCondition()  # type: ignore[attr-defined] - SparkThrowable's
    except Py4JError:  # not a SparkThrowable
        return None


def conditions(exc: BaseException) -> list[str]:
    """The Spark error conditions behind an error: of its Python Spark exceptions
    (``PySparkException.getCondition``) and of the Java ones behind a Py4J error."""
    found = [e.getCondition() for e in chain(exc) if isinstance(e, PySparkException)]
    found += [condition for _, condition in java_causes(exc)]
    return [c for c in found if c]


def read_error(exc: BaseException) -> ErrorFacts:
    """Read the storage facts of an error chain (see the module docstring)."""
    links = chain(exc)
    typed = [*conditions(exc), *(name for name, _ in java_causes(exc))]
    text = "\n".join([*typed, *(str(e) for e in links)])
    no_space = _NO_SPACE in text or any(getattr(e, "errno", None) == errno.ENOSPC for e in links)
    data_file = next((m[1] for m in _DATA_FILE.finditer(text) if "/_delta_log/" not in m[1]), None)
    conflict = _DELTA_CONFLICT.search(text)
    writing_to = _WRITING_TO.search(text)
    return ErrorFacts(
        data_file=data_file,
        data_file_problem=data_file_problem(text) if data_file else None,
        commit=unreadable_commit(text),
        log_error=_CHECKSUM in text or any(m in text for m in _BAD_JSON),
        no_space=no_space,
        written_folder=writing_to[1].rstrip("/") if writing_to else None,
        conflict=(conflict[1], conflict[2].strip()) if conflict else None,
        root_cause=root_cause(str(exc)),
    )


def data_file_problem(text: str) -> str | None:
    """``is missing`` or ``is corrupt (<kind>)`` for a text about a data file, else None."""
    if any(marker in text for marker in _MISSING):
        return "is missing"
    kind = next((v for k, v in _CORRUPT.items() if k in text), None)
    return f"is corrupt ({kind})" if kind else None


def unreadable_commit(text: str) -> tuple[str, int, str] | None:
    """``(uri, version, problem)`` of the JSON commit a text says could not be read."""
    match = _COMMIT.search(text)
    if match is None:
        return None
    if _CHECKSUM in text:
        problem = "checksum mismatch"
    elif any(marker in text for marker in _BAD_JSON):
        problem = "truncated or invalid JSON"
    else:
        problem = "unreadable"
    return match[1], int(match[2]), problem


def commit_version(uri: str) -> int | None:
    """The version of a JSON commit's file name, or None for any other file."""
    match = _COMMIT.search(uri)
    return int(match[2]) if match else None


def root_cause(text: str) -> str | None:
    """The deepest Java cause of a Py4J error text (its last ``Caused by:``, else the Java
    exception's own line), or None for a text that is not one."""
    causes = _CAUSED_BY.findall(text)
    if causes:
        return causes[-1].strip()
    java = _JAVA_ERROR.search(text)
    return java[1].strip() if java else None
