"""The recorder: sequences one run's events, encodes and hash-chains them, keeps them, ships them.

Every event of a run passes through here and gets the next ``seq``, the ``prev``
link and its canonical entry bytes. :meth:`Recorder.append` handles any event
through a dict and ``orjson``; the four events every activation writes
(``token_dequeued``, ``token_enqueued``, ``state_updated``, ``node_completed``)
have fixed-shape encoders that fill a byte template instead. The tests prove
the two paths byte-identical; the templates only exist because they halve the
engine's cost per activation.

Entries are kept in exact-size chunks (see ``_Entries``), each behind the 0x00 leaf
prefix it is hashed with (a few bytes of overhead per event, which keeps a
100,000-step run small), and handed to the run's sink, a ledger store,
according to the durability mode:

* ``"sync"``: at each step boundary (:meth:`step_boundary`) everything the activation
  produced is committed in one transaction before the next activation starts;
* ``"batch"``: the same commits, made by a writer thread behind the engine (group commit);
* ``"exit"``: events are written once, when the run ends, fails or pauses.

Values given to the recorder must already be :func:`prepare`-d: the caller
converts user data where it enters the runtime, so an unencodable value fails
there, before anything is written.
"""

from __future__ import annotations

import hashlib
import threading
import time
from array import array
from binascii import hexlify
from bisect import bisect_right
from collections.abc import Iterator
from itertools import accumulate
from typing import Any, Final, Protocol

import orjson

from codon_sdk.errors import PayloadTooLargeError
from codon_sdk.identity import unencodable
from codon_sdk.ledger import (
    FORMAT_VERSION,
    NODE_COMPLETED,
    STATE_UPDATED,
    TOKEN_DEQUEUED,
    TOKEN_ENQUEUED,
)
from codon_sdk.runtime._completions import TYPE_AT_END, Completions, decode_type
from codon_sdk.telemetry import span_ids

__all__ = [
    "ABSENT",
    "DEFAULT_MAX_EVENT_BYTES",
    "DURABILITY_MODES",
    "EntrySink",
    "LockedRecorder",
    "Recorder",
    "json_str",
]

DEFAULT_MAX_EVENT_BYTES: Final = 16 * 1024 * 1024
DURABILITY_MODES: Final = ("sync", "batch", "exit")
ABSENT: Final[Any] = object()
_SORT = orjson.OPT_SORT_KEYS
_COMPACT_EVERY = 256
_sha256 = hashlib.sha256
_dumps = orjson.dumps

# Fixed-shape entries, keys in canonical (sorted) order, with the 0x00 leaf prefix. The
# two bare %s take the optional ``"span_id":"...",`` and ``"trace_id":"...",`` members
# (empty without trace ids), which sort right after "seq" and right after "token_id".
_DEQ = (
    b'\x00{"node":%s,"prev":"%s","run_id":%s,"seq":%d,%s"token_id":%s,%s"ts":%d,'
    b'"type":"token_dequeued","v":1}'
)
_ENQ = (
    b'\x00{"node":%s,"parent_token_id":%s,"payload":%s,"prev":"%s","run_id":%s,"seq":%d,'
    b'%s"target":%s,"token_id":%s,%s"ts":%d,"type":"token_enqueued","v":1}'
)
_ENQ_NULL = (
    b'\x00{"node":%s,"parent_token_id":%s,"prev":"%s","run_id":%s,"seq":%d,'
    b'%s"target":%s,"token_id":%s,%s"ts":%d,"type":"token_enqueued","v":1}'
)
_STATE = (
    b'\x00{"node":%s,"payload":%s,"prev":"%s","run_id":%s,"seq":%d,%s"token_id":%s,%s"ts":%d,'
    b'"type":"state_updated","v":1}'
)
_DONE = (
    b'\x00{"metadata":{"emissions":%d},"node":%s,"payload":%s,"prev":"%s","run_id":%s,"seq":%d,'
    b'%s"token_id":%s,%s"ts":%d,"type":"node_completed","v":1}'
)
_DONE_NULL = (
    b'\x00{"metadata":{"emissions":%d},"node":%s,"prev":"%s","run_id":%s,"seq":%d,'
    b'%s"token_id":%s,%s"ts":%d,"type":"node_completed","v":1}'
)
_NO_IDS: Final = (b"", b"")


