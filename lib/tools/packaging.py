"""``lake package``: the artifacts a deployment uploads, laid out under their S3 keys.

    <dist>/lib/<release>/lib.zip          the ``lib`` package for ``--extra-py-files``, and
                                          the code of the upload Lambdas (without
                                          ``lib/tools/``, the developer tooling)
    <dist>/lib/<release>/lake-spark.jar   the lake's commit protocol for ``--extra-jars``,
                                          compiled from ``jvm/`` (a JDK 17's javac)
    <dist>/lib/<release>/lambda-deps.zip  the upload Lambdas' layer: the lib's third-party
                                          packages they import (PyYAML) at
                                          requirements.lock's pins, built for Lambda's
                                          python3.11 on x86_64
    <dist>/lib/<release>/fast-lane-deps.zip  the fast-lane Lambdas' layer: DuckDB, Arrow,
                                          NumPy, sqlglot, PyYAML, Jinja2, MarkupSafe at the
                                          same pins, for python3.12 on x86_64 (trimmed to
                                          stay under Lambda's 250 MB unzipped)
    <dist>/jobs/<job>/v<N>/job.py         each job version's Glue script
    <dist>/jobs/<job>/v<N>/contract.yaml  the contract that version runs (also inside lib.zip)
    <dist>/releases/<release>.json        the manifest: release, keys and SHA-256 of each file

The zips are reproducible (sorted members, fixed timestamps and modes), so the release id
``<version>-<sha256[:12]>`` changes exactly when a packaged byte (or a layer pin) changes.
A layer is built with pip from the package index once per set of pins and cached in
``.cache/lambda-deps/``; the manifest records each layer's unzipped size. A job script
imports ``lib`` from the zip Glue puts on ``sys.path``, never from the repo.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from lib.errors import LakeError
from lib.jobs.jars import PROTOCOL_JAR
from lib.tools.infra import (
    FAST_LANE_LAYER_ARTIFACT,
    FAST_LANE_RUNTIME,
    GLUE_VERSION,
    LIB_ARTIFACT,
    REPO_ROOT,
    JobVersion,
    project_metadata,
)
from lib.tools.jars import protocol_jar_bytes
from lib.tools.job_versions import job_versions
from lib.tools.zips import ZIP_EPOCH, zip_tree

_LIB_SUFFIXES = (".py", ".yaml", ".properties", ".j2")
# Folders of lib/ that stay out of lib.zip: the developer tooling.
NOT_SHIPPED = ("tools",)
LAMBDA_DEPS_ARTIFACT = "lambda-deps.zip"
# Lambda's limit on a function's code and its layers, unzipped.
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024


@dataclass(frozen=True)
class Layer:
    """A Lambda layer of third-party packages at requirements.lock's pins, built for one
    runtime's CPython on x86_64 Linux, whatever machine builds it."""

    artifact: str
    packages: tuple[str, ...]
    python: str
    platforms: tuple[str, ...]
    trim: tuple[str, ...] = ()  # globs (under python/) of files no lib import reaches

    @property
    def pip_args(self) -> list[str]:
        return [*(a for p in self.platforms for a in ("--platform", p)), "--implementation",
                "cp", "--python-version", self.python, "--only-binary=:all:"]


# The upload Lambdas (python3.11): what the upload checks import beyond the runtime's boto3
# (they are plain Python: no pandas, no DuckDB).
UPLOAD_LAYER = Layer(LAMBDA_DEPS_ARTIFACT, ("PyYAML",), "3.11", ("manylinux2014_x86_64",))
# The fast-lane Lambdas (python3.12, Amazon Linux 2023: the pinned DuckDB's wheel needs
# glibc 2.27, which python3.11's Amazon Linux 2 lacks): the DuckDB engine and the run.
# Arrow's C++ headers and sources, its Flight and Substrait libraries (which nothing in the
# lib loads: `import pyarrow` and `pyarrow.parquet` do not need them) and the packages'
# tests stay out, which keeps the function under Lambda's 250 MB.
FAST_LANE_LAYER = Layer(
    FAST_LANE_LAYER_ARTIFACT,
    ("duckdb", "pyarrow", "numpy", "sqlglot", "PyYAML", "Jinja2", "MarkupSafe"),
    FAST_LANE_RUNTIME.removeprefix("python"),
    ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux2014_x86_64"),
    trim=("pyarrow/include/*", "pyarrow/src/*", "*.pyx", "*.pxd", "*.pxi",
          "pyarrow/*flight*", "pyarrow/*substrait*", "_duckdb-stubs/*"))
LAYERS = (UPLOAD_LAYER, FAST_LANE_LAYER)


log = logging.getLogger("lake.package")


