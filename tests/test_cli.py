"""`lake`, run as a user runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from lib import cli
from tests.conftest import REPO, SAMPLES

LAKE = Path(sys.executable).with_name("lake")


def test_lake_run_processes_files_into_the_given_lake_root(spark, tmp_path, capsys) -> None:
    f = tmp_path / "orders_2026-11-01.csv"
    shutil.copy(SAMPLES / f.name, f)
    code = cli.main(["--lake-root", str(tmp_path / "lk"), "run", "orders", "--input", str(f)])
    out = capsys.readouterr().out
    assert code == 0
    assert "job orders_v1 (version 1, contract orders/1)" in out
    assert "  rows read          14\n  clean              4\n  quarantined        9\n" \
           "  duplicates removed 1\n" in out
    assert sorted(p.parent.name for p in (tmp_path / "lk" / "clean" / "orders")
                  .rglob("*.parquet")) == ["order_date=2026-11-01", "order_date=2026-11-02"]
    report = json.loads(next((tmp_path / "lk" / "_reports" / "orders").glob("*.json"))
                        .read_text())
    assert report["job"] == "orders_v1" and report["totals"]["rows_read"] == 14


def test_lake_root_defaults_to_the_environment(spark, tmp_path, capsys, monkeypatch) -> None:
    f = tmp_path / "orders_2026-11-02.csv.gz"
    shutil.copy(SAMPLES / f.name, f)
    monkeypatch.setenv("LAKE_ROOT", str(tmp_path / "from-env"))
    assert cli.main(["run", "orders", "--version", "1", "--input", str(f)]) == 0
    assert (tmp_path / "from-env" / "clean" / "orders").is_dir()


def test_unknown_job_and_version_are_refused_with_the_known_ones(capsys) -> None:
    assert cli.main(["run", "invoices"]) == 2
    assert capsys.readouterr().err == "lake: error: unknown job 'invoices'; known jobs: orders\n"
    assert cli.main(["run", "orders", "--version", "7"]) == 2
    assert capsys.readouterr().err == "lake: error: job 'orders' has no version 7; versions: 1\n"


def test_installed_lake_command_runs(tmp_path) -> None:
    env = {**os.environ, "PATH": f"{LAKE.parent}:{os.environ['PATH']}"}
    out = subprocess.run([str(LAKE), "run", "nope"], capture_output=True, text=True, env=env,
                         cwd=REPO)
    assert out.returncode == 2
    assert out.stderr == "lake: error: unknown job 'nope'; known jobs: orders\n"
