"""The request cache: an effect (an LLM call, a plug-in's call) served from an earlier
recording of the same request, instead of being sent again.

Opt-in per node: ``add_node(..., request_cache=RequestCache(ttl=...))``. The key of an
effect is the SHA-256 of the node's logic id (its NodeSpec id: changed code asks afresh),
the effect's name (``openai.chat.completions.create``...) and the canonical bytes of its
request, as the effect records it (model, messages, parameters: the ``request`` every
integration passes to ``Integration.effect``). The index is the
ledger store's cache table (``LookupCache``/``PutCache``, beside the cache by identity);
an entry points at the source ``effect_recorded`` event (run id, seq, leaf hash), and a
hit reads that event back and checks it: its leaf hash must be the one indexed, it must
record an effect of the same name, with no error, whose recorded request is the one
asked. Anything else (a source run that is gone, tampered bytes, another request) is a
miss, logged once per key, and the call goes out; its recording then replaces the entry.

A hit is recorded in the run as the ``effect_recorded`` it serves, with ``cached_from``
naming its source, so resume and replay serve it like any recorded effect; its ``llm``
metadata is marked ``cached``, and the report counts it as a call served from the cache
(``cache_hits``), not as tokens or cost spent. A miss is marked ``request_cache: miss``.
Recorded errors are never served: a failed call is sent again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from codon_sdk._clock import now_us
from codon_sdk._warn import warn_once
from codon_sdk.errors import (
    BlobStoreError,
    LedgerError,
    RunNotFoundError,
    WorkloadRegistrationError,
)
from codon_sdk.ledger import EFFECT_RECORDED, leaf_hash, parse_entry
from codon_sdk.runtime._blobs import resolved
from codon_sdk.runtime._cache import check_ttl, publish
from codon_sdk.runtime._rebuild import RecordedEffect
from codon_sdk.runtime._request import Request, compare_request
from codon_sdk.runtime._unseal import has_markers
from codon_sdk.stores import BlobStore, CacheEntry, LedgerStore, blob_store_for
from codon_sdk.telemetry import record_request_cache

if TYPE_CHECKING:  # pragma: no cover
    from codon_sdk.runtime._engine import NodeDef, Run

__all__ = ["RequestCache", "RequestCaching", "checked_request_cache"]

_log = logging.getLogger("codon_sdk.cache")


@dataclass(frozen=True, slots=True)
class RequestCache:
    """Serve a node's effects (LLM calls...) from an earlier recording of the same request.

    ``ttl``: seconds an entry serves (None: as long as the source run is kept).

    >>> RequestCache(ttl=600)
    RequestCache(ttl=600)
    """

    ttl: float | None = None

    def __post_init__(self) -> None:
        check_ttl("RequestCache", self.ttl)


def checked_request_cache(name: str, value: object) -> RequestCache | None:
    """``add_node``'s ``request_cache=``: a :class:`RequestCache` or None."""
    if value is None or isinstance(value, RequestCache):
        return value
    raise WorkloadRegistrationError(
        f"node {name!r}: request_cache must be a RequestCache (for example "
        f"RequestCache(ttl=600)) or None, got {value!r}"
    )


def request_key(node_id: str, name: str, asked: Request) -> str:
    """The cache key of effect ``name`` of the node ``node_id`` asking for ``asked`` (a
    derivation of its own: never an activation's key)."""
    head = f"codon-request-cache/1\x00{node_id}\x00{name}\x00".encode("utf-8", "surrogatepass")
    return hashlib.sha256(head + asked.comparable).hexdigest()


