"""Times and durations as people read them, on the console's pages and in the run report:
``2026-12-03 23:48:12 UTC``, ``0.4 s``, ``3 min 05 s``."""

from __future__ import annotations

from datetime import UTC, datetime


def when(iso: str | None) -> str:
    """``2026-12-03T23:48:12.5+00:00`` -> ``2026-12-03 23:48:12 UTC``."""
    if not iso:
        return "-"
    try:
        at = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso[:19]
    if at.tzinfo is not None:
        at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def seconds(total: float) -> str:
    """A duration as people say it: ``0.4 s``, ``12 s``, ``3 min 05 s``, ``2 h 04 min``."""
    if total < 10:
        return f"{total:.1f} s"
    if total < 60:
        return f"{total:.0f} s"
    minutes, secs = divmod(int(round(total)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def duration(start: str | None, end: str | None) -> str:
    """The time from ``start`` to ``end`` (ISO timestamps), or ``-``."""
    try:
        a = datetime.fromisoformat((start or "").replace("Z", "+00:00"))
        b = datetime.fromisoformat((end or "").replace("Z", "+00:00"))
    except ValueError:
        return "-"
    return seconds(max((b - a).total_seconds(), 0.0))
