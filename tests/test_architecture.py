"""The layout keeps its promises: the import-linter contracts hold (and fail when a layer is
crossed), no module of lib imports another one inside a function to dodge a circle, and every
user-facing error derives from LakeError."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import lib
from lib.errors import LakeError

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"),
                           "--no-cache"], cwd=root, env={"PYTHONPATH": str(root),
                                                          "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=300, check=False)


def copy_code(dest: Path) -> Path:
    for part in ("lib", "glue_jobs"):
        shutil.copytree(REPO / part, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", dest / "pyproject.toml")
    return dest


def test_the_import_linter_contracts_hold() -> None:
    out = lint_imports(REPO)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Contracts: 11 kept, 0 broken." in out.stdout
    assert "BROKEN" not in out.stdout


@pytest.mark.parametrize(("module", "line", "broken"), [
    ("lib/engine/rules.py", "from lib.ledger.records import ACCEPTED  # noqa",
     "engine imports nothing from jobs, ledger, upload or tools BROKEN"),
    ("lib/contracts/header.py", "import pyspark  # noqa",
     "contracts import no Spark (the upload checks and the Lambdas run without it) BROKEN"),
    ("lib/jobs/entry.py", "from lib.tools import cli  # noqa",
     "nothing shipped imports the tooling or a developer-only dependency BROKEN"),
    ("lib/lambdas/validator.py", "import sqlglot  # noqa",
     "nothing shipped imports the tooling or a developer-only dependency BROKEN"),
    ("lib/lake/paths.py", "from lib.jobs import report  # noqa",
     "engine/sources/ledger -> contracts/lake -> errors BROKEN"),
    ("lib/sources/base.py", "from lib.sources import registry  # noqa",
     "nor between the modules of one folder BROKEN"),
    ("lib/engine/duck/rules.py", "import pyspark  # noqa",
     "the DuckDB engine imports no Spark (it runs where there is no JVM) BROKEN"),
    ("lib/engine/transforms.py", "import duckdb  # noqa",
     "the Spark path shipped to Glue imports neither DuckDB nor the DuckDB engine BROKEN"),
    ("lib/jobs/run.py", "from lib.engine.duck import rules  # noqa",
     "the Spark path shipped to Glue imports neither DuckDB nor the DuckDB engine BROKEN"),
    ("lib/lambdas/settings.py", "from lib.lake.s3fs import S3Fs  # noqa",
     "the upload Lambdas (python3.11, a PyYAML layer) import neither DuckDB nor Arrow BROKEN"),
    ("lib/jobs/run.py", "from lib.jobs.spark_rows import SparkRows  # noqa",
     "the run, its records and the DuckDB entry import no Spark (a DuckDB run starts no JVM) "
     "BROKEN"),
])
def test_the_contracts_fail_when_a_layer_is_crossed(tmp_path, module, line, broken) -> None:
    root = copy_code(tmp_path)
    target = root / module
    text = target.read_text(encoding="utf-8")
    head, sep, rest = text.partition("\nfrom __future__ import annotations\n")
    target.write_text(head + sep + line + "\n" + rest, encoding="utf-8")
    out = lint_imports(root)
    assert out.returncode == 1, out.stdout + out.stderr
    assert broken in " ".join(out.stdout.split())  # the report wraps long names


def _lib_modules() -> list[Path]:
    return sorted((REPO / "lib").rglob("*.py"))


# The `lake` command line is the one exception: each command imports what it needs when it
# runs, so `lake query` and `lake crawl` start without loading Spark, boto3 or the console
# (0.3 s instead of 0.9 s). import-linter still sees those imports (grimp reads imports inside
# functions too), so the layers and the cycle check cover them.
LAZY_IMPORTS_ALLOWED = {"lib/tools/cli.py"}


def test_no_module_of_lib_imports_lib_inside_a_function() -> None:
    """An import placed in a function is a dependency a reader of the module's head does not
    see (and is how import circles used to be dodged)."""
    hidden = []
    for path in _lib_modules():
        if str(path.relative_to(REPO)) in LAZY_IMPORTS_ALLOWED:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for fn in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                hidden += [f"{path.relative_to(REPO)}:{node.lineno} {n}" for n in names
                           if n == "lib" or n.startswith(("lib.", "glue_jobs"))]
    assert hidden == []


def test_every_exception_class_of_lib_is_a_lake_error() -> None:
    outside = []
    for info in pkgutil.walk_packages(lib.__path__, "lib."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and issubclass(obj, BaseException)
                    and obj.__module__ == module.__name__ and not issubclass(obj, LakeError)):
                outside.append(f"{module.__name__}.{name}")
    assert outside == []


def test_every_shipped_module_imports_without_the_tooling_or_its_dependencies() -> None:
    """What Glue and the Lambdas load: every module of lib outside lib/tools imports with
    the tooling and sqlglot out of reach (the DuckDB engine, lib/engine/duck, and its run,
    lib/jobs/duck_*.py and the fast lane that starts it, lib/jobs/fast_lane.py, ship with
    sqlglot, which translates derived expressions)."""
    shipped = sorted(
        ".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for p in _lib_modules() if p.relative_to(REPO / "lib").parts[0] != "tools"
        and p.relative_to(REPO / "lib").parts[:2] != ("engine", "duck")
        and not p.name.startswith("duck_") and p.name != "fast_lane.py")
    code = (
        "import importlib, sys\n"
        "class NotShipped:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'sqlglot' or name.startswith('lib.tools'):\n"
        "            raise ImportError(f'{name} is not shipped')\n"
        "sys.meta_path.insert(0, NotShipped())\n"
        "for name in sys.argv[1:]:\n"
        "    importlib.import_module(name)\n"
        "print(len(sys.argv) - 1, 'modules imported')\n"
    )
    out = subprocess.run([sys.executable, "-c", code, *shipped], cwd=REPO, capture_output=True,
                         text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == f"{len(shipped)} modules imported"
    assert {"lib.jobs.run", "lib.lambdas.validator", "lib.upload.checks"} <= set(shipped)
