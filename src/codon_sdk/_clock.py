"""Times as the ledger keeps them: integer microseconds since the epoch, UTC."""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["from_us"]


def from_us(us: int) -> datetime:
    """An aware UTC datetime from integer microseconds since the epoch."""
    return datetime.fromtimestamp(us / 1_000_000, tz=timezone.utc)