class PackageError(LakeError):
    """The artifacts cannot be built."""

    default_code = "package.error"


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


def shipped(path: Path, lib_dir: Path) -> bool:
    """Whether a file of the ``lib`` folder goes into ``lib.zip``: code, contracts and
    configuration, but not the developer tooling (``lib/tools/``)."""
    rel = path.relative_to(lib_dir)
    return (path.suffix in _LIB_SUFFIXES and "__pycache__" not in rel.parts
            and rel.parts[0] not in NOT_SHIPPED)


def lib_zip_bytes(lib_dir: Path) -> bytes:
    """The ``lib`` package as a reproducible zip (``lib/...`` members), without the
    developer tooling."""
    files = sorted(p for p in lib_dir.rglob("*") if p.is_file() and shipped(p, lib_dir))
    if not (lib_dir / "__init__.py").is_file():
        raise PackageError(f"{lib_dir} is not a Python package (no __init__.py)")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in files:
            info = zipfile.ZipInfo(f"lib/{path.relative_to(lib_dir).as_posix()}", ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    return buf.getvalue()


def lambda_pins(repo: Path = REPO_ROOT, layer: Layer = UPLOAD_LAYER) -> list[str]:
    """``name==version`` of each of ``layer``'s packages, from requirements.lock."""
    lock = repo / "requirements.lock"
    pins = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        name, sep, version = line.partition("==")
        if sep:
            pins[name.strip().lower()] = f"{name.strip()}=={version.strip()}"
    missing = [p for p in layer.packages if p.lower() not in pins]
    if missing:
        raise PackageError(f"{lock} pins none of {', '.join(missing)}; run `make lock`")
    return [pins[p.lower()] for p in layer.packages]


def lambda_deps_zip(pins: list[str], cache: Path, layer: Layer = UPLOAD_LAYER) -> bytes:
    """The layer zip (``python/...``) of ``pins`` for ``layer``'s runtime; built with pip the
    first time, then read from ``cache``."""
    python = find_python(layer.python)
    compiled = f"bytecode of {python_version(python)}" if python else "no bytecode"
    key = _sha256("\n".join([*pins, *layer.pip_args, *layer.trim, compiled]).encode())[:16]
    cached = cache / f"{key}.zip"
    if cached.is_file():
        return cached.read_bytes()
    if python is None:
        log.warning("no CPython %s here ($LAKE_PYTHON%s, pyenv or PATH): %s is built without "
                    "bytecode, so each cold start of its functions compiles it (about 1.3 s "
                    "more for the fast lane's)", layer.python, layer.python.replace(".", ""),
                    layer.artifact)
    with tempfile.TemporaryDirectory(prefix="lambda-deps-") as tmp:
        target = Path(tmp) / "python"
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "--no-deps", "--no-compile", "--target", str(target), *layer.pip_args, *pins]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise PackageError(f"could not fetch the Lambda layer's packages ({' '.join(pins)}) "
                               f"from the package index:\n{out.stderr.strip()[-2000:]}")
        # Console scripts carry this interpreter's path in their shebang (and so in the
        # hashes of RECORD): leave them out, so the layer is the same bytes on any machine.
        shutil.rmtree(target / "bin", ignore_errors=True)
        trimmed = _trim(target, layer.trim)
        for record in target.glob("*.dist-info/RECORD"):
            lines = record.read_text(encoding="utf-8").splitlines(keepends=True)
            record.write_text("".join(ln for ln in lines if not ln.startswith(("../", "bin/"))
                                      and ln.split(",", 1)[0] not in trimmed),
                              encoding="utf-8")
        for tests in [p for p in target.rglob("tests") if p.is_dir()]:
            shutil.rmtree(tests, ignore_errors=True)
        if python is not None:
            # Bytecode for the runtime's Python, as the layer sits at /opt/python: a cold
            # start imports it instead of compiling (layers are read-only). unchecked-hash
            # pyc files hold no timestamp: the same sources give the same bytes.
            out = subprocess.run([python, "-m", "compileall", "-q", "-j", "0",
                                  "--invalidation-mode", "unchecked-hash", "-s", str(tmp),
                                  "-p", "/opt", str(target)],
                                 capture_output=True, text=True, check=False)
            if out.returncode != 0:
                raise PackageError(f"could not compile {layer.artifact} with {python}:\n"
                                   f"{(out.stdout + out.stderr).strip()[-2000:]}")
        data = zip_tree(target, "python/",
                        skip=("tests",) if python is not None else ("tests", "__pycache__"))
    cache.mkdir(parents=True, exist_ok=True)
    tmp_file = cached.with_suffix(".partial")
    tmp_file.write_bytes(data)
    tmp_file.replace(cached)
    return data