class RequestCaching:
    """One run's lookups and puts of requests (for the nodes with a :class:`RequestCache`)."""

    def __init__(self, store: LedgerStore | None) -> None:
        self.store = store
        self._own: dict[str, CacheEntry] = {}  # entries this run wrote

    @classmethod
    def of(cls, nodes: Iterable[NodeDef], store: LedgerStore | None) -> RequestCaching | None:
        """The request cache of a run of ``nodes``, or None when no node has one."""
        return cls(store) if any(n.request_cache is not None for n in nodes) else None

    def lookup(
        self, run: Run, node: NodeDef, name: str, asked: Request, policy: RequestCache
    ) -> tuple[str, RecordedEffect | None]:
        """(key, the recorded effect that answers ``asked``, or None: a miss)."""
        key = request_key(node.spec.id, name, asked)
        entry = self._own.get(key)
        if entry is None and self.store is not None:
            entry = self.store.lookup_cache(key)
        served = None if entry is None else self._check(run, node, name, asked, policy, key, entry)
        record_request_cache(name, hit=served is not None)
        return key, served

    def put(self, run: Run, node: NodeDef, key: str, seq: int) -> None:
        """Index the ``effect_recorded`` at ``seq`` of this run under ``key`` (the first
        recording of a request wins; one that replaces a bad entry takes its place)."""
        raw = bytes(run.rec.entry(seq))
        if has_markers([raw]) != (False, False):
            return  # a masked or sealed answer is never served back
        publish(run, self.store, self._own, key, node, seq, raw, replace=True)

    def _check(
        self,
        run: Run,
        node: NodeDef,
        name: str,
        asked: Request,
        policy: RequestCache,
        key: str,
        entry: Any,
    ) -> RecordedEffect | None:
        if (
            not isinstance(entry, CacheEntry)
            or entry.node_id != node.spec.id
            or type(entry.seq) is not int
            or entry.seq < 1
            or not isinstance(entry.run_id, str)
            or not isinstance(entry.created_us, int)
        ):
            return _miss(key, "the cache entry is malformed or names another node logic id")
        if policy.ttl is not None and now_us() - entry.created_us > policy.ttl * 1_000_000:
            return None  # expired: a plain miss
        try:
            raw = self._read(run, entry)
            if leaf_hash(raw).hex() != entry.leaf:
                return _miss(key, "the source event's hash is not the one indexed")
            ev = resolved(parse_entry(raw), self._blobs(run))  # blobs: the values
        except (
            BlobStoreError,
            LedgerError,
            LookupError,
            RunNotFoundError,
            TypeError,
            ValueError,
        ) as exc:
            return _miss(key, f"the source cannot be read ({type(exc).__name__}: {exc})")
        md = ev.metadata
        if ev.type != EFFECT_RECORDED or md.get("name") != name or md.get("error") is not None:
            return _miss(key, "the source event is not a successful recording of this effect")
        if compare_request(md, asked) is not None:
            return _miss(key, "the source recorded another request")
        if has_markers([raw]) != (False, False):  # a secret cannot be served from its mask
            return _miss(key, "the source recording holds masked or sealed values")
        try:
            value = ev.value()
        except (LedgerError, TypeError, ValueError) as exc:
            return _miss(key, f"the recorded value cannot be decoded ({exc})")
        source = {"run_id": entry.run_id, "seq": entry.seq, "leaf": entry.leaf}
        meta = {k: v for k, v in md.items() if k not in ("name", "attempt", "index", "request")}
        llm = meta.get("llm")
        if isinstance(llm, dict):
            meta["llm"] = {**llm, "cached": True}
        meta["cached_from"] = source
        meta.pop("request_cache", None)
        return RecordedEffect(name=name, value=value, seq=ev.seq, metadata=meta)

    def _blobs(self, run: Run) -> BlobStore | None:
        if run.blobs is not None:
            return run.blobs.blobs
        return None if self.store is None else blob_store_for(self.store)

    def _read(self, run: Run, entry: CacheEntry) -> bytes:
        if entry.run_id == run.run_id:
            if entry.seq >= len(run.rec):
                raise LookupError(f"seq {entry.seq} is past the end of its source run")
            return bytes(run.rec.entry(entry.seq))
        if self.store is None:
            raise LookupError(f"run {entry.run_id!r} is not in this process")
        found = self.store.read(entry.run_id, entry.seq, entry.seq + 1)
        if len(found) != 1:
            raise LookupError(f"run {entry.run_id!r} holds no event {entry.seq}")
        return bytes(found[0])


def _miss(key: str, why: str) -> RecordedEffect | None:
    """A miss (None), said once per key."""
    warn_once(
        _log,
        f"request-cache:{key}",
        "request cache entry %s… is not used (%s); the call is sent and replaces the entry",
        key[:16],
        why,
    )
    return None
