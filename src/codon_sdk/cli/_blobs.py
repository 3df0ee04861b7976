"""``codon export --blobs include``: the payload blobs a run's entries refer to.

Each blob is written once, after the entries and before the checkpoint line, as
``{"codon_blob": {"sha256": ..., "size": ..., "data": "<base64>"}}``; its bytes are
checked against the digest first, and a missing or altered blob fails the export
with a message naming it (``codon verify`` reports the same as a finding).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import BinaryIO

import orjson

from codon_sdk.cli._common import EXIT_FAILED, CliError
from codon_sdk.errors import BlobStoreError
from codon_sdk.stores import BLOB_NEEDLE, LedgerStore, blob_refs, blob_store_for

__all__ = ["referenced_blobs", "write_blobs"]


def referenced_blobs(entries: Iterable[bytes]) -> dict[str, int]:
    """``{sha256: size}`` of the blobs ``entries`` refer to."""
    found: dict[str, int] = {}
    for entry in entries:
        if BLOB_NEEDLE in entry:
            try:
                parsed = orjson.loads(entry)
            except orjson.JSONDecodeError:
                continue  # the trust check names a malformed entry
            found.update((ref["sha256"], ref["size"]) for ref in blob_refs(parsed))
    return found


def write_blobs(out: BinaryIO, store: LedgerStore, refs: dict[str, int]) -> None:
    """Write each blob of ``refs`` as a ``codon_blob`` line, checked against its digest."""
    if not refs:
        return
    blobs = blob_store_for(store)
    for digest, size in refs.items():
        try:
            if blobs is None:
                raise BlobStoreError(f"blob {digest} cannot be read: the store has no blob store")
            data = blobs.get(digest, size)
        except BlobStoreError as exc:
            raise CliError(
                f"{exc}; not exported (or export with --blobs omit)", EXIT_FAILED
            ) from exc
        line = {"sha256": digest, "size": size, "data": base64.b64encode(data).decode("ascii")}
        out.write(orjson.dumps({"codon_blob": line}) + b"\n")
