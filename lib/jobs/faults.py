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
    "staging",  # clean rows staged, quarantine not yet: the zones are untouched
    "committed",  # publish journal written, nothing moved yet
    "publishing",  # the first file of the plan moved into a zone
)


def crash_point(name: str) -> None:
    if name not in POINTS:
        raise ValueError(f"unknown crash point {name!r}; points: {', '.join(POINTS)}")
    if os.environ.get(CRASH_ENV) == name:
        sys.stdout.flush()
        sys.stderr.write(f"{CRASH_ENV}={name}: simulating a crash\n")
        sys.stderr.flush()
        os._exit(CRASH_EXIT_CODE)
