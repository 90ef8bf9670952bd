"""`lake pipeline --watch`: the batching condition of the event-driven workflow (as Glue's
EVENT trigger: a batch size or a window after the first upload), and a real watching
process that processes bursts of uploads in as few runs as the condition allows, each
upload exactly once, and stops between runs on Ctrl-C, never during one."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lib.ledger.records import ACCEPTED, PROCESSING
from lib.ledger.sqlite import open_ledger
from lib.tools import cli
from lib.tools.watch import BatchingCondition
from tests.helpers import REPO, new_record

HEADER = "order_id,customer_id,product_sku,quantity,unit_price,currency,order_ts\n"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def accept(ledger, uid: str, dataset: str = "orders") -> None:  # noqa: ANN001
    new_record(ledger, uid, sha=f"sha-{uid}", dataset=dataset)
    ledger.transition(uid, ACCEPTED)


def test_a_batch_is_due_at_its_size_or_its_window_after_the_first_upload(tmp_path) -> None:
    ledger, clock = open_ledger(tmp_path), Clock()
    condition = BatchingCondition(ledger, ["orders", "customers"], size=3, window=60,
                                  clock=clock)
    assert condition.poll() == []
    accept(ledger, "u1")
    clock.now = 10
    assert condition.poll() == []  # the window opened at 10 s
    accept(ledger, "u2")
    accept(ledger, "c1", dataset="customers")
    clock.now = 30
    assert condition.poll() == []
    accept(ledger, "u3")
    assert condition.poll() == [("orders", "3 upload(s): batch size 3")]
    condition.started("orders")  # the run takes every pending upload
    accept(ledger, "u4")  # accepted during the run: opens the next batch
    clock.now = 89
    assert condition.poll() == []  # u4 seen: its window opens at 89 s
    clock.now = 90  # 60 s after the customers' first upload (seen at 30 s)
    assert condition.poll() == [("customers", "1 upload(s): batch window 60 s")]
    condition.started("customers")
    clock.now = 148
    assert condition.poll() == []
    clock.now = 149  # 60 s after u4 was first seen
    assert condition.poll() == [("orders", "1 upload(s): batch window 60 s")]


def test_the_batching_condition_is_checked_before_anything_starts(tmp_path, capsys) -> None:
    for option, value, why in (("--batch-size", "0", "the batch size must be at least 1, got 0"),
                               ("--batch-window", "0", "the batch window must be positive, "
                                                       "got 0.0")):
        assert cli.main(["--lake-root", str(tmp_path / "lake"), "pipeline", "--watch", option,
                         value]) == 2
        assert capsys.readouterr().err == f"lake: error: lake pipeline --watch: {why}\n"
    assert not (tmp_path / "lake" / "_local" / "spark").exists()  # no Spark was started


class Watcher:
    """`lake pipeline --watch` in its own process; its output lines arrive on a queue."""

    def __init__(self, lake: Path, tmp: Path, *args: str) -> None:
        env = {**os.environ, "LAKE_SPARK_DIR": str(tmp / f"spark-{os.urandom(3).hex()}")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lib.tools.cli", "--lake-root", str(lake), "pipeline",
             "--watch", "--poll", "0.2", *args], stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, prefix: str, timeout: float = 300) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                assert self.proc.poll() is None, "\n".join(self.seen[-40:])
                continue
            self.seen.append(line)
            if line.startswith(prefix):
                return line
        raise AssertionError(f"no line {prefix!r} in time:\n" + "\n".join(self.seen[-40:]))

    def interrupt(self) -> None:
        self.proc.send_signal(signal.SIGINT)

    def finish(self, timeout: float = 300) -> int:
        code = self.proc.wait(timeout=timeout)
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return code


def orders_file(folder: Path, n: int) -> Path:
    """A small orders file of its own content (the same bytes twice would be a duplicate)."""
    path = folder / f"orders_{n}.csv"
    path.write_text(HEADER + "".join(
        f"O-{n}-{i},C-{i},SKU-{i:03d},{i},1.50,USD,2026-11-0{1 + i % 3}T10:00:00Z\n"
        for i in range(1, 4)))
    return path


def upload(lake: Path, *files: Path) -> list[str]:
    assert cli.main(["--lake-root", str(lake), "upload", "--dataset", "orders",
                     *map(str, files)]) == 0
    ledger = open_ledger(lake)
    names = {f.name for f in files}
    return [r.upload_id for r in ledger.find("orders") if r.original_name in names]


def runs(lake: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((lake / "_reports" / "orders")
                                                       .glob("*.json"))]


def test_watch_processes_bursts_in_few_runs_each_upload_once_and_stops_between_runs(
        tmp_path, capsys) -> None:
    lake, files = tmp_path / "lake", tmp_path / "files"
    files.mkdir()
    burst = upload(lake, *(orders_file(files, n) for n in range(1, 5)))  # 4 before watching
    assert len(burst) == 4

    watcher = Watcher(lake, tmp_path, "--batch-size", "3", "--batch-window", "600")
    assert watcher.wait_for("== orders: ") == "== orders: 4 upload(s): batch size 3 -> run"
    ledger = open_ledger(lake)
    deadline = time.monotonic() + 300
    while {ledger.get(u).status for u in burst} != {PROCESSING}:  # the run claimed them
        assert time.monotonic() < deadline and watcher.proc.poll() is None
        time.sleep(0.1)
    late = upload(lake, orders_file(files, 5))  # accepted while that run goes on
    watcher.interrupt()  # Ctrl-C during the run: the run completes, no other starts
    assert watcher.finish() == 0, "\n".join(watcher.seen)
    out = "\n".join(watcher.seen)
    assert "lake: stopping after the current run" in out
    assert watcher.seen[-1] == "lake: stopped"
    assert out.count("-> run") == 1
    assert {ledger.get(u).status for u in burst} == {"ARCHIVED"}  # published whole
    assert ledger.get(late[0]).status == ACCEPTED  # left for the next batch
    assert not list((lake / "clean" / "_staging").rglob("*.parquet"))
    assert not list((lake / "clean" / "_commits").rglob("*.json"))

    # Watching again: the late upload alone, once its window has passed.
    watcher = Watcher(lake, tmp_path, "--batch-size", "50", "--batch-window", "1")
    assert watcher.wait_for("== orders: ") == "== orders: 1 upload(s): batch window 1 s -> run"
    watcher.wait_for("== orders: run ended (exit 0)")
    watcher.interrupt()  # while idle: stops at once
    assert watcher.finish(timeout=30) == 0
    assert ledger.get(late[0]).status == "ARCHIVED"
    assert [sorted(u["upload_id"] for u in r["uploads"]) for r in runs(lake)] == [
        sorted(burst), late]  # two runs, each upload in exactly one
    for uid in [*burst, *late]:
        assert [h.to_status for h in ledger.history(uid)].count(PROCESSING) == 1


@pytest.mark.parametrize("sig", [signal.SIGTERM])
def test_watch_stops_on_sigterm_while_idle(tmp_path, sig) -> None:
    watcher = Watcher(tmp_path / "lake", tmp_path, "--batch-window", "5")
    watcher.wait_for("watching ")
    watcher.proc.send_signal(sig)
    assert watcher.finish(timeout=60) == 0
    assert watcher.seen[-1] == "lake: stopped"
