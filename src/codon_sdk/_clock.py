"""Time as the ledger keeps it: integer microseconds since the Unix epoch, UTC.

At the bottom of the package (it imports nothing of Codon's), so that every layer,
the stores as much as the runtime, can use it without an import running up a floor.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

__all__ = ["from_us", "now_us", "to_us"]


def from_us(us: int) -> datetime:
    """An aware UTC datetime from integer microseconds since the epoch."""
    return datetime.fromtimestamp(us / 1_000_000, tz=timezone.utc)


def to_us(when: datetime) -> int:
    """Integer microseconds since the epoch of an aware datetime (exact, no float rounding)."""
    delta = when - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def now_us() -> int:
    """The wall clock now, in integer microseconds since the epoch."""
    return time.time_ns() // 1000
