"""``jobs/<name>.py`` as a module, for the tests and benchmarks that call a job's ``main``.

Jobs are entry-point scripts, not a package, so they are loaded by path. This is the one place
that does it for tests and benchmarks.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[1]
JOBS_DIR = REPO_ROOT / "jobs"


def load_job(name: str) -> ModuleType:
    """A freshly executed module of ``jobs/<name>.py``, registered in :data:`sys.modules` as
    ``job_<name>`` (dataclasses in a job resolve their annotations through that entry)."""
    path = JOBS_DIR / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no job {name!r}: {path} does not exist")
    module_name = f"job_{name}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
