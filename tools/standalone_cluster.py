"""A real Spark standalone cluster on 127.0.0.1 and a spark-submit runner (tests/cluster uses it).

The daemons come from the pinned pyspark distribution (``SPARK_HOME`` = the pyspark package,
``bin/spark-class``; the pip package has no ``sbin/start-master.sh``), each in its own process
group with its log in a temp folder. :meth:`StandaloneCluster.stop` kills every process group
(it is also registered with ``atexit`` in case the calling process dies).
"""

from __future__ import annotations

import atexit
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pyspark

from anime_recs.submit import spark_submit_command

REPO_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
SPARK_HOME = Path(pyspark.__file__).resolve().parent
WORKER_CORES = 1
WORKER_MEMORY = "2g"
STARTUP_TIMEOUT_S = 120


class SubmitFailed(RuntimeError):
    """A spark-submit run that exited non-zero or timed out (the message holds the log's tail)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def java_home() -> str | None:
    if os.environ.get("JAVA_HOME"):
        return os.environ["JAVA_HOME"]
    java = shutil.which("java")
    return str(Path(java).resolve().parents[1]) if java else None


def cluster_env(conf_dir: Path) -> dict[str, str]:
    """Environment for the daemons and spark-submit: loopback only, the venv's Python."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK_GATEWAY", "SPARK_"))}
    env.update(
        SPARK_HOME=str(SPARK_HOME),
        SPARK_CONF_DIR=str(conf_dir),  # empty: no stray spark-defaults/log4j from the machine
        SPARK_LOCAL_IP="127.0.0.1",
        SPARK_DAEMON_MEMORY="256m",
        PYSPARK_PYTHON=sys.executable,
        PYSPARK_DRIVER_PYTHON=sys.executable,
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    home = java_home()
    if home:
        env["JAVA_HOME"] = home
    return env


def die_with_parent() -> None:
    """``preexec_fn``: the daemon gets SIGKILL if its parent dies without running its teardown
    (Linux ``PR_SET_PDEATHSIG``; survives the ``exec`` of java by ``spark-class``)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def kill_group(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Signal ``proc``'s whole process group (the daemon, its executors and Python workers)."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


@dataclass
class Daemon:
    name: str
    proc: subprocess.Popen
    log: Path
    webui_port: int
    killed: bool = False  # set by kill_worker: its exit is expected


@dataclass
class StandaloneCluster:
    """Master + workers started with ``spark-class``; ``stop()`` is safe to call repeatedly."""

    root: Path
    master_port: int = field(default_factory=free_port)
    webui_port: int = field(default_factory=free_port)
    master: Daemon | None = None
    workers: list[Daemon] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.conf_dir = self.root / "conf"
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        self.env = cluster_env(self.conf_dir)

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.master_port}"

    def _spawn(self, name: str, args: list[str], webui_port: int) -> Daemon:
        log = self.root / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [str(SPARK_HOME / "bin" / "spark-class"), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.root,
                start_new_session=True,  # own process group: killpg takes its children too
                preexec_fn=die_with_parent,
            )
        return Daemon(name, proc, log, webui_port)

    def start(self, n_workers: int = 2) -> StandaloneCluster:
        atexit.register(self.stop)
        self.master = self._spawn(
            "master",
            [
                "org.apache.spark.deploy.master.Master",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.master_port),
                "--webui-port",
                str(self.webui_port),
            ],
            self.webui_port,
        )
        self._wait(lambda s: s is not None, "master web UI")
        for _ in range(n_workers):
            self.start_worker()
        self.wait_workers(n_workers)
        return self

    def start_worker(self) -> Daemon:
        index = len(self.workers)
        work_dir = self.root / f"worker{index}"
        work_dir.mkdir(exist_ok=True)
        port = free_port()
        worker = self._spawn(
            f"worker{index}",
            [
                "org.apache.spark.deploy.worker.Worker",
                "--host",
                "127.0.0.1",
                "--cores",
                str(WORKER_CORES),
                "--memory",
                WORKER_MEMORY,
                "--webui-port",
                str(port),
                "--work-dir",
                str(work_dir),
                self.url,
            ],
            port,
        )
        self.workers.append(worker)
        return worker

    def ensure_workers(self, n: int) -> None:
        """Start replacement workers until ``n`` are alive (after a test killed one)."""
        running = [w for w in self.workers if w.proc.poll() is None]
        for _ in range(n - len(running)):
            self.start_worker()
        self.wait_workers(n)

    def state(self) -> dict | None:
        """The master's JSON status (workers, apps), or None while it is not up."""
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.webui_port}/json/", timeout=5
            ) as r:
                return json.load(r)
        except OSError:
            return None

    def alive_workers(self) -> int:
        state = self.state() or {}
        return sum(1 for w in state.get("workers", []) if w.get("state") == "ALIVE")

    def wait_workers(self, n: int) -> None:
        self._wait(lambda s: s is not None and self.alive_workers() == n, f"{n} alive workers")

    def _wait(self, ready, what: str) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            for d in [self.master, *self.workers]:
                if d is not None and not d.killed and d.proc.poll() is not None:
                    raise RuntimeError(f"{d.name} exited: {d.log.read_text()[-3000:]}")
            if ready(self.state()):
                return
            time.sleep(0.5)
        raise TimeoutError(f"standalone cluster: no {what} after {STARTUP_TIMEOUT_S}s")

    def kill_worker(self, index: int) -> Daemon:
        """SIGKILL a worker's process group (the worker, its executor JVM and Python workers)."""
        worker = self.workers[index]
        worker.killed = True
        kill_group(worker.proc, signal.SIGKILL)
        worker.proc.wait(timeout=30)
        return worker

    def stop(self) -> None:
        daemons = [d for d in [*self.workers, self.master] if d is not None]
        for d in daemons:
            if d.proc.poll() is None:
                kill_group(d.proc, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for d in daemons:
            try:
                d.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            kill_group(d.proc, signal.SIGKILL)  # also any executor left in the group
            try:
                d.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


@dataclass
class Submit:
    """Runs ``spark-submit`` against the cluster from a folder that is NOT the repository."""

    cluster: StandaloneCluster
    py_files: Path
    cwd: Path
    event_dir: Path

    def command(self, app: Path, app_args: list[str], conf: dict[str, str] | None = None):
        base_conf = {
            "spark.executor.memory": "1g",
            "spark.executor.cores": "1",
            "spark.driver.memory": "1g",
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.pyspark.python": sys.executable,
            "spark.pyspark.driver.python": sys.executable,
            "spark.task.maxFailures": "4",
            # tiny data on a shared 2-core machine: few partitions everywhere
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
            "spark.databricks.delta.snapshotPartitions": "2",
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            # wait for both executors before the first task (standalone default ratio: 0)
            "spark.scheduler.minRegisteredResourcesRatio": "1.0",
            "spark.scheduler.maxRegisteredResourcesWaitingTime": "60s",
            # plain JSON-lines event log, read back by the tests (Spark 4: rolling + zstd)
            "spark.eventLog.enabled": "true",
            "spark.eventLog.rolling.enabled": "false",
            "spark.eventLog.compress": "false",
            "spark.eventLog.dir": self.event_dir.as_uri(),
        }
        return spark_submit_command(
            app,
            app_args,
            master=self.cluster.url,
            py_files=self.py_files,
            conf={**base_conf, **(conf or {})},
            spark_submit=str(VENV_BIN / "spark-submit"),
        )

    def start(self, app: Path, app_args: list[str], log: Path, conf=None) -> subprocess.Popen:
        with open(log, "wb") as out:
            return subprocess.Popen(
                self.command(app, app_args, conf),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.cluster.env,
                cwd=self.cwd,
                start_new_session=True,
            )

    def run(self, app: Path, app_args: list[str], log: Path, conf=None, timeout: float = 600):
        """Run to completion and return the log; on failure or timeout raise
        :class:`SubmitFailed` with the log's tail."""
        proc = self.start(app, app_args, log, conf)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            proc.wait()
            raise SubmitFailed(f"spark-submit timed out after {timeout}s:\n{tail(log)}") from None
        if code != 0:
            raise SubmitFailed(f"spark-submit exited {code}:\n{tail(log)}")
        return log.read_text()

    def events(self) -> list[dict]:
        """Every event of every application's event log (JSON lines)."""
        out = []
        for path in sorted(self.event_dir.iterdir()):
            for line in path.read_text().splitlines():
                if line.strip():
                    out.append(json.loads(line))
        return out


def tail(path: Path, chars: int = 6000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


def make_submit(cluster: StandaloneCluster, py_files: Path, root: Path) -> Submit:
    """A :class:`Submit` whose driver cwd and event log folder are fresh folders under root."""
    cluster.ensure_workers(2)  # a previous test may have killed one
    cwd = root / "driver-cwd"
    cwd.mkdir()
    events = root / "events"
    events.mkdir()
    return Submit(cluster, py_files, cwd, events)
