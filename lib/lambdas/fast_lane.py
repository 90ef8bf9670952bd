"""The fast-lane Lambda: a dataset's small accepted uploads, processed by the DuckDB engine on S3
seconds after they were accepted, and queryable in Athena when it returns.

One function per dataset (``infra/pipelines.yaml``). Its rule sends the dataset's
``Upload Accepted`` events of at most the contract's ``fast_lane_max_bytes`` to a FIFO queue
whose messages all share one group, the dataset: Lambda hands a group's messages to one
invocation at a time, so two fast-lane runs of a dataset never overlap, and one invocation
takes up to ten events. Larger uploads' events go to the Glue workflow (the complement rule).

What an invocation processes comes from the ledger, not from its events
(:func:`lib.jobs.fast_lane.run_fast_lane`): one run takes every ACCEPTED upload of the dataset
at or under the limit, under the dataset's run lock, so a burst of uploads is a few runs and
an event whose upload an earlier run took is nothing to do. The run is the Glue job's run
(:func:`lib.jobs.execute.execute`) with the DuckDB engine: the same claims, checks, reason
codes, publish protocol, report, metrics and alerts, and the partitions it publishes are
registered in the Glue Data Catalog as it commits.

When the run cannot finish an upload for a reason that is not the upload's data (the engine
ran out of memory, ``engine.resources``; a file it does not reproduce exactly,
``engine.not_reproduced``; a run stopped mid-way, ``run.interrupted`` at the next run), the
upload is FAILED with that cause in its history, and this function announces it to the Glue
workflow (``Uploads Pending``), which retries it with Spark: the fast lane never takes a FAILED
upload again. When a Glue run holds the lock for longer than ``LOCK_WAIT_SECONDS``, the
uploads stay ACCEPTED with a note, for that run's "Uploads Pending" or the sweep. An
exception fails the whole batch: SQS delivers it again, up to the queue's
``maxReceiveCount``, then to its dead-letter queue (and its alarm).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from lib.contracts.contract import load_contract
from lib.errors import ConfigError
from lib.jobs.args import aws_client
from lib.jobs.args import ledger as job_ledger
from lib.jobs.duck_entry import MEMORY_ENV
from lib.jobs.fast_lane import LOCK_WAIT_S, run_fast_lane
from lib.ledger.announce import announcer_for
from lib.ledger.base import Ledger
from lib.ledger.records import FAILED, utc_now

log = logging.getLogger("lake.fast_lane")
log.setLevel(logging.INFO)

# Job argument <- environment variable (the optional ones may be empty or missing).
_REQUIRED = {"lake_root": "RAW_BUCKET", "clean_root": "CLEAN_BUCKET",
             "quarantine_root": "QUARANTINE_BUCKET", "ledger_table": "LEDGER_TABLE",
             "clean_database": "CLEAN_DATABASE", "quarantine_database": "QUARANTINE_DATABASE"}
_OPTIONAL = {"ledger_retention_days": "LEDGER_RETENTION_DAYS",
             "alert_topic_arn": "ALERT_TOPIC_ARN", "metrics_namespace": "METRICS_NAMESPACE",
             "table_prefix": "TABLE_PREFIX", "aws_region": "AWS_REGION"}
_BUCKETS = ("lake_root", "clean_root", "quarantine_root")


@dataclass(frozen=True)
class FastLaneSettings:
    dataset: str
    job_version: int
    job_args: dict[str, str]  # of the run, as the Glue job gets them
    event_bus: str | None  # where FAILED uploads are handed to the Glue workflow
    event_source: str | None
    lock_wait_s: float = LOCK_WAIT_S

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FastLaneSettings:
        env = dict(os.environ if env is None else env)
        names = ["DATASET", "JOB_VERSION", *_REQUIRED.values()]
        missing = [k for k in names if not env.get(k)]
        if missing:
            raise ConfigError(f"environment variable(s) {', '.join(missing)} not set")
        if not env["JOB_VERSION"].isdigit():
            raise ConfigError(f"JOB_VERSION must be a job version number, got "
                              f"{env['JOB_VERSION']!r}")
        wait = env.get("LOCK_WAIT_SECONDS") or str(int(LOCK_WAIT_S))
        if not wait.isdigit() or not 0 <= int(wait) <= 600:
            raise ConfigError(f"LOCK_WAIT_SECONDS must be 0..600, got {wait!r}")
        args = {arg: env[var] for arg, var in _REQUIRED.items()}
        args.update({arg: env[var] for arg, var in _OPTIONAL.items() if env.get(var)})
        for arg in _BUCKETS:
            args[arg] = f"s3://{args[arg]}"
        return cls(env["DATASET"], int(env["JOB_VERSION"]), args,
                   env.get("EVENT_BUS_NAME") or None, env.get("EVENT_SOURCE") or None,
                   float(wait))


@cache
def settings() -> FastLaneSettings:
    """Read once per Lambda container."""
    duckdb_memory(os.environ)
    # The run's own loggers (lake.<job>) log through the runtime's root handler, at INFO
    # unless $LAKE_LOG_LEVEL says otherwise, whatever the root logger's level.
    logging.getLogger("lake").setLevel(os.environ.get("LAKE_LOG_LEVEL", "INFO"))
    return FastLaneSettings.from_env()


def duckdb_memory(env: MutableMapping[str, str], share: float = 0.6) -> str | None:
    """Unless ``$LAKE_DUCKDB_MEMORY`` says otherwise, DuckDB's memory limit is ``share`` of
    the function's memory (``$AWS_LAMBDA_FUNCTION_MEMORY_SIZE``, MB): the rest is Python's
    (the run, the reader's batches) and the runtime's. Past it, DuckDB spills to /tmp."""
    size = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
    if not env.get(MEMORY_ENV) and size.isdigit():
        env[MEMORY_ENV] = f"{int(int(size) * share)}MB"
    return env.get(MEMORY_ENV)


def accepted_uploads(event: Mapping[str, Any], dataset: str) -> list[str]:
    """The upload ids of the SQS batch's ``Upload Accepted`` events of ``dataset``."""
    out = []
    for record in event.get("Records", []):
        body = json.loads(record["body"])
        detail = body.get("detail", {})
        if detail.get("dataset") != dataset or not detail.get("upload_id"):
            # Not one of its events (the rule sends no other): a retry would not change it.
            log.warning("message %s is no Upload Accepted event of %s (dataset %r, upload "
                        "%r): ignored", record.get("messageId"), dataset,
                        detail.get("dataset"), detail.get("upload_id"))
            continue
        out.append(str(detail["upload_id"]))
    return list(dict.fromkeys(out))


def hand_back(cfg: FastLaneSettings, ledger: Ledger, since: str,
              events: Any = None) -> list[str]:
    """The dataset's uploads this invocation's run left FAILED (and not held): those of its
    batch, and those of a run that died before it (its recovery fails them,
    ``run.interrupted``), announced to the dataset's Glue workflow in one ``Uploads Pending``
    event; returns them. An upload FAILED before ``since`` was handed back then: once."""
    failed, runs = [], set()
    for record in ledger.find(cfg.dataset, [FAILED]):
        if not record.held and (record.updated_at or "") >= since:
            failed.append(record.upload_id)
            runs.add(record.run_id or "-")
    if failed:
        run = ",".join(sorted(runs))
        log.warning("%s: FAILED in the fast lane (run %s); handed to the Glue workflow",
                    json.dumps(failed), run)
        announcer = announcer_for(cfg.event_bus, cfg.event_source,
                                  events or aws_client(cfg.job_args, "events")
                                  if cfg.event_bus and cfg.event_source else None)
        announcer.uploads_pending(cfg.dataset, failed, run)
    return failed


def handler(event: Mapping[str, Any], context: Any = None, *,
            cfg: FastLaneSettings | None = None) -> dict:
    """One SQS batch of a dataset's ``Upload Accepted`` events -> one fast-lane run."""
    cfg = cfg or settings()
    started = utc_now()
    waiting = accepted_uploads(event, cfg.dataset)
    args = cfg.job_args
    ledger = job_ledger(args)
    code = run_fast_lane(load_contract(cfg.dataset, cfg.job_version), cfg.job_version,
                         args["lake_root"], ledger, waiting,
                         job_args={k: v for k, v in args.items() if k != "lake_root"},
                         lock_wait_s=cfg.lock_wait_s, log=log)
    outcome = "lock busy" if code is None else f"exit {code}"
    handed = hand_back(cfg, ledger, started)
    log.info("%d event(s) of %s: %s; %d handed to the Glue workflow", len(waiting),
             cfg.dataset, outcome, len(handed))
    return {"batchItemFailures": []}
