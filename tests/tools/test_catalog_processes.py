"""The local catalog and `lake query` with several processes on one lake at once: crawls
running side by side leave one consistent catalog, and queries answer while a pipeline
runs its jobs and crawls. Real `lake` processes, no mocks."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from lib.lake.catalog import catalog_file
from tests.helpers import REPO, SAMPLES, catalog_of, crawl_all


def lake_process(lake: Path, *args: str, tmp: Path) -> subprocess.Popen:
    env = {**os.environ, "LAKE_SPARK_DIR": str(tmp / f"spark-{os.urandom(3).hex()}")}
    return subprocess.Popen([sys.executable, "-m", "lib.tools.cli", "--lake-root", str(lake),
                             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=REPO)


def finish(proc: subprocess.Popen, timeout: float = 600) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def actions(out: str) -> dict[str, str]:
    """``clean.orders: created (...)`` lines of a crawl's output -> table: action."""
    found = {}
    for line in out.splitlines():
        head = line.strip().split(" (", 1)[0]
        if head.startswith(("clean.", "quarantine.")) and ": " in head:
            table, action = head.split(": ", 1)
            found[table] = action
    return found


def test_crawls_side_by_side_leave_one_consistent_catalog(processed_lake, tmp_path) -> None:
    lake = tmp_path / "lake"
    shutil.copytree(processed_lake, lake, ignore=shutil.ignore_patterns("_local"))
    crawls = [lake_process(lake, "crawl", tmp=tmp_path) for _ in range(4)]
    results = [finish(p) for p in crawls]
    assert [code for code, _, _ in results] == [0, 0, 0, 0], [err for *_, err in results]
    tables = ("clean.customers", "clean.orders", "quarantine.customers", "quarantine.orders")
    for table in tables:  # each table created by exactly one of them, found done by the rest
        seen = sorted(actions(out)[table] for _, out, _ in results)
        assert seen == ["created", "unchanged", "unchanged", "unchanged"], (table, seen)
    con = sqlite3.connect(catalog_file(lake))
    assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    con.close()
    catalog = catalog_of(lake)
    assert catalog.table_names() == list(tables)
    assert sorted(catalog.partitions("clean", "orders")) == [("2026-11-01",), ("2026-11-02",)]
    again = crawl_all(lake)
    assert {r.action for r in again.values()} == {"unchanged"}


def test_lake_query_answers_while_lake_pipeline_runs(spark, tmp_path) -> None:
    """The pipeline (a Spark job, then the crawl) and queries on the same lake root: every
    query answers from what is catalogued at that moment, none waits for the pipeline."""
    from lib.tools import cli

    lake = tmp_path / "lake"
    assert cli.main(["--lake-root", str(lake), "run", "orders", "--version", "1",
                     "--input", str(SAMPLES / "orders_2026-11-01.csv")]) == 0
    crawl_all(lake)
    sql = "SELECT count(*) AS n FROM clean.orders"
    assert cli.main(["--lake-root", str(lake), "upload", "--dataset", "orders",
                     str(SAMPLES / "orders_2026-11-02.csv.gz")]) == 0

    pipeline = lake_process(lake, "pipeline", tmp=tmp_path)
    answers = []
    try:
        while pipeline.poll() is None and len(answers) < 50:
            started = time.perf_counter()
            query = lake_process(lake, "query", "--format", "csv", sql, tmp=tmp_path)
            code, out, err = finish(query, timeout=60)
            assert code == 0, err
            answers.append((out.splitlines()[1], time.perf_counter() - started,
                            pipeline.poll() is None))
            time.sleep(0.5)
        code, out, err = finish(pipeline)
    finally:
        if pipeline.poll() is None:
            pipeline.kill()
    assert code == 0, err[-3000:]
    during = [a for a in answers if a[2]]  # answered while the pipeline was still running
    assert len(during) >= 3, answers
    # 4 before the run, 6 after it; 5 while it writes the new upload's two partition files
    # (in partitions already catalogued): a new upload's rows appear partition by partition
    # (docs/data.md, "What a reader sees while a run publishes"), and never go away.
    counts = [int(n) for n, _, _ in during]
    assert set(counts) <= {4, 5, 6} and counts == sorted(counts), answers
    assert counts[0] == 4
    assert max(seconds for _, seconds, _ in during) < 30  # nobody waited for the pipeline
    code, out, _ = finish(lake_process(lake, "query", "--format", "csv", sql, tmp=tmp_path))
    assert (code, out.splitlines()[1]) == (0, "6")
