"""The store operations of the cache by identity (``runtime/_cache.py``): one entry per key."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CacheEntry", "LookupCache", "PutCache"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheEntry:
    """One entry of the cache by identity: the activation whose completion serves ``key``.

    ``key`` is the hex SHA-256 of the node's logic id and its canonical input (see
    ``codon_sdk.runtime``'s ``CachePolicy``); ``run_id`` and ``seq`` name the source
    activation's ``node_completed`` event, ``leaf`` its leaf hash (hex), so the value
    itself is read from, and checked against, the source run's ledger.
    """

    key: str
    node_id: str
    run_id: str
    seq: int
    leaf: str
    created_us: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LookupCache:
    """The :class:`CacheEntry` stored for ``key``, or None. Returns ``CacheEntry | None``."""

    key: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PutCache:
    """Store ``entry`` for its key. The first entry for a key wins: another for the same key
    is ignored, unless ``replace`` (the held one expired or did not verify), when it takes
    the held one's place. Returns True when ``entry`` is now the key's entry."""

    entry: CacheEntry
    replace: bool = False
