"""Content-addressed blob stores: large payloads kept outside the ledger entries.

A payload over the workload's blob threshold (``workload.store_blobs_over(nbytes)``,
``runtime/_blobs.py``) is written here as its canonical JSON bytes, named by their
SHA-256, and the ledger entry holds only the reference
``{"$codon": "blob", "sha256": "<64 hex>", "size": <bytes>}`` in its place, so the
hash chain commits to the payload through its digest. (``prepare`` escapes a user
dict with a ``"$codon"`` key, so only the SDK writes such a reference.)

Where the blobs of a ledger live (:func:`blob_store_for`):

* a SQLite file ``ledger.db``: the directory ``ledger.db.blobs/`` beside it, one file
  per blob under a two-hex-digit fan-out (``ab/abcdef...``);
* a PostgreSQL store, a SQLite store without a file and a
  :class:`~codon_sdk.stores.MemoryStore`: the store's own ``codon_blobs`` table (or
  dictionary), through the ``PutBlob`` / ``GetBlob`` operations (``stores/_blob_ops.py``);
* a plug-in store: none, so a run that would offload a payload there fails at its start
  with a :class:`~codon_sdk.errors.BlobStoreError` saying so.

A blob is written (to a temporary file, flushed to disk, then renamed) before the
entry that refers to it is recorded, and a write that fails fails the run's step:
a digest is never recorded without its bytes. Blob bytes read back are hostile
input: :meth:`BlobStore.get` checks size and digest, and a missing or altered blob
is a ``BlobStoreError`` naming the digest (readers) or a finding (``verify``).
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import re
import tempfile
from collections.abc import Sequence
from typing import Any, Final

import orjson

from codon_sdk.errors import BlobStoreError, StoreError
from codon_sdk.ledger import Finding
from codon_sdk.stores._base import LedgerStore
from codon_sdk.stores._blob_ops import GetBlob, PutBlob
from codon_sdk.stores._memory import MemoryStore
from codon_sdk.stores._sql import SQLStore
from codon_sdk.stores._sqlite import SQLiteStore

__all__ = [
    "BLOB_KIND",
    "BLOB_NEEDLE",
    "BlobStore",
    "DirectoryBlobStore",
    "TableBlobStore",
    "blob_findings",
    "blob_ref",
    "blob_refs",
    "blob_store_for",
    "inline_blobs",
    "is_blob_ref",
]

BLOB_KIND: Final = "blob"
_HEX64 = re.compile(r"[0-9a-f]{64}")


def blob_ref(sha256: str, size: int) -> dict[str, Any]:
    """The reference an entry holds in place of a blob's payload."""
    return {"$codon": BLOB_KIND, "sha256": sha256, "size": size}


def is_blob_ref(value: Any) -> bool:
    """Whether a parsed JSON value has the exact shape of a blob reference."""
    return (
        type(value) is dict
        and value.get("$codon") == BLOB_KIND
        and len(value) == 3
        and type(value.get("sha256")) is str
        and _HEX64.fullmatch(value["sha256"]) is not None
        and type(value.get("size")) is int
        and value["size"] >= 0
    )


class BlobStore:
    """Where blobs live; subclasses implement :meth:`_write`, :meth:`_read`, :meth:`_has`."""

    #: where the blobs are, for messages
    where: str = "a blob store"

    def put(self, data: bytes) -> dict[str, Any]:
        """Store ``data`` (once: an existing blob of that digest is kept); return its reference."""
        digest = hashlib.sha256(data).hexdigest()
        if not self._has(digest, len(data)):
            self._write(digest, data)
        return blob_ref(digest, len(data))

    def get(self, sha256: str, size: int) -> bytes:
        """The bytes of blob ``sha256``, checked against its digest and size."""
        data = self._read(sha256)
        if data is None:
            raise BlobStoreError(
                f"blob {sha256} ({size} bytes) is missing from {self.where}: the ledger "
                "commits to it but its bytes are gone; restore the blob directory from a backup"
            )
        if len(data) != size or hashlib.sha256(data).hexdigest() != sha256:
            raise BlobStoreError(
                f"blob {sha256} in {self.where} does not match its digest (expected {size} "
                f"bytes, found {len(data)}): its bytes were altered; restore it from a backup"
            )
        return data

    def exists(self, sha256: str) -> bool:
        """Whether a blob of that digest is present (its bytes not checked)."""
        return self._read(sha256) is not None

    def _failed(self, verb: str, sha256: str, exc: BaseException) -> BlobStoreError:
        """The error of a write or read that ``exc`` stopped."""
        if verb == "write":
            return BlobStoreError(
                f"cannot write blob {sha256} to {self.where}: {exc}; nothing that refers to "
                "the blob was recorded (make the blob store writable and run again)"
            )
        return BlobStoreError(f"cannot read blob {sha256} from {self.where}: {exc}")

    def _has(self, sha256: str, size: int) -> bool:
        raise NotImplementedError

    def _write(self, sha256: str, data: bytes) -> None:
        raise NotImplementedError

    def _read(self, sha256: str) -> bytes | None:
        raise NotImplementedError


