"""The recorder: sequences one run's events, encodes and hash-chains them, keeps them, ships them.

Every event of a run passes through here and gets the next ``seq``, the ``prev``
link and its canonical entry bytes. :meth:`Recorder.append` handles any event
through a dict and ``orjson``; the four events every activation writes
(``token_dequeued``, ``token_enqueued``, ``state_updated``, ``node_completed``)
have fixed-shape encoders that fill a byte template instead. The tests prove
the two paths byte-identical; the templates only exist because they halve the
engine's cost per activation.

Entries are kept back to back in one ``bytearray``, each behind the 0x00 leaf
prefix it is hashed with (a few bytes of overhead per event, which keeps a
100,000-step run small), and handed to the run's sink, a ledger store,
according to the durability mode:

* ``"sync"``: every event is written before the call that recorded it returns;
* ``"batch"``: events are written at each step boundary (:meth:`step_boundary`);
* ``"exit"``: events are written once, when the run ends, fails or pauses.

Values given to the recorder must already be :func:`prepare`-d: the caller
converts user data where it enters the runtime, so an unencodable value fails
there, before anything is written.
"""

from __future__ import annotations

import hashlib
import threading
from array import array
from binascii import hexlify
from collections.abc import Iterator
from itertools import accumulate, islice
from typing import Any, Final, Protocol

import orjson

from codon_sdk.errors import PayloadTooLargeError
from codon_sdk.ledger._events import (
    FORMAT_VERSION,
    NODE_COMPLETED,
    STATE_UPDATED,
    TOKEN_DEQUEUED,
    TOKEN_ENQUEUED,
)
from codon_sdk.telemetry._tracing import span_ids

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

# Fixed-shape entries, keys in canonical (sorted) order, with the 0x00 leaf prefix.
_DEQ = (
    b'\x00{"node":%s,"prev":"%s","run_id":%s,"seq":%d,"token_id":%s,"ts":%d,'
    b'"type":"token_dequeued","v":1}'
)
_ENQ = (
    b'\x00{"node":%s,"parent_token_id":%s,"payload":%s,"prev":"%s","run_id":%s,"seq":%d,'
    b'"target":%s,"token_id":%s,"ts":%d,"type":"token_enqueued","v":1}'
)
_STATE = (
    b'\x00{"node":%s,"payload":%s,"prev":"%s","run_id":%s,"seq":%d,"token_id":%s,"ts":%d,'
    b'"type":"state_updated","v":1}'
)
_DONE = (
    b'\x00{"metadata":{"emissions":%d},"node":%s,"payload":%s,"prev":"%s","run_id":%s,"seq":%d,'
    b'"token_id":%s,"ts":%d,"type":"node_completed","v":1}'
)
_DONE_NULL = (
    b'\x00{"metadata":{"emissions":%d},"node":%s,"prev":"%s","run_id":%s,"seq":%d,'
    b'"token_id":%s,"ts":%d,"type":"node_completed","v":1}'
)


def json_str(value: str) -> bytes:
    """The JSON (and JCS) encoding of a string."""
    return _dumps(value)


def _json_value(prepared: Any) -> bytes:
    t = type(prepared)
    if t is int:
        return b"%d" % prepared
    if t is str:
        return _dumps(prepared)
    return _dumps(prepared, option=_SORT)


class EntrySink(Protocol):
    """Where a run's entries go to become durable (see ``runtime/_writer.py``)."""

    def write(self, entries: list[tuple[int, bytes, bytes]], **index: Any) -> None:
        """Take ``(seq, entry bytes, leaf hash)`` triples, in order, with runs-index updates."""

    def flush(self) -> None:
        """Return once everything written is durable; raise if the store failed."""