def python_version(python: str) -> str:
    """``cpython-3.12.1`` of an interpreter."""
    out = subprocess.run([python, "-c", "import sys, platform; print(platform."
                          "python_implementation().lower() + '-' + platform.python_version())"],
                         capture_output=True, text=True, check=False)
    return out.stdout.strip()


def find_python(version: str) -> str | None:
    """An interpreter of CPython ``version`` (``3.12``): this one, ``$LAKE_PYTHON312``, one
    under pyenv, or ``python3.12`` on PATH; the first that runs and is that version."""
    env = os.environ.get(f"LAKE_PYTHON{version.replace('.', '')}")
    candidates = [sys.executable, env,
                  *map(str, sorted(Path.home().glob(f".pyenv/versions/{version}.*/bin/"
                                                    f"python{version}"))),
                  shutil.which(f"python{version}")]
    for python in dict.fromkeys(filter(None, candidates)):
        if python_version(python).startswith(f"cpython-{version}."):
            return python
    return None


def _trim(target: Path, patterns: tuple[str, ...]) -> set[str]:
    """Remove the files under ``target`` matching ``patterns``; their relative paths."""
    gone = set()
    for path in sorted(p for p in target.rglob("*") if p.is_file()):
        rel = path.relative_to(target).as_posix()
        if any(fnmatch.fnmatchcase(rel, pat) for pat in patterns):
            path.unlink()
            gone.add(rel)
    return gone


def unzipped_size(data: bytes) -> int:
    """The bytes a zip's members take once extracted."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return sum(i.file_size for i in zf.infolist())


def build(dist: Path, repo: Path = REPO_ROOT, *, lambda_deps: bool = True,
          cache: Path | None = None) -> Package:
    """Write the artifacts of every job version into ``dist`` (emptied first); with
    ``lambda_deps`` also the upload Lambdas' layer (``.cache/lambda-deps`` unless ``cache``)."""
    jobs = tuple(JobVersion(ds, v) for ds, versions in sorted(job_versions(repo / "glue_jobs").items())
                 for v in versions)
    files: dict[str, tuple[bytes, str]] = {}
    lib_zip = lib_zip_bytes(repo / "lib")
    jar = protocol_jar_bytes(repo / "jvm")
    for job in jobs:
        script = repo / "glue_jobs" / job.dataset / f"v{job.version}" / "job.py"
        contract = repo / "lib" / "contracts" / job.dataset / f"v{job.version}.yaml"
        if not contract.is_file():
            raise PackageError(f"job {job.dataset} v{job.version} has no contract {contract}")
        files[job.script_key] = (script.read_bytes(), "text/x-python")
        files[f"{job.key_prefix}/contract.yaml"] = (contract.read_bytes(), "application/yaml")

    pins = {layer.artifact: lambda_pins(repo, layer) for layer in LAYERS}
    digest = hashlib.sha256(lib_zip)
    digest.update(jar)
    for layer in LAYERS:
        digest.update("\n".join([*pins[layer.artifact], *layer.pip_args, *layer.trim]).encode())
    for key in sorted(files):
        digest.update(key.encode() + b"\0" + files[key][0])
    release = f"{project_metadata(repo)['version']}-{digest.hexdigest()[:12]}"
    files[f"lib/{release}/{LIB_ARTIFACT}"] = (lib_zip, "application/zip")
    files[f"lib/{release}/{PROTOCOL_JAR}"] = (jar, "application/java-archive")
    layers: dict[str, dict] = {}
    if lambda_deps:
        lib_size = unzipped_size(lib_zip)
        for layer in LAYERS:
            data = lambda_deps_zip(pins[layer.artifact], cache or repo / ".cache" / "lambda-deps",
                                   layer)
            size = unzipped_size(data)
            if lib_size + size > LAMBDA_UNZIPPED_LIMIT:
                raise PackageError(
                    f"{layer.artifact} ({size / 2**20:.1f} MB unzipped) and lib.zip "
                    f"({lib_size / 2**20:.1f} MB) pass Lambda's limit of "
                    f"{LAMBDA_UNZIPPED_LIMIT / 2**20:.0f} MB for a function and its layers")
            files[f"lib/{release}/{layer.artifact}"] = (data, "application/zip")
            layers[layer.artifact] = {"python": layer.python, "packages": pins[layer.artifact],
                                      "unzipped_bytes": size,
                                      "with_lib_unzipped_bytes": size + lib_size}
    manifest = {
        "release": release,
        "glue_version": GLUE_VERSION,
        "lib": f"lib/{release}/{LIB_ARTIFACT}",
        "jars": [f"lib/{release}/{PROTOCOL_JAR}"],
        "lambda_layer_packages": pins[LAMBDA_DEPS_ARTIFACT],
        "lambda_layers": layers,
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
