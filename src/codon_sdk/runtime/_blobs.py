"""Large payloads outside the chain: offloading on write, inlining on read.

``workload.store_blobs_over(nbytes)`` turns it on for the durable runs of a workload.
Each value the run prepares for the ledger (token payloads, results, effect values,
state changes, metadata) whose canonical JSON is over ``nbytes`` is written to the
blob store beside the run's ledger store (``stores/_blobs.py``) and recorded as the
reference ``{"$codon": "blob", "sha256": ..., "size": ...}``: a mapping is split
member by member first (so metadata and state changes keep their shape and only
their large members move), anything else goes whole. The blob is written before the
entry is recorded; a blob store that cannot take it fails the step with
:class:`~codon_sdk.errors.BlobStoreError`.

Readers (reports read from a store, resume, replay) go through :func:`resolved`:
an event whose bytes hold a reference gets the blob's value back in its payload and
metadata, checked against the digest; its verbatim ``entry`` bytes, which the chain
hashes, are left as they are. A run without references pays one substring search per
entry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import Any, Final

from codon_sdk.errors import BlobStoreError, ConfigurationError
from codon_sdk.identity import TAG, dumps
from codon_sdk.ledger import LedgerEvent, parse_entry
from codon_sdk.stores import BLOB_NEEDLE, BlobStore, LedgerStore, blob_store_for, inline_blobs

__all__ = [
    "MIN_BLOB_THRESHOLD",
    "Offload",
    "check_threshold",
    "offload_for",
    "resolved",
    "resolved_events",
    "resolved_with",
]

#: the smallest threshold accepted: below it a reference would be larger than the payload
MIN_BLOB_THRESHOLD: Final = 256
_SPLIT_DEPTH: Final = 4


def check_threshold(nbytes: object) -> int | None:
    """``nbytes`` if it is a valid blob threshold (an int >= 256, or None for off)."""
    if nbytes is None:
        return None
    if type(nbytes) is not int or nbytes < MIN_BLOB_THRESHOLD:
        raise ConfigurationError(
            f"the blob threshold must be a whole number of bytes of at least "
            f"{MIN_BLOB_THRESHOLD} (or None to keep every payload inline), got {nbytes!r}"
        )
    return nbytes


class Offload:
    """Moves a run's prepared values over ``threshold`` bytes into ``blobs``."""

    __slots__ = ("blobs", "threshold")

    def __init__(self, blobs: BlobStore, threshold: int) -> None:
        self.blobs = blobs
        self.threshold = threshold

    def __call__(self, prepared: Any) -> Any:
        """``prepared`` with its large parts replaced by blob references."""
        data = dumps(prepared)
        if len(data) <= self.threshold:
            return prepared
        return self._split(prepared, data, 0)

    def inline(self, prepared: Any) -> Any:
        """``prepared`` (recorded JSON) with the values of the blobs it refers to."""
        if type(prepared) is dict or type(prepared) is list:
            return inline_blobs(prepared, self.blobs)
        return prepared

    def _split(self, value: Any, data: bytes, depth: int) -> Any:
        if type(value) is dict and TAG not in value and depth < _SPLIT_DEPTH:
            out: dict[str, Any] = {}
            for key, member in value.items():
                encoded = dumps(member)
                small = len(encoded) <= self.threshold
                out[key] = member if small else self._split(member, encoded, depth + 1)
            return out
        return self.blobs.put(data)


def offload_for(threshold: int | None, ledger: LedgerStore | None) -> Offload | None:
    """The offloading of a run on ``ledger`` (None: off, or an in-memory ledger)."""
    if threshold is None or ledger is None:
        return None
    blobs = blob_store_for(ledger)
    if blobs is None:
        raise BlobStoreError(
            f"the workload stores payloads over {threshold} bytes as blobs, but the ledger "
            f"store {type(ledger).__name__} has no blob store (the SQLite, PostgreSQL and memory "
            "stores have one); use one of those, or store_blobs_over(None) to keep payloads "
            "inline"
        )
    return Offload(blobs, threshold)


def resolved(event: LedgerEvent, blobs: BlobStore | None) -> LedgerEvent:
    """``event`` with the values of the blobs it refers to in place of the references."""
    if BLOB_NEEDLE not in event.entry:
        return event
    if blobs is None:
        raise BlobStoreError(
            f"event {event.seq} of run {event.run_id} refers to a blob, but its store has "
            "no blob store to read it from"
        )
    try:
        payload = inline_blobs(event.payload, blobs)
        metadata = inline_blobs(event.metadata, blobs)
    except BlobStoreError as exc:
        raise BlobStoreError(f"event {event.seq} of run {event.run_id}: {exc}") from exc
    return dataclasses.replace(event, payload=payload, metadata=metadata)


def resolved_events(entries: Iterable[bytes], ledger: LedgerStore | None) -> Iterator[LedgerEvent]:
    """Parse ``entries`` into events, reading the blobs they refer to from ``ledger``'s."""
    return resolved_with(entries, None if ledger is None else blob_store_for(ledger))


def resolved_with(entries: Iterable[bytes], blobs: BlobStore | None) -> Iterator[LedgerEvent]:
    """Parse ``entries`` into events, reading the blobs they refer to from ``blobs``."""
    for entry in entries:
        yield resolved(parse_entry(entry), blobs)
