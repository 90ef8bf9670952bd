"""Progress on a terminal for ``lake upload``, ``lake run`` and ``lake pipeline`` (rich): a
live line with a spinner, what is being done (the file being checked, the job's phase as it
logs it, rows when known) and the time elapsed. Off a terminal (CI logs, pipes) nothing is
added: the commands print their plain lines as before."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

Update = Callable[[str], None]


class _ToProgress(logging.Handler):
    """Every INFO record of the job's logger becomes the live line's text."""

    def __init__(self, update: Update) -> None:
        super().__init__(logging.INFO)
        self._update = update

    def emit(self, record: logging.LogRecord) -> None:
        self._update(record.getMessage().splitlines()[0][:120])


@contextmanager
def tracking(label: str, *, logger: str | None = "lake", console: Console | None = None,
             enabled: bool | None = None) -> Iterator[Update]:
    """A live line ``<spinner> label: <text> <elapsed>`` while the block runs, on a terminal
    (``enabled``: force it on or off). The block updates the text through the function it
    gets; every INFO record of ``logger`` (and its children: a job's ``lake.<job>``) does
    too. The lines the block prints still appear, above the live line."""
    console = console or Console(stderr=True)
    on = (console.is_terminal and sys.stderr.isatty()) if enabled is None else enabled
    if not on:
        yield lambda _text: None
        return
    progress = Progress(SpinnerColumn(), TextColumn("[bold]{task.fields[label]}[/]"),
                        TextColumn("{task.description}"), TimeElapsedColumn(),
                        console=console, transient=True)
    with progress:
        task = progress.add_task("starting", label=f"{label}:", total=None)

        def update(text: str) -> None:
            progress.update(task, description=text, refresh=True)

        handler = _ToProgress(update)
        log = logging.getLogger(logger) if logger else None
        if log is not None:
            log.addHandler(handler)
        try:
            yield update
        finally:
            if log is not None:
                log.removeHandler(handler)
