"""CloudWatch metrics as embedded metric format (EMF) log lines.

A line printed by a Lambda function or a Glue job lands in CloudWatch Logs, which turns the
``_aws`` block into metrics: no PutMetricData call, no extra permission, and the line keeps
its context (upload id, run id) for Logs Insights. Every metric has the ``Dataset`` dimension.
Nothing is printed unless a namespace is configured (locally there is none).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from typing import IO

# Upload checks (the validator Lambda)
FILES_ACCEPTED = "FilesAccepted"
FILES_REJECTED = "FilesRejected"
# Job runs
ROWS_READ = "RowsRead"
ROWS_CLEAN = "RowsClean"
ROWS_QUARANTINED = "RowsQuarantined"
DUPLICATES_REMOVED = "DuplicatesRemoved"
UPLOADS_PROCESSED = "UploadsProcessed"
UPLOADS_FAILED = "UploadsFailed"
RUNS_FAILED = "RunsFailed"
QUALITY_WARNINGS = "QualityWarnings"  # uploads published above a warn threshold
QUALITY_FAILURES = "QualityFailures"  # uploads kept out above a fail threshold
RUN_DURATION = "RunDuration"

COUNT, SECONDS = "Count", "Seconds"


def emf_record(namespace: str, dataset: str, metrics: Mapping[str, tuple[float, str]],
               properties: Mapping[str, object] | None = None,
               timestamp_ms: int | None = None) -> dict:
    """One EMF document: ``metrics`` maps a name to (value, unit)."""
    return {
        "_aws": {
            "Timestamp": timestamp_ms if timestamp_ms is not None else int(time.time() * 1000),
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["Dataset"]],
                "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in metrics.items()],
            }],
        },
        "Dataset": dataset,
        **{name: value for name, (value, _) in metrics.items()},
        **dict(properties or {}),
    }


def emit(namespace: str | None, dataset: str, metrics: Mapping[str, tuple[float, str]],
         properties: Mapping[str, object] | None = None, stream: IO[str] | None = None) -> None:
    if not namespace:
        return
    line = json.dumps(emf_record(namespace, dataset, metrics, properties), default=str)
    print(line, file=stream or sys.stdout, flush=True)
