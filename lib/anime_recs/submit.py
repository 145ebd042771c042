"""Ship the project to a cluster: build/locate the wheel and compose ``spark-submit`` lines.

Code reaches executors the standard way: the pure-Python wheel of this project goes in
``--py-files``. PySpark puts only ``.zip``/``.egg``/``.jar`` entries of ``--py-files`` on the
executors' ``sys.path`` (``SparkContext.PACKAGE_EXTENSIONS``; a ``.whl`` is copied to the
executors but never imported), so the wheel - a zip archive with the package at its root - is
shipped under a ``.zip`` name (:func:`py_files_zip`; ``make wheel`` writes both). The Delta
jars come from
``--packages`` (:data:`anime_recs.spark.DELTA_PACKAGE`, resolved by Ivy) or from the image;
native dependencies (torch, pyarrow) come from the cluster's Python environment or image.
Nothing relies on the driver's working directory being present on the executors.

Print the command for a job (``--`` separates the job's own arguments)::

    python -m anime_recs.submit --master spark://HOST:7077 jobs/pipeline.py -- \\
        --conf conf/cluster.yaml
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from anime_recs.spark import DELTA_PACKAGE, DELTA_SQL_CONF

WHEEL_GLOB = "anime_recs-*-py3-none-any.whl"


def find_wheel(dist_dir: str | Path = "dist") -> Path:
    """The newest project wheel in ``dist_dir``; FileNotFoundError says how to build one."""
    wheels = sorted(Path(dist_dir).glob(WHEEL_GLOB), key=lambda p: p.stat().st_mtime)
    if not wheels:
        raise FileNotFoundError(f"no {WHEEL_GLOB} in {dist_dir}: run `make wheel` first")
    return wheels[-1].resolve()


def py_files_zip(wheel: str | Path) -> Path:
    """The wheel under a ``.zip`` name next to it (same bytes), refreshed when the wheel is newer.

    This is what ``--py-files`` ships: executors import ``anime_recs`` from it.
    """
    wheel = Path(wheel)
    target = wheel.with_suffix(".zip")
    if not target.is_file() or target.stat().st_mtime < wheel.stat().st_mtime:
        shutil.copyfile(wheel, target)
    return target.resolve()


def build_wheel(project_dir: str | Path, out_dir: str | Path) -> Path:
    """Build the project wheel into ``out_dir`` with ``uv build`` (the venv's uv) and return it.

    Removes setuptools' ``build/lib`` of ``project_dir`` first: setuptools puts all of that
    folder into the wheel, so a module an earlier build left there (``malgen``, which no wheel
    ships, or one removed since) would ship too."""
    shutil.rmtree(Path(project_dir) / "build" / "lib", ignore_errors=True)
    uv = Path(sys.executable).with_name("uv")
    uv_cmd = str(uv) if uv.is_file() else shutil.which("uv")
    if uv_cmd is None:
        raise FileNotFoundError("uv not found next to the interpreter or on PATH")
    subprocess.run(
        [uv_cmd, "build", "--wheel", "--out-dir", str(out_dir), str(project_dir)],
        check=True,
        capture_output=True,
        text=True,
    )
    return find_wheel(out_dir)


def spark_submit_command(
    app: str | Path,
    app_args: Sequence[str] = (),
    *,
    master: str,
    py_files: str | Path,
    deploy_mode: str = "client",
    packages: Sequence[str] = (DELTA_PACKAGE,),
    conf: Mapping[str, str] | None = None,
    spark_submit: str = "spark-submit",
) -> list[str]:
    """The ``spark-submit`` argument list for ``app`` with ``py_files``, Delta and ``conf``.

    ``py_files`` is the project zip from :func:`py_files_zip` (or any .zip/.egg/.py list).
    The Delta SQL settings are included (``get_spark`` adds them too; on the command line they
    are also in place for anything that runs before the session is built).
    """
    cmd = [spark_submit, "--master", master, "--deploy-mode", deploy_mode]
    cmd += ["--py-files", str(py_files)]
    if packages:
        cmd += ["--packages", ",".join(packages)]
    for key, value in {**DELTA_SQL_CONF, **(conf or {})}.items():
        cmd += ["--conf", f"{key}={value}"]
    return [*cmd, str(app), *app_args]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the spark-submit command for a job.")
    parser.add_argument("--master", required=True, help="spark://HOST:PORT, k8s://..., yarn")
    parser.add_argument("--deploy-mode", default="client", choices=("client", "cluster"))
    parser.add_argument("--dist", default="dist", help="folder holding the wheel (make wheel)")
    parser.add_argument("--conf", dest="confs", action="append", default=[], metavar="K=V")
    parser.add_argument("app", help="job file, e.g. jobs/pipeline.py")
    parser.add_argument("app_args", nargs=argparse.REMAINDER, help="-- then the job's arguments")
    args = parser.parse_args(argv)
    app_args = args.app_args[1:] if args.app_args[:1] == ["--"] else args.app_args
    conf = dict(c.split("=", 1) for c in args.confs)
    cmd = spark_submit_command(
        args.app,
        app_args,
        master=args.master,
        py_files=py_files_zip(find_wheel(args.dist)),
        deploy_mode=args.deploy_mode,
        conf=conf,
    )
    print(shlex.join(cmd))  # noqa: T201 - the command is this tool's output
    return 0


if __name__ == "__main__":
    sys.exit(main())
