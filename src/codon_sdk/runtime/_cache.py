"""Caching by identity: an activation whose node logic id and canonical input match an
earlier completed one reuses its recorded outcome instead of running.

The key of an activation of a node with a :class:`CachePolicy` is the SHA-256 of the
node's logic id (its NodeSpec id), the canonical bytes of the token payload and the
values of the state keys the policy names. The index lives in the ledger store
(``LookupCache``/``PutCache``) and points at the source activation's ``node_completed``
(run id, seq, leaf hash); the outcome itself (the result and the tokens it emitted) is
read from the source run's ledger and checked there: the leaf hash of ``node_completed``
must be the one the index recorded, the activation's events must chain to it, and the
source run's ``run_started`` must name the same NodeSpec id for the node. Anything else
(a source run that is gone, tampered bytes, an entry that cannot be decoded) is a miss,
logged once per key, and the node runs; its completion then replaces the entry.

A hit records ``cache_hit`` (naming the source run, seq and leaf hash), then the
emitted tokens (with new ids) and ``node_completed`` as the activation would have:
resume and the report read it as a completed activation, replay serves it again
instead of running the node (:meth:`RunCache.for_replay`).

Not cached (the node runs every time and no entry is written): an activation that
changed the shared state, asked to stop the run, or whose result or emitted payloads
hold masked or sealed values (a secret cannot be served back from a mask).
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from codon_sdk._clock import now_us
from codon_sdk._warn import warn_once
from codon_sdk.errors import (
    CanonicalEncodingError,
    LedgerError,
    RunNotFoundError,
    WorkloadRegistrationError,
)
from codon_sdk.identity import canonical_bytes, revive
from codon_sdk.ledger import (
    CACHE_HIT,
    NODE_COMPLETED,
    RUN_STARTED,
    STATE_UPDATED,
    TOKEN_DEQUEUED,
    TOKEN_ENQUEUED,
    LedgerEvent,
    leaf_hash,
    parse_entry,
)
from codon_sdk.runtime._handle import NodeRuntime
from codon_sdk.runtime._unseal import has_markers
from codon_sdk.stores import CacheEntry, LedgerStore

if TYPE_CHECKING:  # pragma: no cover
    from codon_sdk.runtime._engine import NodeDef, QueueItem, Run

__all__ = ["CachePolicy", "RunCache", "check_ttl", "checked_cache", "publish"]

_log = logging.getLogger("codon_sdk.cache")
_WINDOW: Final = 8  # entries read before a source's node_completed, in one read


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """Reuse a node's recorded outcome for an input it already completed on.

    ``ttl``: seconds an entry serves (None: until the node's logic id changes).
    ``key``: the names of shared-state keys whose values join the token payload in
    the cache key (a node that reads state must name what it reads).

    >>> CachePolicy(ttl=3600, key=["locale"])
    CachePolicy(ttl=3600, key=('locale',))
    """

    ttl: float | None = None
    key: Sequence[str] = ()

    def __post_init__(self) -> None:
        check_ttl("CachePolicy", self.ttl)
        keys = [self.key] if isinstance(self.key, str) else self.key
        try:
            chosen = tuple(keys)
        except TypeError:
            chosen = (self.key,)  # type: ignore[assignment]
        if any(not isinstance(k, str) or not k for k in chosen) or len(set(chosen)) < len(chosen):
            raise WorkloadRegistrationError(
                f"CachePolicy key must name distinct state keys (non-empty strings), "
                f"got {self.key!r}"
            )
        object.__setattr__(self, "key", chosen)


def publish(
    run: Run,
    store: LedgerStore | None,
    own: dict[str, CacheEntry],
    key: str,
    node: NodeDef,
    seq: int,
    entry: bytes,
    *,
    replace: bool,
) -> None:
    """Index the event ``entry`` at ``seq`` of ``run`` under ``key``: in the run's own
    entries, and in ``store`` once the source is durable (no other run is ever pointed at
    an event the store does not hold yet)."""
    cached = CacheEntry(
        key=key,
        node_id=node.spec.id,
        run_id=run.run_id,
        seq=seq,
        leaf=leaf_hash(entry).hex(),
        created_us=now_us(),
    )
    own[key] = cached
    if store is not None:
        run.rec.barrier()
        store.put_cache(cached, replace=replace)


def check_ttl(policy: str, ttl: object) -> None:
    """A cache policy's ``ttl``: a positive, finite number of seconds, or None."""
    if ttl is not None and (
        isinstance(ttl, bool)
        or not isinstance(ttl, (int, float))
        or not math.isfinite(ttl)
        or ttl <= 0
    ):
        raise WorkloadRegistrationError(
            f"{policy} ttl must be a positive number of seconds or None, got {ttl!r}"
        )


def checked_cache(name: str, cache: object) -> CachePolicy | None:
    """``add_node``'s ``cache=``: a :class:`CachePolicy` or None."""
    if cache is None or isinstance(cache, CachePolicy):
        return cache
    raise WorkloadRegistrationError(
        f"node {name!r}: cache must be a CachePolicy (for example CachePolicy(ttl=3600)) or "
        f"None, got {cache!r}"
    )


@dataclass(frozen=True, slots=True)
class Outcome:
    """A recorded activation's outcome: emitted (target, prepared payload, metadata), result."""

    emitted: tuple[tuple[str, Any, Any], ...]
    result: Any
    source: dict[str, Any]
    key: str = ""


class RunCache:
    """One run's view of the cache: its lookups, its puts, and (replay) recorded hits."""

    def __init__(self, store: LedgerStore | None) -> None:
        self.store = store
        self._own: dict[str, CacheEntry] = {}  # entries this run wrote (its own ledger)
        self._pending: dict[str, tuple[str, bool]] = {}  # token id -> (key, replace)
        self._replay: dict[str, Outcome] | None = None
        self._firsts: dict[str, bytes] = {}  # source run id -> its run_started, read once

    @classmethod
    def of(cls, nodes: Iterable[NodeDef], store: LedgerStore | None) -> RunCache | None:
        """The cache of a run of ``nodes``, or None when no node has a cache policy."""
        return cls(store) if any(n.cache is not None for n in nodes) else None

    @classmethod
    def for_replay(cls, events: Sequence[LedgerEvent]) -> RunCache | None:
        """A replay's cache: the recorded hits served again by token id (None: no hits)."""
        hits = {e.token_id: e for e in events if e.type == CACHE_HIT and e.token_id}
        if not hits:
            return None
        cache = cls(None)
        cache._replay = {}
        for tid, hit in hits.items():
            done = [e for e in events if e.type == NODE_COMPLETED and e.token_id == tid]
            if not done:
                continue  # the hit never completed: the activation runs again
            emitted = tuple(
                (e.target or "", e.payload, e.metadata or None)
                for e in events
                if e.type == TOKEN_ENQUEUED and e.parent_token_id == tid and e.node == hit.node
            )
            source = dict(hit.metadata.get("source") or {})
            key = str(hit.metadata.get("key") or "")
            cache._replay[tid] = Outcome(emitted, done[-1].payload, source, key)
        return cache

    # ------------------------------------------------------------------ the engine's hooks

    def serve(self, run: Run, node: NodeDef, item: QueueItem, attempt: int) -> bool:
        """Complete the activation of ``item`` from the cache, if it can be: True if served."""
        tid = item[0]
        if self._replay is not None:
            outcome = self._replay.get(tid)
            return outcome is not None and self._complete(run, node, item, attempt, outcome)
        policy = node.cache
        if policy is None or run.replaying:
            return False
        key = self._key(run, node, item[2], policy.key)
        if key is None:
            return False
        entry = self._own.get(key)
        if entry is None and self.store is not None:
            entry = self.store.lookup_cache(key)
        if entry is None:
            self._pending[tid] = (key, False)
            return False
        outcome = self._check(run, node, entry, key, policy)
        if outcome is None:
            self._pending[tid] = (key, True)
            return False
        return self._complete(run, node, item, attempt, outcome)

    def completed(self, run: Run, node: NodeDef, tid: str, handle: NodeRuntime) -> None:
        """After a miss completed: index its ``node_completed`` under the activation's key."""
        pending = self._pending.pop(tid, None)
        if pending is None or handle._stop is not None:
            return
        key, replace = pending
        rec = run.rec
        found = _activation(rec, tid)
        if found is None:
            return
        seq, entry, events = found
        # a state change recorded while it ran may be its own (with several activations at
        # once, a write is recorded by the next completion): its writes are not served back
        if any(e.type == STATE_UPDATED for e in events):
            return
        served = [e.entry for e in events if e.type == TOKEN_ENQUEUED and e.parent_token_id == tid]
        if has_markers([entry, *served]) != (False, False):
            return
        publish(run, self.store, self._own, key, node, seq, entry, replace=replace)

    # ------------------------------------------------------------------ parts

    def _key(self, run: Run, node: NodeDef, payload: Any, keys: Sequence[str]) -> str | None:
        state = run.state
        try:
            body = canonical_bytes(
                {
                    "v": 1,
                    "node": node.spec.id,
                    "input": payload,
                    "state": [[k, k in state, state.get(k)] for k in keys],
                }
            )
        except CanonicalEncodingError:
            return None  # an input with no canonical form is never cached
        return hashlib.sha256(body).hexdigest()

    def _check(
        self, run: Run, node: NodeDef, entry: CacheEntry, key: str, policy: CachePolicy
    ) -> Outcome | None:
        """The outcome ``entry`` points at, checked against its source; None: a miss."""
        if (
            not isinstance(entry, CacheEntry)
            or not isinstance(entry.created_us, int)
            or type(entry.seq) is not int
            or entry.seq < 1
            or not isinstance(entry.run_id, str)
            or not isinstance(entry.leaf, str)
        ):
            return self._miss(key, "the cache entry is malformed")
        if entry.node_id != node.spec.id:
            return self._miss(key, "the cache entry names another node logic id")
        if policy.ttl is not None and now_us() - entry.created_us > policy.ttl * 1_000_000:
            return None  # expired: a plain miss, no warning
        try:
            first, window = self._read(run, entry)
            return _outcome(node, entry, first, window)
        except RunNotFoundError:
            return self._miss(key, f"its source run {entry.run_id!r} is not in the store")
        except (LedgerError, LookupError, TypeError, ValueError, AttributeError) as exc:
            return self._miss(key, str(exc))

    def _read(self, run: Run, entry: CacheEntry) -> tuple[bytes, list[bytes]]:
        """The source's ``run_started`` and its entries up to the ``node_completed``, enough
        of them to hold the activation's emitted tokens."""
        first, window = self._window(run, entry, _WINDOW)
        if window:
            count = parse_entry(window[-1]).metadata.get("emissions", 0)
            if (
                type(count) is int
                and count + 2 > len(window)  # the window may not hold every emitted token
                and len(window) < entry.seq + 1
            ):
                first, window = self._window(run, entry, count + 2)
        return first, window

    def _window(self, run: Run, entry: CacheEntry, span: int) -> tuple[bytes, list[bytes]]:
        start = max(entry.seq - span, 0)
        if entry.run_id == run.run_id:
            rec = run.rec
            if entry.seq >= len(rec):
                raise LookupError(f"seq {entry.seq} is past the end of its source run")
            return rec.entry(0), [rec.entry(s) for s in range(start, entry.seq + 1)]
        if self.store is None:
            raise LookupError(f"run {entry.run_id!r} is not in this process")
        window = self.store.read(entry.run_id, start, entry.seq + 1)
        first = self._firsts.get(entry.run_id)
        if first is None:
            first = self._firsts[entry.run_id] = self.store.read(entry.run_id, 0, 1)[0]
        return first, window

    @staticmethod
    def _miss(key: str, why: str) -> None:
        warn_once(
            _log,
            f"cache:{key}",
            "cache entry %s… is not used (%s); the node runs and its result replaces the entry",
            key[:16],
            why,
        )
        return

    @staticmethod
    def _complete(run: Run, node: NodeDef, item: QueueItem, attempt: int, outcome: Outcome) -> bool:
        tid = item[0]
        if any(target not in node.successors for target, _, _ in outcome.emitted):
            return False  # the graph changed around the node: run it
        meta: dict[str, Any] = {"source": outcome.source}
        if outcome.key:
            meta["key"] = outcome.key
        run.rec.append(CACHE_HIT, now_us(), node.name, tid, metadata=meta)
        handle = NodeRuntime(run, node, item, attempt)
        if outcome.emitted:
            emitted = handle._emitted = []
            for target, prepared, emeta in outcome.emitted:
                emitted.append((run.next_token_id(), target, live(prepared, run), prepared, emeta))
                if emeta is not None:
                    handle._emit_metadata = True
        run._complete(node, tid, handle, live(outcome.result, run), outcome.result)
        return True


def live(prepared: Any, run: Run) -> Any:
    """A recorded value as code receives it: blobs it refers to read back, tags revived."""
    return revive(prepared if run.blobs is None else run.blobs.inline(prepared))


def _activation(rec: Any, tid: str) -> tuple[int, bytes, list[LedgerEvent]] | None:
    """The seq and bytes of the ``node_completed`` of token ``tid`` (recorded last, or
    nearly), and the events from its ``token_dequeued`` on; None if not found."""
    end = rec.seq - 1
    for seq in range(end, max(end - 64, -1), -1):
        entry = rec.entry(seq)
        done = parse_entry(entry)
        if done.type == NODE_COMPLETED and done.token_id == tid:
            break
    else:
        return None
    events: list[LedgerEvent] = []
    for before in range(seq - 1, -1, -1):
        ev = parse_entry(rec.entry(before))
        if ev.type == TOKEN_DEQUEUED and ev.token_id == tid:
            return seq, entry, events
        events.append(ev)
    return None


def _outcome(node: NodeDef, entry: CacheEntry, first: bytes, window: list[bytes]) -> Outcome:
    """The outcome of the activation ``entry`` points at, from its source's entries
    ``window`` (ending at its ``node_completed``) and ``first`` (its ``run_started``)."""
    if not window or leaf_hash(window[-1]).hex() != entry.leaf:
        raise ValueError(f"the source event's hash does not match (run {entry.run_id!r})")
    events = [parse_entry(e) for e in window]
    for before, after in zip(window, events[1:], strict=False):
        if after.prev != leaf_hash(before).hex():
            raise ValueError(f"the source run {entry.run_id!r} does not chain at seq {after.seq}")
    done = events[-1]
    if done.type != NODE_COMPLETED or done.seq != entry.seq or done.run_id != entry.run_id:
        raise ValueError(f"seq {entry.seq} of run {entry.run_id!r} is not a node_completed")
    started = parse_entry(first)
    nodes = started.metadata.get("nodes") if started.type == RUN_STARTED else None
    recorded = nodes.get(done.node) if isinstance(nodes, dict) else None
    if not isinstance(recorded, dict) or recorded.get("id") != node.spec.id:
        raise ValueError(f"the source run {entry.run_id!r} ran another logic for this node")
    tid = done.token_id
    count = done.metadata.get("emissions", 0)
    emitted = [e for e in events if e.type == TOKEN_ENQUEUED and e.parent_token_id == tid]
    if type(count) is not int or len(emitted) != count:
        raise ValueError("the source activation's emitted tokens are not where expected")
    if any(e.type == STATE_UPDATED and e.token_id == tid for e in events):
        raise ValueError("the source activation changed the shared state")
    if has_markers([done.entry, *(e.entry for e in emitted)]) != (False, False):
        raise ValueError("the source activation's outcome holds masked or sealed values")
    source = {"run_id": entry.run_id, "seq": entry.seq, "leaf": entry.leaf}
    return Outcome(
        tuple((e.target or "", e.payload, e.metadata or None) for e in emitted),
        done.payload,
        source,
        entry.key,
    )