def _id_members(ids: tuple[str, str] | None, cache: list[Any]) -> tuple[bytes, bytes]:
    """The span and trace id members the templates take for ``(trace id, span id)``;
    ``cache`` keeps the last trace id's member (a run has one trace, many spans)."""
    if ids is None:
        return _NO_IDS
    trace_id, span_id = ids
    if cache[0] != trace_id:
        cache[:] = [trace_id, b'"trace_id":%s,' % _dumps(trace_id)]
    return b'"span_id":%s,' % _dumps(span_id), cache[1]


def json_str(value: str) -> bytes:
    """The JSON (and JCS) encoding of a string."""
    return _dumps(value)


def _bake(template: bytes, jnode: bytes, jrun: bytes) -> bytes:
    """A dequeue template with the node and run id filled in (``%`` escaped)."""
    return template.replace(b'"node":%s', b'"node":' + jnode.replace(b"%", b"%%"), 1).replace(
        b'"run_id":%s', b'"run_id":' + jrun.replace(b"%", b"%%"), 1
    )


def _json_value(prepared: Any) -> bytes:
    t = type(prepared)
    if t is int:
        return b"%d" % prepared
    if t is str:
        return _dumps(prepared)
    return _dumps(prepared, option=_SORT)


class _Entries:
    """A run's entries, each behind its 0x00 leaf prefix, kept as exact-size chunks.

    New entries collect in ``tail``; every ``_COMPACT_EVERY`` of them are joined
    into one ``bytes`` chunk (no spare capacity, a few bytes of index per entry),
    which is what keeps a 100,000-step run small.
    """

    __slots__ = ("chunks", "count", "firsts", "starts", "tail")

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.firsts: list[int] = []  # seq of each chunk's first entry
        self.starts = array("I")  # each entry's offset inside its chunk
        self.tail: list[bytes] = []
        self.count = 0  # entries in chunks

    def flush(self) -> None:
        tail = self.tail
        if tail:
            self.firsts.append(self.count)
            self.starts.extend(accumulate([len(e) for e in tail[:-1]], initial=0))
            self.chunks.append(b"".join(tail))
            self.count += len(tail)
            tail.clear()

    def get(self, seq: int) -> bytes:
        """Entry ``seq`` without its leaf prefix."""
        self.flush()
        n = bisect_right(self.firsts, seq) - 1
        chunk = self.chunks[n]
        following = self.firsts[n + 1] if n + 1 < len(self.firsts) else self.count
        end = len(chunk) if seq + 1 == following else self.starts[seq + 1]
        return chunk[self.starts[seq] + 1 : end]

    def iter(self, start: int = 0) -> Iterator[bytes]:
        """Entries from ``start`` on, without their leaf prefixes."""
        self.flush()
        starts, firsts = self.starts, self.firsts
        for n, chunk in enumerate(self.chunks):
            first = firsts[n]
            following = firsts[n + 1] if n + 1 < len(firsts) else self.count
            if following <= start:
                continue
            for seq in range(max(first, start), following):
                end = len(chunk) if seq + 1 == following else starts[seq + 1]
                yield chunk[starts[seq] + 1 : end]


class EntrySink(Protocol):
    """Where a run's entries go to become durable (see ``runtime/_writer.py``).

    The recorder appends every sealed entry, still behind its 0x00 leaf prefix, to
    :attr:`entries` and its leaf hash to :attr:`leaves`; the sink takes them off
    the front as it commits them.
    """

    entries: list[bytes]
    leaves: list[bytes]

    def step(self, seq: int) -> None:
        """The entries below ``seq`` form whole steps: commit them (now or soon)."""

    def barrier(self, seq: int, index: dict[str, Any]) -> None:
        """Commit everything below ``seq`` with runs-index updates; return once durable."""

    def confirm_lease(self) -> None:
        """Confirm this process still holds the run (before an effect calls out for real)."""


