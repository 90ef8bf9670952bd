"""``lake package``: the artifacts a deployment uploads, laid out under their S3 keys.

    <dist>/lib/<release>/lib.zip          the ``lib`` package for ``--extra-py-files``
    <dist>/jobs/<job>/v<N>/job.py         each job version's Glue script
    <dist>/jobs/<job>/v<N>/contract.yaml  the contract that version runs (also inside lib.zip)
    <dist>/releases/<release>.json        the manifest: release, keys and SHA-256 of each file

The zip is reproducible (sorted members, fixed timestamps and modes), so the release id
``<version>-<sha256[:12]>`` changes exactly when a packaged byte changes. A job script
imports ``lib`` from the zip Glue puts on ``sys.path``, never from the repo.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from lib.infra import GLUE_VERSION, LIB_ARTIFACT, REPO_ROOT, JobVersion, project_metadata

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_LIB_SUFFIXES = (".py", ".yaml", ".properties")


class PackageError(RuntimeError):
    pass


@dataclass(frozen=True)
class Artifact:
    key: str  # S3 key under the artifacts bucket; also the path under the dist folder
    path: Path
    sha256: str
    content_type: str


@dataclass(frozen=True)
class Package:
    release: str
    dist: Path
    artifacts: tuple[Artifact, ...]
    jobs: tuple[JobVersion, ...]

    @property
    def lib_key(self) -> str:
        return f"lib/{self.release}/{LIB_ARTIFACT}"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def lib_zip_bytes(lib_dir: Path) -> bytes:
    """The ``lib`` package as a reproducible zip (``lib/...`` members)."""
    files = sorted(p for p in lib_dir.rglob("*")
                   if p.is_file() and p.suffix in _LIB_SUFFIXES and "__pycache__" not in p.parts)
    if not (lib_dir / "__init__.py").is_file():
        raise PackageError(f"{lib_dir} is not a Python package (no __init__.py)")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in files:
            info = zipfile.ZipInfo(f"lib/{path.relative_to(lib_dir).as_posix()}", _ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    return buf.getvalue()


def build(dist: Path, repo: Path = REPO_ROOT) -> Package:
    """Write the artifacts of every job version into ``dist`` (emptied first)."""
    from lib.cli import job_versions

    jobs = tuple(JobVersion(ds, v) for ds, versions in sorted(job_versions(repo / "glue_jobs").items())
                 for v in versions)
    files: dict[str, tuple[bytes, str]] = {}
    lib_zip = lib_zip_bytes(repo / "lib")
    for job in jobs:
        script = repo / "glue_jobs" / job.dataset / f"v{job.version}" / "job.py"
        contract = repo / "lib" / "contracts" / job.dataset / f"v{job.version}.yaml"
        if not contract.is_file():
            raise PackageError(f"job {job.dataset} v{job.version} has no contract {contract}")
        files[job.script_key] = (script.read_bytes(), "text/x-python")
        files[f"{job.key_prefix}/contract.yaml"] = (contract.read_bytes(), "application/yaml")

    digest = hashlib.sha256(lib_zip)
    for key in sorted(files):
        digest.update(key.encode() + b"\0" + files[key][0])
    release = f"{project_metadata(repo)['version']}-{digest.hexdigest()[:12]}"
    files[f"lib/{release}/{LIB_ARTIFACT}"] = (lib_zip, "application/zip")
    manifest = {
        "release": release,
        "glue_version": GLUE_VERSION,
        "lib": f"lib/{release}/{LIB_ARTIFACT}",
        "jobs": {f"{j.dataset}/v{j.version}": j.script_key for j in jobs},
        "files": {key: _sha256(data) for key, (data, _) in sorted(files.items())},
    }
    files[f"releases/{release}.json"] = (
        (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode(), "application/json")

    if dist.exists():
        shutil.rmtree(dist)
    artifacts = []
    for key, (data, ctype) in sorted(files.items()):
        path = dist.joinpath(*key.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        artifacts.append(Artifact(key, path, _sha256(data), ctype))
    return Package(release, dist, tuple(artifacts), jobs)
