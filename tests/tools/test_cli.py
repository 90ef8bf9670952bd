"""`lake`, run as a user runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from lib.tools import cli
from tests.helpers import REPO, SAMPLES

LAKE = Path(sys.executable).with_name("lake")


def test_lake_run_processes_files_into_the_given_lake_root(spark, tmp_path, capsys) -> None:
    f = tmp_path / "orders_2026-11-01.csv"
    shutil.copy(SAMPLES / f.name, f)
    code = cli.main(["--lake-root", str(tmp_path / "lk"), "run", "orders", "--input", str(f)])
    out = capsys.readouterr().out
    assert code == 0
    assert "job orders_v2 (version 2, contract orders/2, spark engine)" in out  # the latest by default
    assert "  rows read          14\n  clean              4\n  quarantined        9\n" \
           "  duplicates removed 1\n" in out
    assert sorted(p.parent.name for p in (tmp_path / "lk" / "clean" / "orders")
                  .rglob("*.parquet")) == ["order_date=2026-11-01", "order_date=2026-11-02"]
    report = json.loads(next((tmp_path / "lk" / "_reports" / "orders").glob("*.json"))
                        .read_text())
    assert report["job"] == "orders_v2" and report["totals"]["rows_read"] == 14


def test_lake_root_defaults_to_the_environment(spark, tmp_path, capsys, monkeypatch) -> None:
    f = tmp_path / "orders_2026-11-02.csv.gz"
    shutil.copy(SAMPLES / f.name, f)
    monkeypatch.setenv("LAKE_ROOT", str(tmp_path / "from-env"))
    assert cli.main(["run", "orders", "--version", "1", "--input", str(f)]) == 0
    assert (tmp_path / "from-env" / "clean" / "orders").is_dir()


def test_unknown_job_and_version_are_refused_with_the_known_ones(capsys) -> None:
    assert cli.main(["run", "invoices"]) == 2
    assert capsys.readouterr().err == "lake: error: unknown job 'invoices'; known jobs: customers, orders\n"
    assert cli.main(["run", "orders", "--version", "7"]) == 2
    assert capsys.readouterr().err == "lake: error: job 'orders' has no version 7; versions: 1, 2\n"


def test_installed_lake_command_runs(tmp_path) -> None:
    env = {**os.environ, "PATH": f"{LAKE.parent}:{os.environ['PATH']}"}
    out = subprocess.run([str(LAKE), "run", "nope"], capture_output=True, text=True, env=env,
                         cwd=REPO)
    assert out.returncode == 2
    assert out.stderr == "lake: error: unknown job 'nope'; known jobs: customers, orders\n"


def test_upload_prints_a_line_per_file_and_exits_1_when_one_is_rejected(tmp_path, capsys) -> None:
    legacy = SAMPLES / "orders_2026-11-03_legacy_export.csv"
    lake = tmp_path / "lk"
    code = cli.main(["--lake-root", str(lake), "upload", "--dataset", "orders",
                     str(SAMPLES / "orders_2026-11-01.csv"), str(legacy)])
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    ok_id, status, name, size = out[0].split("  ")
    assert (status, name, size) == ("ACCEPTED", str(SAMPLES / "orders_2026-11-01.csv"), "(1.1 KiB)")
    assert out[1:3] == [
        "    warning: extra column(s) dropped: notes",
        "    warning: 1 of the 14 rows have another number of fields than the header (10), the "
        "first at line 12; they will be quarantined as row.malformed"]
    bad_id, status, name = out[3].split("  ")
    assert (status, name) == ("REJECTED", str(legacy))
    assert out[4] == (
        "    file.missing_columns: orders_2026-11-03_legacy_export.csv: missing required "
        "column(s) ['order_id', 'customer_id', 'product_sku', 'quantity', 'unit_price', "
        "'currency', 'order_ts'] for orders/2; present columns: ['OrderNumber', 'Customer', "
        "'Product', 'Qty', 'Price']; required: ['order_id', 'customer_id', 'product_sku', "
        "'quantity', 'unit_price', 'currency', 'order_ts']; closest names in the file: "
        "'OrderNumber' for order_id, 'Customer' for customer_id, 'Product' for product_sku, "
        "'Qty' for quantity, 'Price' for unit_price (rename them to the contract's names)")
    kept = lake / "rejected" / "orders" / f"ingest_date={bad_id[1:5]}-{bad_id[5:7]}-{bad_id[7:9]}"
    assert (kept / bad_id / legacy.name).read_bytes() == legacy.read_bytes()
    assert json.loads((kept / bad_id / f"{legacy.name}.reason.json").read_text())[
        "reason_code"] == "file.missing_columns"

    assert cli.main(["--lake-root", str(lake), "status", "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [(r["upload_id"], r["status"], r["reason_code"]) for r in records] == [
        (ok_id, "ACCEPTED", None), (bad_id, "REJECTED", "file.missing_columns")]

    assert cli.main(["--lake-root", str(lake), "status", "--status", "REJECTED"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["UPLOAD", "DATASET", "STATUS", "FILE", "SIZE", "RECEIVED", "READ",
                                "CLEAN", "QUARANTINED", "DUPLICATES", "REASON", "/", "ERROR"]
    assert len(table) == 2 and table[1].split()[:3] == [bad_id, "orders", "REJECTED"]
    assert table[1].split()[-1] == "file.missing_columns"


def test_unknown_dataset_and_upload_are_refused_with_what_exists(tmp_path, capsys) -> None:
    lake = str(tmp_path / "lk")
    assert cli.main(["--lake-root", lake, "upload", "--dataset", "invoices", "x.csv"]) == 2
    assert capsys.readouterr().err == ("lake: error: unknown dataset 'invoices'; known datasets: "
                                       "customers, orders\n")
    assert cli.main(["--lake-root", lake, "status", "u-nope"]) == 2
    assert capsys.readouterr().err == "lake: error: no upload 'u-nope' in the ledger\n"
    assert cli.main(["--lake-root", lake, "reprocess", "u-nope"]) == 2
    capsys.readouterr()
    assert cli.main(["--lake-root", lake, "status", "--dataset", "nope"]) == 2
    assert capsys.readouterr().err == ("lake: error: unknown dataset 'nope'; known datasets: "
                                       "customers, orders\n")


def test_a_path_that_is_not_a_file_is_refused_before_anything_is_recorded(
        tmp_path, capsys) -> None:
    lake = tmp_path / "lk"
    good = tmp_path / "orders.csv"
    good.write_bytes((REPO / "samples/orders/orders_2026-11-01.csv").read_bytes())
    assert cli.main(["--lake-root", str(lake), "upload", "--dataset", "orders", str(good),
                     str(tmp_path / "ordrs.csv"), str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"lake: error: not a file: {tmp_path / 'ordrs.csv'} (no such file), {tmp_path} (a "
        "folder); nothing was uploaded or recorded (give the paths of the files to upload)\n")
    assert cli.main(["--lake-root", str(lake), "status", "--format", "ids"]) == 0
    assert capsys.readouterr().out.strip() == ""  # no upload recorded, not even the good one


def test_output_into_a_closed_pipe_ends_quietly(tmp_path) -> None:
    """`lake status | head -1`: the reader is gone before lake writes; no traceback."""
    lake = tmp_path / "lk"
    assert cli.main(["--lake-root", str(lake), "upload", "--dataset", "orders",
                     str(REPO / "samples/orders/orders_2026-11-01.csv")]) == 0
    proc = subprocess.Popen([sys.executable, "-m", "lib.tools.cli", "--lake-root", str(lake),
                             "status"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=REPO)
    proc.stdout.close()  # before anything is written: the first write meets a closed pipe
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == cli.SIGPIPE_EXIT
    assert err == ""


def test_run_input_uploads_first_then_status_and_reprocess(spark, tmp_path, capsys) -> None:
    lake = str(tmp_path / "lk")
    legacy = str(SAMPLES / "orders_2026-11-03_legacy_export.csv")
    gz = str(SAMPLES / "orders_2026-11-02.csv.gz")
    assert cli.main(["--lake-root", lake, "run", "orders", "--input", gz, legacy]) == 1
    out = capsys.readouterr().out
    uid = out.split()[0]
    assert f"{uid}  ACCEPTED  {gz}" in out and "REJECTED" in out
    assert "  rows read          6\n  clean              2\n" in out

    assert cli.main(["--lake-root", lake, "status", uid]) == 0
    detail = capsys.readouterr().out
    assert "status:             ARCHIVED\n" in detail
    assert "rows_read:          6\nclean:              2\nquarantined:        3\n" \
           "duplicates_removed: 1\n" in detail
    steps = [line.split()[2:5] for line in detail.split("history:\n")[1].splitlines()]
    assert steps == [["-", "->", "RECEIVED"], ["RECEIVED", "->", "ACCEPTED"],
                     ["ACCEPTED", "->", "PROCESSING"], ["PROCESSING", "->", "PROCESSED"],
                     ["PROCESSED", "->", "ARCHIVED"]]

    assert cli.main(["--lake-root", lake, "reprocess", uid]) == 0
    assert "  rows read          6\n  clean              2\n" in capsys.readouterr().out
    assert cli.main(["--lake-root", lake, "status", uid, "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert [h["to_status"] for h in record["history"]][-3:] == ["PROCESSING", "PROCESSED",
                                                                 "ARCHIVED"]
    assert record["location"].endswith(f"/archive/orders/ingest_date={record['ingest_date']}/"
                                       f"{uid}/orders_2026-11-02.csv.gz")


def test_every_argument_has_help_that_says_its_default() -> None:
    """`lake <command> --help` explains every argument, and names the default of each one
    that has one (a flag's default, off, goes without saying)."""
    import argparse

    missing = []

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    walk(child, f"{path} {name}")
            elif action.dest == "help":
                continue
            elif not action.help:
                missing.append(f"{path} {action.option_strings or action.dest}: no help")
            elif (action.default not in (None, False) and "default" not in action.help.lower()):
                missing.append(f"{path} {action.option_strings}: default {action.default!r} "
                               "not said")

    walk(cli.build_parser(), "lake")
    assert missing == []
