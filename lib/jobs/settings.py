"""Settings of a local run read from the environment, shared by the Spark session builder and
the run's messages (plain Python: a DuckDB run reads them without Spark)."""

from __future__ import annotations

import os

DRIVER_MEMORY_ENV = "LAKE_DRIVER_MEMORY"


def driver_memory_setting() -> str:
    """The local driver's memory: ``$LAKE_DRIVER_MEMORY``, else 1g."""
    return os.environ.get(DRIVER_MEMORY_ENV, "1g")