class Recorder:
    """Sequences, encodes, chains and keeps one run's ledger entries."""

    __slots__ = (
        "_counts",
        "_deq",
        "_done",
        "_durability",
        "_entries",
        "_fast",
        "_held",
        "_ids",
        "_jrun",
        "_jstr",
        "_leaves",
        "_pending",
        "_prev",
        "_sink",
        "_started",
        "_tpl",
        "_trace_ids",
        "_trace_member",
        "_tracing",
        "head",
        "loaded",
        "max_event_bytes",
        "run_id",
        "seq",
    )

    def __init__(
        self,
        run_id: str,
        *,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        sink: EntrySink | None = None,
        durability: str = "batch",
    ) -> None:
        self.run_id = run_id
        self.seq = 0
        self.head: bytes | None = None
        self.max_event_bytes = max_event_bytes
        self._trace_ids: tuple[str, str] | None = None
        self._tracing = False
        self._fast = False  # fixed-shape encoders usable: past seq 0, ids not read per event
        self._ids = _NO_IDS  # the template members of _trace_ids
        self._trace_member: list[Any] = [None, b""]
        self._prev: bytes | None = None
        self._jrun = json_str(run_id)
        self._jstr: dict[str, bytes] = {}
        self._entries = _Entries()
        self._held: tuple[str, str, int] | None = None
        self._deq: dict[str, bytes] = {}
        self._tpl: dict[str, tuple[bytes, bytes, bytes, bytes, bytes]] = {}
        self._sink = sink
        self._durability = durability
        #: where this process's completed activations sit in the ledger (see Completions)
        self._done = Completions(time.time_ns() // 1000)
        self._started: dict[str, int] = {}  # token id -> ts of its token_dequeued
        self._counts = dict.fromkeys((TOKEN_DEQUEUED, TOKEN_ENQUEUED, STATE_UPDATED), 0)
        self._counts[NODE_COMPLETED] = 0
        self.loaded = 0  # entries adopted from a store (a resumed run), not recorded here
        # the sink's outbox (see EntrySink): entries with their 0x00 prefix, leaf hashes
        self._pending: list[bytes] = [] if sink is None else sink.entries
        self._leaves: list[bytes] = [] if sink is None else sink.leaves

    # ------------------------------------------------------------------ the generic path

    def append(
        self,
        type_: str,
        ts: int,
        node: str | None = None,
        token_id: str | None = None,
        payload: Any = ABSENT,
        metadata: Any = None,
        target: str | None = None,
        parent_token_id: str | None = None,
        actor: str | None = None,
    ) -> int:
        """Record one event (values already prepared); return its seq."""
        if self._held is not None:
            self.flush_held()
        ev: dict[str, Any] = {
            "v": FORMAT_VERSION,
            "run_id": self.run_id,
            "seq": self.seq,
            "type": type_,
            "ts": ts,
        }
        if node is not None:
            ev["node"] = node
        if token_id is not None:
            ev["token_id"] = token_id
        if payload is not ABSENT and payload is not None:
            ev["payload"] = payload
        if metadata:
            ev["metadata"] = metadata
        if target is not None:
            ev["target"] = target
        if parent_token_id is not None:
            ev["parent_token_id"] = parent_token_id
        if actor is not None:
            ev["actor"] = actor
        ids = self._trace_ids if not self._tracing else span_ids()
        if ids is not None:
            ev["trace_id"], ev["span_id"] = ids
        if self._prev is not None:
            ev["prev"] = self._prev.decode("ascii")
        try:
            body = _dumps(ev, option=_SORT)
        except orjson.JSONEncodeError as exc:
            raise unencodable(ev, exc) from exc
        return self._seal(b"\x00" + body, type_, node)

    def _seal(self, full: bytes, type_: str, node: str | None) -> int:
        """Hash, chain and keep one entry given with its 0x00 prefix."""
        if len(full) > self.max_event_bytes:
            self._too_large(len(full), node, type_)
        leaf = _sha256(full).digest()
        seq = self.seq
        self.seq = seq + 1
        counts = self._counts
        counts[type_] = counts.get(type_, 0) + 1
        self.head = leaf
        self._prev = hexlify(leaf)
        self._fast = not self._tracing
        entries = self._entries
        entries.tail.append(full)
        if len(entries.tail) >= _COMPACT_EVERY:
            entries.flush()
        if self._sink is not None:
            self._pending.append(full)
            self._leaves.append(leaf)
        return seq

    def _too_large(self, size: int, node: str | None, type_: str = "an") -> None:
        raise PayloadTooLargeError(
            f"{type_} event of node {node!r} is {size - 1} bytes, over the limit of "
            f"{self.max_event_bytes} (max_event_bytes); keep large data out of tokens, "
            "results and state, or raise the limit"
        )

    # ------------------------------------------------------------------ the fixed-shape fast path

    def _j(self, name: str) -> bytes:
        """JSON bytes of a node name (cached: a run has few node names)."""
        try:
            return self._jstr[name]
        except KeyError:
            j = self._jstr[name] = json_str(name)
            return j

    def dequeued(self, node: str, token_id: str, ts: int) -> None:
        """Record the start of an activation.

        The entry is held until the activation's
        next event (custom event, effect, completion, failure: whichever comes
        first) and sealed with it: the same bytes, seq and timestamp, one pass
        fewer. :meth:`flush_held` writes it out early when something needs it.
        """
        if self._held is not None:
            self.flush_held()
        self._held = (node, token_id, ts)
        if not self._fast:
            self.flush_held()

    def flush_held(self) -> None:
        """Write out a held ``token_dequeued`` entry (see :meth:`dequeued`)."""
        held, self._held = self._held, None
        if held is None:
            return
        node, token_id, ts = held
        if not self._fast:
            self.append(TOKEN_DEQUEUED, ts, node, token_id)
            self._started[token_id] = ts
            return
        seq = self.seq
        self._started[token_id] = ts
        self._counts[TOKEN_DEQUEUED] += 1
        sid, tid = self._ids
        full = self._deq_template(node) % (self._prev, seq, sid, _dumps(token_id), tid, ts)
        leaf = _sha256(full).digest()
        self.seq, self._prev, self.head = seq + 1, hexlify(leaf), leaf
        tail = self._entries.tail
        tail.append(full)
        if len(tail) >= _COMPACT_EVERY:
            self._entries.flush()
        if self._sink is not None:
            self._pending.append(full)
            self._leaves.append(leaf)

    def _deq_template(self, node: str) -> bytes:
        try:
            return self._deq[node]
        except KeyError:
            template = self._deq[node] = _bake(_DEQ, self._j(node), self._jrun)
            return template

    def completion(
        self,
        node: str,
        token_id: str,
        emitted: list[tuple[str, str, Any, Any, Any]] | None,
        change: Any,
        result: Any,
        ts: int,
        with_metadata: bool = False,
    ) -> None:
        """Record a completed activation: ``token_enqueued`` per emitted token (id, target,
        payload, prepared payload, prepared metadata), ``state_updated`` when ``change``
        is not None, then ``node_completed``; all values already prepared.
        ``with_metadata``: some emitted token carries audit metadata."""
        n = 0 if emitted is None else len(emitted)
        if not self._fast or with_metadata:
            self.flush_held()
            for etid, etarget, _, eprepared, emeta in emitted or ():
                self.append(TOKEN_ENQUEUED, ts, node, etid, eprepared, emeta, etarget, token_id)
            if change is not None:
                self.append(STATE_UPDATED, ts, node, token_id, change)
            done = self.append(NODE_COMPLETED, ts, node, token_id, result, {"emissions": n})
            self._done.add(done, node, self._started.pop(token_id, ts), ts)
            return
        # the hot path, written out: format, hash, chain, keep; three times at most
        tail, held = self._entries.tail, self._held
        mark = len(tail)
        try:
            self._complete_fast(node, token_id, emitted, change, result, ts, n)
        except orjson.JSONEncodeError as exc:  # a lone surrogate: undo, then say where
            self._undo(len(tail) - mark)
            self._held = held
            payloads = [e[3] for e in emitted or ()]
            raise unencodable(
                {"emitted": payloads, "state": change, "result": result}, exc
            ) from exc

    def _undo(self, k: int) -> None:
        """Forget the last ``k`` entries kept but not yet chained (``seq`` not advanced): the
        sink's writer only ever takes entries off the front of its outbox."""
        if k > 0:
            del self._entries.tail[-k:]
            if self._sink is not None:
                del self._pending[-k:], self._leaves[-k:]

    def _complete_fast(
        self,
        node: str,
        token_id: str,
        emitted: list[tuple[str, str, Any, Any, Any]] | None,
        change: Any,
        result: Any,
        ts: int,
        n: int,
    ) -> None:
        """The fixed-shape path of :meth:`completion` (its writes are undone by the caller if
        ``orjson`` refuses a value)."""
        try:
            enq, enq_null, state_t, done_t, done_null = self._tpl[node]
        except KeyError:
            enq, enq_null, state_t, done_t, done_null = self._templates(node)
        jtok = _dumps(token_id)
        sid, tid = self._ids
        prev, seq, leaf = self._prev, self.seq, self.head
        tail = self._entries.tail
        pending = self._pending if self._sink is not None else None
        leaves = self._leaves
        limit = self.max_event_bytes
        held = self._held
        t0 = -1
        if held is not None:
            self._held = None
            if held[1] == token_id:
                t0 = held[2]
            else:  # another activation's start (not seen with one activation at a time)
                self._started[held[1]] = held[2]
            jheld = jtok if held[1] == token_id else _dumps(held[1])
            full = self._deq_template(held[0]) % (prev, seq, sid, jheld, tid, held[2])
            leaf = _sha256(full).digest()
            prev = hexlify(leaf)
            tail.append(full)
            if pending is not None:
                pending.append(full)
                leaves.append(leaf)
            seq += 1
        for etid, etarget, _, eprepared, _meta in emitted or ():
            jtarget = self._j(etarget)
            if eprepared is None:
                full = enq_null % (jtok, prev, seq, sid, jtarget, _dumps(etid), tid, ts)
            else:
                jp = b"%d" % eprepared if type(eprepared) is int else _json_value(eprepared)
                full = enq % (jtok, jp, prev, seq, sid, jtarget, _dumps(etid), tid, ts)
            if len(full) > limit:
                self._keep_chain(seq, prev, leaf)
                self._too_large(len(full), node, TOKEN_ENQUEUED)
            leaf = _sha256(full).digest()
            prev = hexlify(leaf)
            tail.append(full)
            if pending is not None:
                pending.append(full)
                leaves.append(leaf)
            seq += 1
        if change is not None:
            full = state_t % (_dumps(change, option=_SORT), prev, seq, sid, jtok, tid, ts)
            if len(full) > limit:
                self._keep_chain(seq, prev, leaf)
                self._too_large(len(full), node, STATE_UPDATED)
            leaf = _sha256(full).digest()
            prev = hexlify(leaf)
            tail.append(full)
            if pending is not None:
                pending.append(full)
                leaves.append(leaf)
            seq += 1
        if result is None:
            full = done_null % (n, prev, seq, sid, jtok, tid, ts)
        else:
            jr = b"%d" % result if type(result) is int else _json_value(result)
            full = done_t % (n, jr, prev, seq, sid, jtok, tid, ts)
        if len(full) > limit:
            self._keep_chain(seq, prev, leaf)
            self._too_large(len(full), node, NODE_COMPLETED)
        leaf = _sha256(full).digest()
        tail.append(full)
        if pending is not None:
            pending.append(full)
            leaves.append(leaf)
        self.seq, self._prev, self.head = seq + 1, hexlify(leaf), leaf
        counts = self._counts
        if held is not None:
            counts[TOKEN_DEQUEUED] += 1
        if n:
            counts[TOKEN_ENQUEUED] += n
        if change is not None:
            counts[STATE_UPDATED] += 1
        counts[NODE_COMPLETED] += 1
        if t0 < 0:
            t0 = self._started.pop(token_id, ts)
        record = self._done
        ix = record.ix.get(node)
        try:  # Completions.add, inlined
            record.start.append(t0 - record.base)
            record.dur.append(ts - t0)
        except OverflowError:  # a value past 4 bytes: the generic path widens the columns
            if len(record.start) > len(record.done):
                record.start.pop()
            record.add(seq, node, t0, ts)
        else:
            record.nodes.append(record.node_ix(node) if ix is None else ix)
            record.done.append(seq)
        if len(tail) >= _COMPACT_EVERY:
            self._entries.flush()

    def enqueued(
        self,
        origin: str,
        token_id: str,
        payload: Any,
        metadata: Any,
        target: str,
        parent_token_id: str | None,
        ts: int,
    ) -> None:
        """Record a ``token_enqueued`` with any metadata (values already prepared): what
        :meth:`append` writes, assembled in canonical key order without building a dict.
        Integrations (LangGraph) enqueue each task's token this way."""
        if not self._fast:
            self.append(
                TOKEN_ENQUEUED, ts, origin, token_id, payload, metadata, target, parent_token_id
            )
            return
        if self._held is not None:
            self.flush_held()
        parts = [b"\x00{"]
        try:
            if metadata:
                parts += (b'"metadata":', _dumps(metadata, option=_SORT), b",")
            parts += (b'"node":', self._j(origin), b",")
            if parent_token_id is not None:
                parts += (b'"parent_token_id":', _dumps(parent_token_id), b",")
            if payload is not None and payload is not ABSENT:
                parts += (b'"payload":', _json_value(payload), b",")
        except orjson.JSONEncodeError as exc:
            raise unencodable({"payload": payload, "metadata": metadata}, exc) from exc
        sid, tid = self._ids
        parts.append(
            b'"prev":"%s","run_id":%s,"seq":%d,%s"target":%s,"token_id":%s,%s"ts":%d,'
            b'"type":"token_enqueued","v":1}'
            % (self._prev, self._jrun, self.seq, sid, self._j(target), _dumps(token_id), tid, ts)
        )
        self._seal(b"".join(parts), TOKEN_ENQUEUED, origin)

    def _templates(self, node: str) -> tuple[bytes, bytes, bytes, bytes, bytes]:
        """The completion templates of ``node`` with its name and the run id baked in."""
        jnode, jrun = self._j(node), self._jrun
        baked = (
            _bake(_ENQ, jnode, jrun),
            _bake(_ENQ_NULL, jnode, jrun),
            _bake(_STATE, jnode, jrun),
            _bake(_DONE, jnode, jrun),
            _bake(_DONE_NULL, jnode, jrun),
        )
        self._tpl[node] = baked
        return baked

    def _keep_chain(self, seq: int, prev: bytes | None, leaf: bytes | None) -> None:
        """Store the chain position reached before an entry turned out too large."""
        self.seq, self._prev, self.head = seq, prev, leaf

    # ------------------------------------------------------------------ durability

    def commit(self) -> None:
        """Tell the sink everything recorded so far forms whole steps."""
        if self._held is not None:
            self.flush_held()
        if self._sink is not None:
            self._sink.step(self.seq)

    def barrier(self, **index: Any) -> None:
        """Wait until everything recorded so far is durable, with runs-index updates
        (``status``, ``finished_us``, ``release``) committed alongside."""
        if self._sink is not None:
            if self._held is not None:
                self.flush_held()
            self._sink.barrier(self.seq, index)

    def confirm_lease(self) -> None:
        """Before a recorded effect calls out: a durable run confirms with its store that this
        process still holds it (raises ``LeaseLostError`` otherwise); no-op without a sink."""
        if self._sink is not None:
            self._sink.confirm_lease()

    def step_boundary(self) -> None:
        """Called by the engine after each activation: the step's events become the sink's to
        commit (``sync``: now, in one transaction; ``batch``: by the writer thread soon)."""
        if self._sink is not None and self._durability != "exit":
            if self._held is not None:
                self.flush_held()
            self._sink.step(self.seq)

    def load(self, entries: list[bytes]) -> None:
        """Adopt already-recorded entries (a resumed run) as the start of this ledger."""
        for entry in entries:
            self._entries.tail.append(b"\x00" + entry)
            if len(self._entries.tail) >= _COMPACT_EVERY:
                self._entries.flush()
        self.loaded = len(entries)
        if entries:
            self.head = _sha256(b"\x00" + entries[-1]).digest()
            self._prev = hexlify(self.head)
            self._fast = not self._tracing
        self.seq = len(entries)

    # ------------------------------------------------------------------ reading

    @property
    def durable(self) -> bool:
        """Whether entries go to a store (a sink) beyond this process's memory."""
        return self._sink is not None

    @property
    def tracing(self) -> bool:
        """Whether events take their trace and span ids from the current OpenTelemetry span."""
        return self._tracing

    @tracing.setter
    def tracing(self, value: bool) -> None:
        self.flush_held()
        self._tracing = value
        self._fast = not value and self._prev is not None

    @property
    def trace_ids(self) -> tuple[str, str] | None:
        """(trace id, span id) stamped on events recorded from now on, or None."""
        return self._trace_ids

    @trace_ids.setter
    def trace_ids(self, value: tuple[str, str] | None) -> None:
        if self._held is not None:  # a held dequeue carries the ids it was recorded under
            self.flush_held()
        self._trace_ids = value
        self._ids = _id_members(value, self._trace_member)

    def __len__(self) -> int:
        self.flush_held()
        return self.seq

    @property
    def completions(self) -> Completions | None:
        """Where the activations completed in this process sit in the ledger, or None when
        the ledger also holds entries this recorder did not record (a resumed run's start)."""
        return None if self.loaded else self._done

    def type_counts(self) -> dict[str, int]:
        """How many entries of each type were recorded here (counted as they were sealed)."""
        return {name: n for name, n in self._counts.items() if n}

    def entry_types(self) -> list[str]:
        """The ``type`` of every entry, in order, read off the bytes without decoding them
        (entries recorded here are canonical; see ``_completions.TYPE_AT_END``)."""
        self.flush_held()
        entries = self._entries
        entries.flush()
        types: list[str] = []
        known: dict[bytes, str] = {}
        for chunk in entries.chunks:
            for raw in TYPE_AT_END.findall(chunk):
                name = known.get(raw)
                if name is None:
                    name = known[raw] = decode_type(raw)
                types.append(name)
        return types

    def entry(self, seq: int) -> bytes:
        """The verbatim entry bytes of event ``seq`` (without the leaf prefix)."""
        self.flush_held()
        return self._entries.get(seq)

    def entries(self, start: int = 0) -> Iterator[bytes]:
        """The verbatim entry bytes, in order."""
        self.flush_held()
        return self._entries.iter(start)

    @property
    def prev(self) -> str | None:
        """Hex leaf hash of the last event (what the next event's ``prev`` will be)."""
        return None if self._prev is None else self._prev.decode("ascii")

    @property
    def head_hex(self) -> str | None:
        return None if self.head is None else self.head.hex()


class LockedRecorder(Recorder):
    """A recorder safe to record into from worker threads (``max_concurrency`` > 1)."""

    __slots__ = ("_lock",)

    def __init__(self, run_id: str, **kwargs: Any) -> None:
        super().__init__(run_id, **kwargs)
        self._lock = threading.RLock()

    def append(self, *args: Any, **kwargs: Any) -> int:
        with self._lock:
            return super().append(*args, **kwargs)

    def dequeued(self, node: str, token_id: str, ts: int) -> None:
        with self._lock:
            self.flush_held()  # with several activations at once, nothing is held back
            super().dequeued(node, token_id, ts)
            super().flush_held()

    def flush_held(self) -> None:
        with self._lock:
            super().flush_held()

    def completion(self, *args: Any) -> None:
        with self._lock:
            super().completion(*args)

    def enqueued(self, *args: Any) -> None:
        with self._lock:
            super().enqueued(*args)

    def commit(self) -> None:
        with self._lock:
            super().commit()

    def step_boundary(self) -> None:
        with self._lock:  # seq and the outbox agree only between two recordings
            super().step_boundary()

    def barrier(self, **index: Any) -> None:
        with self._lock:
            super().barrier(**index)
