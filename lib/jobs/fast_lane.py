"""The fast lane: a small upload processed by the DuckDB engine as soon as it is accepted,
and queryable when the run ends (the run registers its partitions as it commits).

Routing is by size: an upload at or under the dataset's limit (:func:`fast_lane_limit`: the
contract's ``fast_lane_max_bytes``, else ``$LAKE_FAST_LANE_MAX_BYTES``, else 64 MiB; 0 turns
the lane off) goes through the fast lane; a larger one waits for the batch run (the Glue
workflow on AWS, ``lake pipeline`` here), as before.

The ledger decides what is processed, not the caller: a fast-lane run takes every ACCEPTED
upload of its dataset at or under the limit, claimed under the dataset's run lock as any run
claims (``--small_uploads_only``), so an upload is never processed twice and a burst of
small uploads is one run, not one per file. When another run holds the lock, the fast lane
waits up to :data:`LOCK_WAIT_S`, then leaves its uploads ACCEPTED for the next run and says
so in the log and in each upload's history. An upload the run fails is FAILED with the same
reason code as the Spark job would give it (the same run, the same checks); the batch run
retries FAILED uploads (one the DuckDB engine does not reproduce exactly,
``engine.not_reproduced``, is processed there by Spark); the fast lane never takes a FAILED
upload again.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from lib.contracts.contract import Contract
from lib.errors import ConfigError
from lib.jobs.args import job_argv
from lib.jobs.duck_entry import run_duck_job
from lib.ledger.base import Ledger
from lib.ledger.records import ACCEPTED, LockBusyError, UnknownUploadError, UploadRecord

DEFAULT_MAX_BYTES = 64 << 20
MAX_BYTES_ENV = "LAKE_FAST_LANE_MAX_BYTES"
LOCK_WAIT_S = 30.0  # how long the fast lane waits for a run of the dataset to end
_POLL_S = 0.25


def fast_lane_limit(contract: Contract, env: Mapping[str, str] | None = None) -> int:
    """The size at or under which an upload of ``contract``'s dataset takes the fast lane
    (0: never)."""
    if contract.fast_lane_max_bytes is not None:
        return contract.fast_lane_max_bytes
    text = (os.environ if env is None else env).get(MAX_BYTES_ENV)
    if text is None or text == "":
        return DEFAULT_MAX_BYTES
    if not text.isdigit():
        raise ConfigError(f"${MAX_BYTES_ENV} must be a number of bytes (0 turns the fast lane "
                          f"off), got {text!r}")
    return int(text)


@dataclass(frozen=True)
class Routed:
    """Accepted uploads by lane: ``fast`` at or under the limit, ``batch`` above it."""

    fast: list[UploadRecord]
    batch: list[UploadRecord]


def route(records: Sequence[UploadRecord], contract: Contract) -> Routed:
    limit = fast_lane_limit(contract)
    accepted = [r for r in records if r.status == ACCEPTED]
    fast = [r for r in accepted if limit > 0 and r.size_bytes <= limit]
    return Routed(fast, [r for r in accepted if r not in fast])


def run_fast_lane(contract: Contract, version: int, lake_root: str, ledger: Ledger,
                  waiting: Sequence[str], *, job_args: Mapping[str, str] | None = None,
                  lock_wait_s: float = LOCK_WAIT_S,
                  log: logging.Logger | None = None,
                  sleep: Callable[[float], None] = time.sleep,
                  clock: Callable[[], float] = time.monotonic) -> int | None:
    """One fast-lane run of ``contract``'s dataset (its job ``version``) on the lake at
    ``lake_root`` (more job arguments in ``job_args``: on AWS the ledger table, the zones'
    buckets, the catalog's databases): the exit code of the run (0 without a run when none of
    the uploads ``waiting`` is ACCEPTED any more: an earlier run took them), or None when
    the dataset's run lock stayed busy for ``lock_wait_s`` (the uploads stay ACCEPTED, with
    a note)."""
    log = log or logging.getLogger(f"lake.fast_lane.{contract.dataset}")
    limit = fast_lane_limit(contract)
    if limit == 0:
        raise ConfigError(f"{contract.ref}: the fast lane is off for this dataset "
                          "(fast_lane_max_bytes: 0)")
    if waiting and not any(_still_accepted(ledger, uid) for uid in waiting):
        log.info("%s: taken by an earlier run already; nothing to do", json.dumps(list(waiting)))
        return 0
    argv = [*job_argv(contract.dataset, version, lake_root), "--small_uploads_only", str(limit)]
    for key, value in (job_args or {}).items():
        argv += [f"--{key}", value]
    deadline = clock() + lock_wait_s
    while True:
        try:
            return run_duck_job(contract.dataset, version, argv)
        except LockBusyError as exc:
            busy = exc
            if clock() >= deadline:
                break
            sleep(_POLL_S)
    note = (f"fast lane: another run of {contract.dataset} held the run lock for "
            f"{lock_wait_s:g} s ({busy.message}); left ACCEPTED for the next run")
    for uid in waiting:
        if ledger.get(uid).status == ACCEPTED:
            ledger.note(uid, note)
    log.warning("%s: %s", json.dumps(list(waiting)), note)
    return None


def _still_accepted(ledger: Ledger, upload_id: str) -> bool:
    try:
        return ledger.get(upload_id).status == ACCEPTED
    except UnknownUploadError:  # not in this ledger: the run decides what there is to take
        return True
