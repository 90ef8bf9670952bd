"""Named crash points for testing crash safety.

``crash_point("committed")`` ends the process on the spot (``os._exit``: no cleanup, no
``finally``, like a killed container) when ``LAKE_CRASH_AT`` names that point. Unset, it
does nothing. The points are listed in :data:`POINTS`.
"""

from __future__ import annotations

import os
import sys

CRASH_ENV = "LAKE_CRASH_AT"
CRASH_EXIT_CODE = 86
POINTS = (
    "writing",  # the clean files written, the quarantined ones not yet; nothing committed
    "committed",  # the journal written, no older file deleted yet
    "publishing",  # the first older file of the plan deleted
)


def crash_point(name: str) -> None:
    if name not in POINTS:
        raise ValueError(f"unknown crash point {name!r}; points: {', '.join(POINTS)}")
    if os.environ.get(CRASH_ENV) == name:
        sys.stdout.flush()
        sys.stderr.write(f"{CRASH_ENV}={name}: simulating a crash\n")
        sys.stderr.flush()
        os._exit(CRASH_EXIT_CODE)
