"""What every job entry point shares: arguments, logging, config, session, running stages.

A stage job's ``main(argv)`` is ``return run_job("<job>", argv, __doc__)``: the registry
(:mod:`anime_recs.stages`) says which stages the job runs and which flags it takes, and the
runner (:mod:`anime_recs.pipeline`) fingerprints, skips or runs and records each of them, as
``jobs/pipeline.py`` does. Other jobs (``lookup``, ``check``) wire the same pieces::

    args = job_parser(__doc__).parse_args(argv)
    config = start_job("lookup", args)          # logging + config (fails fast, one line)
    spark = session(config, args.log_level)

Every job takes ``--log-level`` (default: ``$ANIME_RECS_LOG_LEVEL``, else INFO): at INFO a job
prints its progress and result; the config, the session's start and Spark's warnings go to
DEBUG (the JVM's levels follow, ``anime_recs.spark``).

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
import os
import sys
from collections.abc import Callable

from pyspark.sql import SparkSession

from anime_recs import faults, pipeline, stages
from anime_recs.config import DEFAULT_CONF, AppConfig, ConfigError, load_config, masked
from anime_recs.error_text import read_error
from anime_recs.errors import JobError
from anime_recs.progress import LOG_FORMAT
from anime_recs.recommend.registry import check_config as check_recommenders
from anime_recs.steps import step

log = logging.getLogger("anime_recs")

__all__ = [
    "JobError",
    "job_parser",
    "run_job",
    "run_main",
    "session",
    "setup_logging",
    "start_job",
    "step",
]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_LEVEL_ENV = "ANIME_RECS_LOG_LEVEL"


def default_log_level() -> str:
    """``$ANIME_RECS_LOG_LEVEL`` (upper-cased), else INFO."""
    return os.environ.get(LOG_LEVEL_ENV, "").upper() or "INFO"


def setup_logging(level: int | str = logging.INFO) -> None:
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
    """The arguments every job takes: ``--conf PATH``, repeated ``--set dotted.key=value`` and
    ``--log-level``."""
    parser = argparse.ArgumentParser(
        description=(description or "").strip().splitlines()[0] if description else None
    )
    default = default_log_level()
    if default not in LOG_LEVELS:
        raise ConfigError(f"{LOG_LEVEL_ENV}: must be one of {LOG_LEVELS}, got {default!r}")
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        default=default,
        help=f"DEBUG also shows the config, Spark's warnings and full traces (default "
        f"${LOG_LEVEL_ENV}, else INFO: progress and result)",
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


def start_job(job: str, args: argparse.Namespace) -> AppConfig:
    """Set up logging at ``args.log_level``, load and validate the config (its recommender
    names against :mod:`anime_recs.recommend.registry`), log it (secrets masked) at DEBUG."""
    setup_logging(args.log_level)
    config = load_config(args.conf, args.overrides)
    check_recommenders(config)
    log.debug("job %s: config %s", job, json.dumps(masked(config.to_dict()), sort_keys=True))
    return config


def session(config: AppConfig, log_level: str, app_suffix: str = "") -> SparkSession:
    """The job's SparkSession built from ``config.spark``, Spark's logging at ``log_level``."""
    from anime_recs.spark import get_spark

    return get_spark(config.spark, log_level, app_suffix)


def run_job(job: str, argv: list[str] | None, description: str | None) -> int:
    """``jobs/<job>.py``: run the job's stages of the registry (the enabled ones, in order)
    through the runner, each fingerprinted, skipped when unchanged and recorded in
    ``pipeline_runs`` like a pipeline stage."""
    declared = stages.of_job(job)
    if not declared:
        raise ValueError(f"no stage of the registry runs in job {job!r}")
    parser = job_parser(description)
    parser.add_argument("--force", action="store_true", help="run even if unchanged")
    options = {o.flag: o for stage in declared for o in stage.options}
    for option in options.values():
        parser.add_argument(option.flag, metavar=option.metavar, help=option.help)
    args = parser.parse_args(argv)
    for option in options.values():
        value = getattr(args, option.flag.lstrip("-").replace("-", "_"))
        if value is not None:  # a JSON string is a YAML string: never read as a number
            args.overrides.append(f"{option.key}={json.dumps(value)}")
    config = start_job(job, args)
    planned = [stage for stage in declared if stage.enabled(config)]
    if not planned:
        names = [stage.name for stage in declared]
        raise JobError(f"jobs/{job}.py: nothing to do for this config (stages {names})")
    for stage in planned:
        if stage.precheck is not None:  # before paying for the JVM
            stage.precheck(config)
    spark = session(config, args.log_level, job)
    pipeline.run_stages(spark, config, planned, args.force)
    return 0


def delta_conflict(exc: BaseException) -> str | None:
    """One line for a Delta concurrent-writer conflict (``io.delta.exceptions.Concurrent*``,
    ``MetadataChanged``, ``ProtocolChanged``, raised through Py4J), else None."""
    conflict = read_error(exc).conflict
    if conflict is None:
        return None
    return (
        f"Delta write conflict: a concurrent run committed to the same table first, this "
        f"write was not committed (rerun the stage): {conflict[0]}: {conflict[1]}"
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
