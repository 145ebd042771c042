"""What every job entry point shares: arguments, logging, config, session, step timing.

A job's ``main(argv)`` is::

    args = job_parser(__doc__).parse_args(argv)
    config = start_job("ingest", args)          # logging + config (fails fast, one line)
    spark = session(config)
    with step("read ratings"):
        ...

Fail-fast problems (bad config, missing input file or column) raise :class:`JobError` (or
``ConfigError``/``FileNotFoundError``); :func:`run_main` turns them into one line on stderr
and exit status 2, instead of a traceback. So does a Delta write conflict (another run of the
same stage committed to the table first; Delta's optimistic concurrency rejects the loser's
commit, the table stays at the winner's version), see :func:`delta_conflict`, and so does
damaged or full storage (a missing or corrupt data file, an unreadable ``_delta_log`` commit, a
table breaking its schema contract, no space left on the device), see ``anime_recs.faults``;
the full trace then goes to the log at DEBUG only.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Callable

from anime_recs import faults
from anime_recs.config import DEFAULT_CONF, AppConfig, ConfigError, load_config, masked
from anime_recs.errors import JobError
from anime_recs.progress import LOG_FORMAT
from anime_recs.steps import step

log = logging.getLogger("anime_recs")

__all__ = ["JobError", "job_parser", "run_main", "session", "setup_logging", "start_job", "step"]


def setup_logging(level: int = logging.INFO) -> None:
    """Configure the root logger once (idempotent); quiet down chatty libraries."""
    root = logging.getLogger()
    # a handler writing to a closed stream (e.g. the console handler MLflow's alembic
    # migrations install through logging.config while stderr is redirected) would print
    # "--- Logging error ---" with a traceback for every record: drop it
    root.handlers[:] = [h for h in root.handlers if not _writes_to_closed_stream(h)]
    if not any(getattr(h, "_anime_recs", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        handler._anime_recs = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("py4j", "urllib3", "httpx", "httpcore", "openai", "filelock", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _writes_to_closed_stream(handler: logging.Handler) -> bool:
    stream = getattr(handler, "stream", None)
    return bool(getattr(stream, "closed", False))


def job_parser(description: str | None) -> argparse.ArgumentParser:
    """The arguments every job takes: ``--conf PATH`` and repeated ``--set dotted.key=value``."""
    parser = argparse.ArgumentParser(
        description=(description or "").strip().splitlines()[0] if description else None
    )
    parser.add_argument(
        "--conf", default=DEFAULT_CONF, help=f"YAML config (default {DEFAULT_CONF})"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set recommend.k=5 (repeatable)",
    )
    return parser


def start_job(stage: str, args: argparse.Namespace) -> AppConfig:
    """Set up logging, load and validate the config, log it with secrets masked."""
    setup_logging()
    config = load_config(args.conf, args.overrides)
    log.info("stage %s: config %s", stage, json.dumps(masked(config.to_dict()), sort_keys=True))
    return config


def session(config: AppConfig, app_suffix: str = ""):
    """The job's SparkSession built from ``config.spark``."""
    from anime_recs.spark import get_spark

    sc = config.spark
    spark = get_spark(
        app_name=f"{sc.app_name}{'-' + app_suffix if app_suffix else ''}",
        master=sc.master,
        shuffle_partitions=sc.shuffle_partitions,
        driver_memory=sc.driver_memory,
        log_level=sc.log_level,
        arrow_batch_size=sc.arrow_batch_size,
        extra_conf=sc.extra,
    )
    faults.quiet_local_task_failures(spark, sc.log_level)
    return spark


_DELTA_CONFLICT = re.compile(
    r"io\.delta\.exceptions\.((?:Concurrent\w*|MetadataChanged|ProtocolChanged)Exception): "
    r"(?:\[\w+\] )?(?:\1: )?([^\n]*)"
)


def delta_conflict(exc: BaseException) -> str | None:
    """One line for a Delta concurrent-writer conflict (``io.delta.exceptions.Concurrent*``,
    ``MetadataChanged``, ``ProtocolChanged``, raised through Py4J), else None."""
    match = _DELTA_CONFLICT.search(str(exc))
    if match is None:
        return None
    return (
        f"Delta write conflict: a concurrent run committed to the same table first, this "
        f"write was not committed (rerun the stage): {match[1]}: {match[2].strip()}"
    )


def run_main(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> None:
    """Run a job's ``main`` and exit; expected failures become one line and exit status 2."""
    try:
        code = main(argv)
    except (ConfigError, JobError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201 - the one-line contract
        sys.exit(2)
    except Exception as exc:
        line = delta_conflict(exc) or faults.diagnose(exc)
        if line is None:
            raise
        log.debug("the full trace of: %s", line, exc_info=exc)
        print(f"error: {line}", file=sys.stderr)  # noqa: T201 - the one-line contract
        sys.exit(2)
    sys.exit(code or 0)
