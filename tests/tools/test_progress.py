"""Terminal progress: a live line on a terminal, updated by the command and by the job's
log; nothing added off a terminal."""

from __future__ import annotations

import io
import logging

from rich.console import Console

from lib.tools.progress import tracking


def test_on_a_terminal_the_live_line_follows_the_jobs_log() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    with tracking("job orders_v2", console=console, enabled=True) as update:
        update("starting Spark")
        job_log = logging.getLogger("lake.orders_v2")
        job_log.setLevel(logging.INFO)  # as the job's runtime sets it
        job_log.info("reading and validating 2 upload(s)")
        console.print("a line printed meanwhile")
    text = out.getvalue()
    assert "job orders_v2:" in text and "reading and validating 2 upload(s)" in text
    assert "a line printed meanwhile" in text
    assert not logging.getLogger("lake").handlers  # the handler is removed afterwards


def test_off_a_terminal_nothing_is_added(capsys) -> None:
    with tracking("lake upload --dataset orders") as update:
        update("checking a.csv")
        print("u1  ACCEPTED  a.csv")
    captured = capsys.readouterr()
    assert captured.out == "u1  ACCEPTED  a.csv\n" and captured.err == ""
