"""`lake package`: a reproducible lib artifact, job scripts and contracts under versioned
keys, and a packaged job that runs with nothing from the repo."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from lib.ledger.sqlite import open_ledger
from lib.tools.cli import main
from lib.tools.job_versions import job_versions
from lib.tools.packaging import PackageError, build, find_python, lambda_pins
from tests.helpers import REPO


def copy_repo(dest: Path) -> Path:
    """The parts of the repo a package is built from."""
    for part in ("lib", "glue_jobs", "jvm"):
        shutil.copytree(REPO / part, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "requirements.lock"):
        shutil.copy(REPO / name, dest / name)
    return dest


@pytest.fixture(scope="module")
def layer_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("layer-cache")


@pytest.fixture(scope="module")
def package(tmp_path_factory, layer_cache):
    return build(tmp_path_factory.mktemp("dist") / "dist", cache=layer_cache)


def test_artifacts_are_laid_out_under_versioned_keys(package) -> None:
    keys = [a.key for a in package.artifacts]
    expected = sorted(
        [f"jobs/{ds}/v{v}/{f}" for ds, versions in job_versions().items() for v in versions
         for f in ("contract.yaml", "job.py")]
        + [f"lib/{package.release}/lib.zip", f"lib/{package.release}/lambda-deps.zip",
           f"lib/{package.release}/fast-lane-deps.zip",
           f"lib/{package.release}/lake-spark.jar", f"releases/{package.release}.json"])
    assert keys == expected
    for art in package.artifacts:
        assert art.path == package.dist.joinpath(*art.key.split("/"))
        assert hashlib.sha256(art.path.read_bytes()).hexdigest() == art.sha256
    assert (package.dist / "jobs/orders/v2/job.py").read_bytes() == \
        (REPO / "glue_jobs/orders/v2/job.py").read_bytes()
    assert (package.dist / "jobs/orders/v2/contract.yaml").read_bytes() == \
        (REPO / "lib/contracts/orders/v2.yaml").read_bytes()


def test_lib_zip_holds_every_shipped_file_and_none_of_the_tooling(package) -> None:
    with zipfile.ZipFile(package.dist / package.lib_key) as zf:
        members = zf.namelist()
    lib_dir = REPO / "lib"
    shipped = sorted(
        f"lib/{p.relative_to(lib_dir).as_posix()}" for p in lib_dir.rglob("*")
        if p.is_file() and p.suffix in (".py", ".yaml", ".properties", ".j2")
        and "__pycache__" not in p.parts and p.relative_to(lib_dir).parts[0] != "tools")
    assert [m for m in members if m.startswith("lib/tools/")] == []
    assert members == shipped
    assert {"lib/jobs/run.py", "lib/lambdas/validator.py", "lib/upload/checks.py",
            "lib/jobs/templates/run_report.html.j2"} <= set(members)


def test_manifest_names_the_release_the_jobs_and_every_file_hash(package) -> None:
    manifest = json.loads((package.dist / f"releases/{package.release}.json").read_text())
    assert manifest["release"] == package.release
    assert manifest["glue_version"] == "5.0"
    assert manifest["lib"] == f"lib/{package.release}/lib.zip"
    assert manifest["jars"] == [f"lib/{package.release}/lake-spark.jar"]
    assert manifest["jobs"]["orders/v2"] == "jobs/orders/v2/job.py"
    assert manifest["lambda_layer_packages"] == lambda_pins() == ["PyYAML==6.0.3"]
    assert manifest["lambda_layers"]["fast-lane-deps.zip"]["packages"] == [
        "duckdb==2.0.0", "pyarrow==16.1.0", "numpy==1.26.4", "sqlglot==30.30.0",
        "PyYAML==6.0.3", "Jinja2==3.1.6", "MarkupSafe==3.0.4"]
    assert manifest["files"] == {a.key: a.sha256 for a in package.artifacts
                                 if not a.key.startswith("releases/")}


def test_lib_zip_holds_the_package_its_contracts_and_conf_and_no_bytecode(package) -> None:
    with zipfile.ZipFile(package.dist / package.lib_key) as zf:
        names = zf.namelist()
        infos = zf.infolist()
    assert names == sorted(names)
    assert {"lib/__init__.py", "lib/jobs/entry.py", "lib/contracts/orders/v2.yaml",
            "lib/contracts/customers/v1.yaml", "lib/jobs/conf/log4j2.properties"} <= set(names)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}


def test_the_lambda_layer_holds_the_pinned_packages_built_for_lambda(package) -> None:
    with zipfile.ZipFile(package.dist / f"lib/{package.release}/lambda-deps.zip") as zf:
        names = zf.namelist()
        infos = zf.infolist()
    assert names == sorted(names) and all(n.startswith("python/") for n in names)
    assert "python/pyyaml-6.0.3.dist-info/METADATA" in names
    assert "python/yaml/__init__.py" in names
    # Compiled for Lambda's CPython 3.11 on x86_64 Linux, whatever this machine is.
    assert [n for n in names if n.startswith("python/yaml/_yaml.")] == [
        "python/yaml/_yaml.cpython-311-x86_64-linux-gnu.so"]
    assert not [n for n in names if "/tests/" in n or "/bin/" in n]
    # With bytecode for Lambda's Python (this interpreter is a 3.11), and none other.
    pyc = [n for n in names if n.endswith(".pyc")]
    assert "python/yaml/__pycache__/__init__.cpython-311.pyc" in pyc
    assert all(".cpython-311." in n for n in pyc)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    # Nothing that depends on the building machine: console scripts embed its interpreter's
    # path, so neither they nor their RECORD lines are kept.
    with zipfile.ZipFile(package.dist / f"lib/{package.release}/lambda-deps.zip") as zf:
        records = [zf.read(n).decode() for n in names if n.endswith(".dist-info/RECORD")]
    assert len(records) == 1
    assert not [ln for r in records for ln in r.splitlines() if ln.startswith(("../", "bin/"))]


def test_packaging_twice_gives_the_same_bytes_and_release(package, layer_cache, tmp_path) -> None:
    again = build(tmp_path / "dist", cache=layer_cache)
    assert again.release == package.release
    assert [(a.key, a.sha256) for a in again.artifacts] == \
        [(a.key, a.sha256) for a in package.artifacts]


def test_a_changed_lib_file_is_a_new_release(package, tmp_path) -> None:
    repo = copy_repo(tmp_path / "repo")
    assert build(tmp_path / "same", repo, lambda_deps=False).release == package.release
    with (repo / "lib" / "rules.py").open("a") as f:
        f.write("\n# changed\n")
    changed = build(tmp_path / "changed", repo, lambda_deps=False)
    assert changed.release != package.release
    assert changed.release.startswith("0.1.0-")


def test_a_changed_commit_protocol_is_a_new_release(package, tmp_path) -> None:
    repo = copy_repo(tmp_path / "repo")
    java = repo / "jvm" / "lake" / "spark" / "UploadFilesCommitProtocol.java"
    java.write_text(java.read_text().replace('"pub_upload"', '"publish_upload"'))
    changed = build(tmp_path / "changed", repo, lambda_deps=False)
    assert changed.release != package.release
    assert (changed.dist / "lib" / changed.release / "lake-spark.jar").read_bytes() != \
        (package.dist / "lib" / package.release / "lake-spark.jar").read_bytes()


def test_a_job_version_without_its_contract_is_refused(tmp_path) -> None:
    repo = copy_repo(tmp_path / "repo")
    (repo / "lib/contracts/orders/v2.yaml").unlink()
    with pytest.raises(PackageError, match=r"^job orders v2 has no contract .*/lib/contracts/"
                                           r"orders/v2\.yaml$"):
        build(tmp_path / "dist", repo, lambda_deps=False)


def test_the_packaged_job_runs_from_a_folder_holding_only_its_artifacts(package, tmp_path) -> None:
    """As on Glue: the script alone, lib from the zip on sys.path, the commit protocol from
    the packaged jar (Glue's --extra-jars; here the local session's jar folder), the
    runtime's packages from site-packages; no repo, no installed project (``-S`` skips its
    .pth hook)."""
    lake = tmp_path / "lake"
    assert main(["--lake-root", str(lake), "upload", "--dataset", "orders",
                 str(REPO / "samples/orders/orders_2026-11-01.csv")]) == 0
    run_dir = tmp_path / "glue"
    run_dir.mkdir()
    shutil.copy(package.dist / "jobs/orders/v2/job.py", run_dir / "job.py")
    shutil.copy(package.dist / package.lib_key, run_dir / "lib.zip")
    (run_dir / "jars").mkdir()
    shutil.copy(package.dist / "lib" / package.release / "lake-spark.jar", run_dir / "jars")
    wrapper = (
        "import runpy, sys\n"
        "import lib\n"
        "print('lib imported from', lib.__file__, file=sys.stderr)\n"
        "try:\n"
        "    runpy.run_path('job.py', run_name='__main__')\n"
        "finally:\n"
        "    print('tooling modules loaded:', sorted(m for m in sys.modules\n"
        "          if m.split('.')[0] == 'sqlglot' or m.startswith('lib.tools')), file=sys.stderr)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "LAKE_"))}
    env["LAKE_JARS_DIR"] = str(run_dir / "jars")
    env["PYTHONPATH"] = os.pathsep.join([str(run_dir / "lib.zip"),
                                         sysconfig.get_paths()["purelib"]])
    out = subprocess.run(
        [sys.executable, "-S", "-c", wrapper, "--JOB_NAME", "packaged_orders_v2",
         "--lake_root", str(lake)],
        cwd=run_dir, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"lib imported from {run_dir / 'lib.zip'}{os.sep}lib{os.sep}__init__.py" in out.stderr
    assert "tooling modules loaded: []" in out.stderr
    assert sorted(p.name for p in run_dir.iterdir()) == ["jars", "job.py", "lib.zip"]
    [record] = open_ledger(lake).find(dataset="orders")
    assert (record.status, record.job_name, record.job_version) == \
        ("ARCHIVED", "packaged_orders_v2", 2)
    assert (record.rows_read, record.clean, record.quarantined, record.duplicates_removed) == \
        (14, 4, 9, 1)


def test_the_fast_lane_layer_fits_lambda_and_runs_the_duckdb_engine_on_python_3_12(
        package, tmp_path) -> None:
    """The fast-lane Lambda as its runtime assembles it: lib.zip as the function's code, the
    layer's python/ folder, and boto3 (which the runtime provides; here the lock's pins),
    under CPython 3.12 with nothing else: the handler's module imports, DuckDB is the local
    version, and a fast-lane run of a sample upload ends ARCHIVED with the counts of every
    other run of it. Unzipped, the code and the layer stay under Lambda's 250 MB."""
    manifest = json.loads((package.dist / f"releases/{package.release}.json").read_text())
    layer = manifest["lambda_layers"]["fast-lane-deps.zip"]
    assert layer["python"] == "3.12"
    assert layer["with_lib_unzipped_bytes"] <= 250 * 1024 * 1024
    python = find_python("3.12")
    if python is None:
        pytest.skip("no CPython 3.12 here ($LAKE_PYTHON312, python3.12 on PATH or pyenv): "
                    "the fast-lane layer is checked where one is")
    opt, task, runtime = tmp_path / "opt", tmp_path / "task", tmp_path / "runtime"
    with zipfile.ZipFile(package.dist / f"lib/{package.release}/fast-lane-deps.zip") as zf:
        zf.extractall(opt)
        # bytecode for 3.12 where Lambda extracts the layer: a cold start does not compile
        assert "python/sqlglot/__pycache__/__init__.cpython-312.pyc" in zf.namelist()
    with zipfile.ZipFile(package.dist / package.lib_key) as zf:
        zf.extractall(task)
    boto = [p for p in lambda_pins(REPO, _boto_layer())]
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                          "--disable-pip-version-check", "--target", str(runtime),
                          "--only-binary=:all:", "--python-version", "3.12", *boto],
                         capture_output=True, text=True, check=False)
    assert pip.returncode == 0, pip.stderr[-2000:]
    lake = tmp_path / "lake"
    assert main(["--lake-root", str(lake), "upload", "--dataset", "orders",
                 str(REPO / "samples/orders/orders_2026-11-01.csv")]) == 0
    script = (
        "import sys, duckdb, pyarrow\n"
        "import lib.lambdas.fast_lane\n"
        "from lib.contracts.contract import load_contract\n"
        "from lib.jobs.fast_lane import run_fast_lane\n"
        "from lib.ledger.sqlite import open_ledger\n"
        "print('python', sys.version.split()[0], 'duckdb', duckdb.__version__, 'pyarrow',\n"
        "      pyarrow.__version__, 'lib', lib.lambdas.fast_lane.__file__, file=sys.stderr)\n"
        "lake = sys.argv[1]\n"
        "sys.exit(run_fast_lane(load_contract('orders', 2), 2, lake, open_ledger(lake), []))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "LAKE_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(task), str(opt / "python"), str(runtime)])
    out = subprocess.run([python, "-S", "-c", script, str(lake)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    import duckdb  # the local engine's version: the Lambda runs the same one

    assert ("python 3.12." in out.stderr and f"duckdb {duckdb.__version__} pyarrow 16.1.0 "
            f"lib {task / 'lib' / 'lambdas' / 'fast_lane.py'}" in out.stderr), out.stderr[-2000:]
    [record] = open_ledger(lake).find(dataset="orders")
    assert (record.status, record.rows_read, record.clean, record.quarantined,
            record.duplicates_removed) == ("ARCHIVED", 14, 4, 9, 1)


def _boto_layer():
    from lib.tools.packaging import Layer

    return Layer("runtime", ("boto3", "botocore", "s3transfer", "jmespath", "urllib3",
                             "python-dateutil", "six"), "3.12", ())