class TableBlobStore(BlobStore):
    """Blobs in the ledger store itself (``codon_blobs``, ``stores/_blob_ops.py``): the blob
    store of a PostgreSQL store, of a SQLite store without a file and of a memory store."""

    def __init__(self, ledger: LedgerStore) -> None:
        self.ledger = ledger
        self.where = f"the blob table of {getattr(ledger, 'url', type(ledger).__name__)}"

    def _has(self, sha256: str, size: int) -> bool:
        held = self._read(sha256)
        return held is not None and len(held) == size

    def _write(self, sha256: str, data: bytes) -> None:
        try:
            self.ledger.execute(PutBlob(sha256, data))
        except BlobStoreError:
            raise
        except StoreError as exc:
            raise self._failed("write", sha256, exc) from exc

    def _read(self, sha256: str) -> bytes | None:
        try:
            held = self.ledger.execute(GetBlob(sha256))
        except BlobStoreError:
            raise
        except StoreError as exc:
            raise self._failed("read", sha256, exc) from exc
        return held if isinstance(held, bytes) else None


class DirectoryBlobStore(BlobStore):
    """Blobs as files in a directory: ``<dir>/<first two hex digits>/<sha256>``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = pathlib.Path(path)
        self.where = f"the blob directory {os.fspath(self.path)!r}"

    def file(self, sha256: str) -> pathlib.Path:
        """The path of blob ``sha256`` (which must be 64 lowercase hex digits)."""
        if _HEX64.fullmatch(sha256) is None:
            raise BlobStoreError(f"{sha256!r} is not a SHA-256 digest (64 lowercase hex digits)")
        return self.path / sha256[:2] / sha256

    def _has(self, sha256: str, size: int) -> bool:
        try:
            return self.file(sha256).stat().st_size == size
        except OSError:
            return False

    def _write(self, sha256: str, data: bytes) -> None:
        target = self.file(sha256)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, target)
            except BaseException:
                pathlib.Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise self._failed("write", sha256, exc) from exc

    def _read(self, sha256: str) -> bytes | None:
        try:
            return self.file(sha256).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._failed("read", sha256, exc) from exc


def blob_store_for(ledger: LedgerStore) -> BlobStore | None:
    """The blob store beside ``ledger`` (see the module docstring), or None if it has none."""
    if isinstance(ledger, SQLiteStore) and ledger.path != ":memory:":
        return DirectoryBlobStore(ledger.path + ".blobs")
    if isinstance(ledger, (SQLStore, MemoryStore)):
        return TableBlobStore(ledger)
    return None


#: the bytes every entry holding a blob reference contains (canonical JSON, sorted keys)
BLOB_NEEDLE: Final = b'"$codon":"blob"'
_WALK_DEPTH: Final = 210


def blob_refs(parsed: Any, depth: int = 0) -> list[dict[str, Any]]:
    """The blob references inside a parsed entry (or value), in document order."""
    if depth > _WALK_DEPTH:
        return []
    if type(parsed) is dict:
        if is_blob_ref(parsed):
            return [parsed]
        return [r for x in parsed.values() for r in blob_refs(x, depth + 1)]
    if type(parsed) is list:
        return [r for x in parsed for r in blob_refs(x, depth + 1)]
    return []


def inline_blobs(parsed: Any, blobs: BlobStore, depth: int = 0) -> Any:
    """``parsed`` with each blob reference replaced by the JSON value its blob holds
    (checked against its digest; a missing, altered or unparsable blob raises
    :class:`~codon_sdk.errors.BlobStoreError`)."""
    if depth > _WALK_DEPTH:
        return parsed
    if type(parsed) is dict:
        if is_blob_ref(parsed):
            return _load(blobs, parsed)
        return {k: inline_blobs(x, blobs, depth + 1) for k, x in parsed.items()}
    if type(parsed) is list:
        return [inline_blobs(x, blobs, depth + 1) for x in parsed]
    return parsed


def _load(blobs: BlobStore, ref: dict[str, Any]) -> Any:
    data = blobs.get(ref["sha256"], ref["size"])
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BlobStoreError(
            f"blob {ref['sha256']} in {blobs.where} matches its digest but is not JSON ({exc}): "
            "no codon SDK wrote it"
        ) from exc


def blob_findings(entries: Sequence[bytes], blobs: BlobStore | None) -> list[Finding]:
    """A finding for each blob that the entries refer to and that is missing or altered
    (``blob_missing``, ``blob_altered``; no blob store at all: ``blob_missing`` too)."""
    found: list[Finding] = []
    for seq, entry in enumerate(entries):
        if BLOB_NEEDLE not in entry:
            continue
        try:
            refs = blob_refs(orjson.loads(entry))
        except orjson.JSONDecodeError:
            continue  # the chain check names a malformed entry
        for ref in refs:
            digest, size = ref["sha256"], ref["size"]
            if blobs is None or not blobs.exists(digest):
                where = "the store has no blob store" if blobs is None else blobs.where
                found.append(
                    Finding(
                        seq,
                        "blob_missing",
                        f"blob {digest} ({size} bytes) the entry commits to is missing "
                        f"({where}): restore it from a backup",
                    )
                )
                continue
            try:
                blobs.get(digest, size)
            except BlobStoreError as exc:
                found.append(Finding(seq, "blob_altered", str(exc)))
    return found