class Recorder:
    """Sequences, encodes, chains and keeps one run's ledger entries."""

    __slots__ = (
        "_buf",
        "_durability",
        "_fast",
        "_jrun",
        "_jstr",
        "_offsets",
        "_pending",
        "_prev",
        "_sink",
        "_tail",
        "_trace_ids",
        "_tracing",
        "head",
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
        self._fast = False  # fixed-shape encoders usable: past seq 0 and no trace ids to add
        self._prev: bytes | None = None
        self._jrun = json_str(run_id)
        self._jstr: dict[str, bytes] = {}
        self._buf = bytearray()
        self._offsets = array("Q", [0])
        self._tail: list[bytes] = []
        self._sink = sink
        self._durability = durability
        self._pending: list[tuple[int, bytes, bytes]] = []

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
        return self._seal(b"\x00" + _dumps(ev, option=_SORT), type_, node)

    def _seal(self, full: bytes, type_: str, node: str | None) -> int:
        """Hash, chain and keep one entry given with its 0x00 prefix."""
        if len(full) > self.max_event_bytes:
            raise PayloadTooLargeError(
                f"{type_} event of node {node!r} is {len(full) - 1} bytes, over the limit of "
                f"{self.max_event_bytes} (max_event_bytes); keep large data out of tokens, "
                "results and state, or raise the limit"
            )
        leaf = _sha256(full).digest()
        seq = self.seq
        self.seq = seq + 1
        self.head = leaf
        self._prev = hexlify(leaf)
        self._fast = self._trace_ids is None and not self._tracing
        tail = self._tail
        tail.append(full)
        if len(tail) >= _COMPACT_EVERY:
            self._compact()
        if self._sink is not None:
            self._pending.append((seq, full[1:], leaf))
            if self._durability == "sync":
                self.commit()
        return seq

    def _compact(self) -> None:
        """Move recent entries into the contiguous buffer (amortised over ``_COMPACT_EVERY``)."""
        tail = self._tail
        if tail:
            buf = self._buf
            self._offsets.extend(islice(accumulate(map(len, tail), initial=len(buf)), 1, None))
            buf += b"".join(tail)
            tail.clear()

    # ------------------------------------------------------------------ the fixed-shape fast path

    def _j(self, name: str) -> bytes:
        """JSON bytes of a node name (cached: a run has few node names)."""
        try:
            return self._jstr[name]
        except KeyError:
            j = self._jstr[name] = json_str(name)
            return j

    def dequeued(self, node: str, token_id: str, ts: int) -> int:
        if not self._fast:
            return self.append(TOKEN_DEQUEUED, ts, node, token_id)
        full = _DEQ % (self._j(node), self._prev, self._jrun, self.seq, _dumps(token_id), ts)
        return self._seal(full, TOKEN_DEQUEUED, node)

    def enqueued(
        self,
        node: str,
        token_id: str,
        payload: Any,
        metadata: Any,
        target: str,
        parent: str | None,
        ts: int,
    ) -> int:
        if metadata or payload is None or parent is None or not self._fast:
            return self.append(
                TOKEN_ENQUEUED, ts, node, token_id, payload, metadata, target, parent
            )
        jpayload = b"%d" % payload if type(payload) is int else _json_value(payload)
        full = _ENQ % (
            self._j(node),
            _dumps(parent),
            jpayload,
            self._prev,
            self._jrun,
            self.seq,
            self._j(target),
            _dumps(token_id),
            ts,
        )
        return self._seal(full, TOKEN_ENQUEUED, node)

    def state_updated(self, node: str, token_id: str, change: Any, ts: int) -> int:
        if not self._fast:
            return self.append(STATE_UPDATED, ts, node, token_id, change)
        full = _STATE % (
            self._j(node),
            _dumps(change, option=_SORT),
            self._prev,
            self._jrun,
            self.seq,
            _dumps(token_id),
            ts,
        )
        return self._seal(full, STATE_UPDATED, node)

    def completed(self, node: str, token_id: str, result: Any, emissions: int, ts: int) -> int:
        if not self._fast:
            return self.append(NODE_COMPLETED, ts, node, token_id, result, {"emissions": emissions})
        if result is None:
            full = _DONE_NULL % (
                emissions,
                self._j(node),
                self._prev,
                self._jrun,
                self.seq,
                _dumps(token_id),
                ts,
            )
        else:
            jresult = b"%d" % result if type(result) is int else _json_value(result)
            full = _DONE % (
                emissions,
                self._j(node),
                jresult,
                self._prev,
                self._jrun,
                self.seq,
                _dumps(token_id),
                ts,
            )
        return self._seal(full, NODE_COMPLETED, node)

    # ------------------------------------------------------------------ durability

    def commit(self, **index: Any) -> None:
        """Hand pending entries (and runs-index updates such as ``status``) to the sink."""
        if self._sink is not None and (self._pending or index):
            pending, self._pending = self._pending, []
            self._sink.write(pending, **index)

    def barrier(self, **index: Any) -> None:
        """Commit and wait until everything recorded so far is durable."""
        if self._sink is not None:
            self.commit(**index)
            self._sink.flush()

    def step_boundary(self) -> None:
        """Called by the engine after each activation: commits in ``batch`` durability."""
        if self._durability == "batch" and self._pending:
            self.commit()

    def load(self, entries: list[bytes]) -> None:
        """Adopt already-recorded entries (a resumed run) as the start of this ledger."""
        self._compact()
        for entry in entries:
            self._buf += b"\x00"
            self._buf += entry
            self._offsets.append(len(self._buf))
        if entries:
            self.head = _sha256(b"\x00" + entries[-1]).digest()
            self._prev = hexlify(self.head)
            self._fast = self._trace_ids is None and not self._tracing
        self.seq = len(entries)

    # ------------------------------------------------------------------ reading

    @property
    def tracing(self) -> bool:
        """Whether events take their trace and span ids from the current OpenTelemetry span."""
        return self._tracing

    @tracing.setter
    def tracing(self, value: bool) -> None:
        self._tracing = value
        self._fast = not value and self._trace_ids is None and self._prev is not None

    @property
    def trace_ids(self) -> tuple[str, str] | None:
        """(trace id, span id) stamped on events recorded from now on, or None."""
        return self._trace_ids

    @trace_ids.setter
    def trace_ids(self, value: tuple[str, str] | None) -> None:
        self._trace_ids = value
        self._fast = value is None and not self._tracing and self._prev is not None

    def __len__(self) -> int:
        return self.seq

    def entry(self, seq: int) -> bytes:
        """The verbatim entry bytes of event ``seq`` (without the leaf prefix)."""
        self._compact()
        offsets = self._offsets
        return bytes(self._buf[offsets[seq] + 1 : offsets[seq + 1]])

    def entries(self, start: int = 0) -> Iterator[bytes]:
        """The verbatim entry bytes, in order."""
        self._compact()
        offsets, buf = self._offsets, self._buf
        for seq in range(start, self.seq):
            yield bytes(buf[offsets[seq] + 1 : offsets[seq + 1]])

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

    def dequeued(self, node: str, token_id: str, ts: int) -> int:
        with self._lock:
            return super().dequeued(node, token_id, ts)

    def enqueued(self, *args: Any) -> int:
        with self._lock:
            return super().enqueued(*args)

    def state_updated(self, node: str, token_id: str, change: Any, ts: int) -> int:
        with self._lock:
            return super().state_updated(node, token_id, change, ts)

    def completed(self, node: str, token_id: str, result: Any, emissions: int, ts: int) -> int:
        with self._lock:
            return super().completed(node, token_id, result, emissions, ts)

    def commit(self, **index: Any) -> None:
        with self._lock:
            super().commit(**index)
