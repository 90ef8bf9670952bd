"""The job versions of the repository: ``glue_jobs/<job>/v<N>/job.py``. The CLI runs them,
the template generator and the packager turn each into a Glue job and a script."""

from __future__ import annotations

import importlib
import re
from importlib import resources
from pathlib import Path
from types import ModuleType

from lib.errors import LakeError

_VERSION_DIR = re.compile(r"^v(\d+)$")


class UnknownJobError(LakeError):
    """No such job, or no such version of it, in ``glue_jobs/``."""

    default_code = "job.unknown"


def job_versions(root: Path | None = None) -> dict[str, tuple[int, ...]]:
    """Jobs in ``glue_jobs/`` (or ``root``): name -> sorted versions."""
    out: dict[str, tuple[int, ...]] = {}
    for job_dir in (root or resources.files("glue_jobs")).iterdir():
        if not job_dir.is_dir() or job_dir.name.startswith(("_", ".")):
            continue
        versions = sorted(
            int(m.group(1)) for d in job_dir.iterdir()
            if d.is_dir() and (m := _VERSION_DIR.match(d.name)) and (d / "job.py").is_file()
        )
        if versions:
            out[job_dir.name] = tuple(versions)
    return out


def resolve_job(name: str, version: int | None) -> tuple[int, ModuleType]:
    """The version (default: the latest) and the entry module of job ``name``."""
    jobs = job_versions()
    if name not in jobs:
        raise UnknownJobError(f"unknown job {name!r}; known jobs: "
                              f"{', '.join(sorted(jobs)) or '(none)'}")
    if version is None:
        version = jobs[name][-1]
    elif version not in jobs[name]:
        raise UnknownJobError(f"job {name!r} has no version {version}; versions: "
                              f"{', '.join(map(str, jobs[name]))}")
    return version, importlib.import_module(f"glue_jobs.{name}.v{version}.job")
