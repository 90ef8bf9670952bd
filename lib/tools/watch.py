"""``lake pipeline --watch``: the event-driven workflow of AWS, on this machine.

On AWS an accepted upload puts an event on EventBridge, and the dataset's Glue workflow
starts once its EVENT trigger's batching condition holds: ``EventBatchSize`` events, or
``EventBatchWindowSeconds`` after the first of the batch, whichever comes first. Here the
ledger plays the event bus: every ACCEPTED upload not yet seen is an event. When a
dataset's batching condition holds, its latest job version runs (taking, as on AWS, every
pending upload of the dataset), then the crawlers, and the dataset's batch starts over.

Ctrl-C (SIGINT) or SIGTERM stops the watch between runs, never during one: a run that has
started completes, publishing included, and the watch then exits. (PySpark's own SIGINT
handler would cancel the running Spark jobs; the watch replaces it while it runs.)
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from lib.ledger.base import Ledger
from lib.ledger.records import ACCEPTED

DEFAULT_BATCH_SIZE = 50  # as the pipelines template's EventBatchSize
DEFAULT_BATCH_WINDOW_S = 300.0  # as its EventBatchWindowSeconds
DEFAULT_POLL_S = 2.0


@dataclass
class Batch:
    """The uploads of one dataset seen since its last run, and when the first arrived."""

    uploads: list[str] = field(default_factory=list)
    opened_at: float | None = None


class BatchingCondition:
    """Glue's EVENT trigger batching, per dataset: fire at ``size`` uploads, or ``window``
    seconds after the first upload of the batch."""

    def __init__(self, ledger: Ledger, datasets: Iterable[str], size: int, window: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if size < 1:
            raise ValueError(f"the batch size must be at least 1, got {size}")
        if window <= 0:
            raise ValueError(f"the batch window must be positive, got {window}")
        self.ledger, self.size, self.window, self.clock = ledger, size, window, clock
        self.batches = {d: Batch() for d in datasets}
        self._seen: set[str] = set()

    def poll(self) -> list[tuple[str, str]]:
        """The datasets whose batch is due now, with why (``batch size`` / ``batch window``)."""
        now = self.clock()
        due = []
        for dataset, batch in self.batches.items():
            for record in self.ledger.find(dataset, [ACCEPTED]):
                if record.upload_id not in self._seen:
                    self._seen.add(record.upload_id)
                    batch.uploads.append(record.upload_id)
                    if batch.opened_at is None:
                        batch.opened_at = now
            if len(batch.uploads) >= self.size:
                due.append((dataset, f"{len(batch.uploads)} upload(s): batch size {self.size}"))
            elif batch.opened_at is not None and now - batch.opened_at >= self.window:
                due.append((dataset, f"{len(batch.uploads)} upload(s): batch window "
                                     f"{self.window:g} s"))
        return due

    def started(self, dataset: str) -> None:
        """A run of ``dataset`` starts: it takes every pending upload, so the batch is empty
        again (uploads accepted while it runs open the next one)."""
        self.batches[dataset] = Batch()


class StopBetweenRuns:
    """SIGINT / SIGTERM set :attr:`requested`; nothing is interrupted."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.requested = threading.Event()
        self._say = say
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: object) -> None:
        if not self.requested.is_set():
            self._say("lake: stopping after the current run (a run is never stopped half-way)")
        self.requested.set()

    def install(self) -> None:
        """(Re)install the handlers: a SparkContext created after this replaces SIGINT's."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous = signal.signal(sig, self._handle)
            self._previous.setdefault(sig, previous)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


def watch(ledger: Ledger, datasets: Sequence[str], run: Callable[[str], int],
          *, size: int = DEFAULT_BATCH_SIZE, window: float = DEFAULT_BATCH_WINDOW_S,
          poll: float = DEFAULT_POLL_S, say: Callable[[str], None] = print,
          stop: StopBetweenRuns | None = None, prepare: Callable[[], None] | None = None) -> int:
    """Run ``run(dataset)`` (a job run and a crawl) whenever a dataset's batching condition
    holds, until stopped; returns 0, or 1 when a run reported a failed upload.
    ``prepare`` runs once first (the Spark session is started there, so that the stop
    handlers installed after it stay in place)."""
    stop = stop or StopBetweenRuns(say)
    worst = 0
    condition = BatchingCondition(ledger, datasets, size, window)  # refuses a bad one first
    if prepare is not None:
        prepare()
    stop.install()
    say(f"watching {', '.join(datasets)} for accepted uploads: a run starts at {size} "
        f"upload(s) or {window:g} s after the first of a batch; Ctrl-C stops between runs")
    try:
        while not stop.requested.is_set():
            for dataset, why in condition.poll():
                if stop.requested.is_set():
                    break
                condition.started(dataset)
                say(f"== {dataset}: {why} -> run")
                code = run(dataset)
                worst = max(worst, 1 if code else 0)
                say(f"== {dataset}: run ended (exit {code}); watching")
            stop.requested.wait(poll)
    finally:
        stop.restore()
    say("lake: stopped")
    return worst
