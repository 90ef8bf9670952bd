"""Job arguments as Glue passes them (``--KEY value``), and the job's logger: plain Python,
shared by the Spark entry (:mod:`lib.jobs.entry`) and the DuckDB one
(:mod:`lib.jobs.duck_entry`)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, Sequence

from lib.errors import LakeError


class JobArgumentError(LakeError):
    """Missing or malformed job arguments."""

    default_code = "job.arguments"


def parse_job_args(argv: Sequence[str], required: Sequence[str] = (),
                   optional: Mapping[str, str | None] | None = None) -> dict[str, str | None]:
    """Parse ``--KEY value`` pairs the way Glue passes them to a job script."""
    optional = dict(optional or {})
    wanted = ["JOB_NAME", *[r for r in required if r != "JOB_NAME"]]
    seen: dict[str, str] = {}
    i = 0
    args = list(argv)
    while i < len(args):
        token = args[i]
        if not token.startswith("--") or len(token) == 2:
            raise JobArgumentError(f"unexpected argument {token!r}: job arguments are "
                                   "'--KEY value' pairs")
        key = token[2:]
        if "=" in key:
            key, value = key.split("=", 1)
            i += 1
        elif i + 1 < len(args) and not args[i + 1].startswith("--"):
            value = args[i + 1]
            i += 2
        else:
            value = "true"  # a bare flag, as Glue passes some of its own
            i += 1
        seen[key] = value
    missing = [k for k in wanted if not seen.get(k)]
    if missing:
        raise JobArgumentError(
            f"missing required job argument(s): {', '.join('--' + m for m in missing)}; "
            f"given: {', '.join('--' + k for k in seen) or '(none)'}")
    out: dict[str, str | None] = {k: seen[k] for k in wanted}
    for k, default in optional.items():
        out[k] = seen.get(k, default)
    return out


def job_logger(name: str) -> logging.Logger:
    log = logging.getLogger(f"lake.{name}")
    if not logging.getLogger().handlers and not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                               "%H:%M:%S"))
        log.addHandler(handler)
        log.setLevel(os.environ.get("LAKE_LOG_LEVEL", "INFO"))
    return log
