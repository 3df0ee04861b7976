"""The record a sink receives: one committed ledger entry and its deduplication key."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AuditEntry"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One committed ledger entry as a sink receives it.

    ``entry`` is the exact bytes the store holds (what the chain hashes), ``leaf`` the
    entry's RFC 6962 leaf hash (``SHA-256(0x00 || entry)``); :attr:`key`, its hex
    form, is the deduplication key: the same entry delivered twice has the same key.
    """

    run_id: str
    seq: int
    entry: bytes
    leaf: bytes

    @property
    def key(self) -> str:
        """The deduplication key: the entry's leaf hash, 64 lowercase hex digits."""
        return self.leaf.hex()
