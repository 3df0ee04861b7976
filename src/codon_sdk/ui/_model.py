"""One run read once into what the explorer shows: activations, tokens, approvals, usage.

A :class:`RunView` is built from the run's entry bytes in one pass and keeps them; every
page (events, activations) is then a slice of what was built, parsed on demand, so a run
of a million events is read once per change of its head, never once per page.

Entries are hostile data: an entry that does not parse is kept as an ``unreadable`` event
(its seq and the parser's message), never a traceback; payloads larger than
:data:`CLIP_BYTES` are shown clipped (:func:`clip`) with the size of the whole value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from codon_sdk import VerificationReport
from codon_sdk.ledger import (
    BUILTIN_TYPES,
    EFFECT_RECORDED,
    NODE_COMPLETED,
    NODE_FAILED,
    NODE_RETRYING,
    RUN_FINISHED,
    RUN_INTERRUPTED,
    RUN_RESUMED,
    RUN_STARTED,
    RUNTIME_STOPPED,
    TOKEN_DEQUEUED,
    TOKEN_ENQUEUED,
)

__all__ = ["CLIP_BYTES", "Activation", "RunView", "clip", "event_json"]

CLIP_BYTES: Final = 4096
"""A value whose JSON is longer than this is shown clipped (the event endpoint has it all)."""

_BUILTIN: Final = BUILTIN_TYPES


def clip(value: Any, limit: int = CLIP_BYTES) -> Any:
    """``value`` as it is when its JSON is short, else a ``{"$clipped": ...}`` preview."""
    try:
        text = orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return {"$clipped": True, "preview": repr(value)[:limit], "bytes": None}
    if len(text) <= limit:
        return value
    preview = text[:limit].decode("utf-8", "replace")
    return {"$clipped": True, "preview": preview, "bytes": len(text)}


def event_json(seq: int, entry: bytes, *, whole: bool = False) -> dict[str, Any]:
    """One entry as the API shows it: its fields (payload clipped unless ``whole``)."""
    try:
        obj = orjson.loads(entry)
    except orjson.JSONDecodeError as exc:
        return {"seq": seq, "type": None, "unreadable": f"not valid JSON: {exc}"}
    if type(obj) is not dict:
        return {"seq": seq, "type": None, "unreadable": "not a JSON object"}
    if not whole:
        for name in ("payload", "metadata"):
            if name in obj:
                obj[name] = clip(obj[name])
    obj["custom"] = obj.get("type") not in _BUILTIN
    if obj.get("seq") != seq:  # an entry claiming another place is shown where it is
        obj["stored_at"] = seq
    return obj


@dataclass(slots=True)
class Activation:
    """One activation: a token taken by a node, until it completed, failed or paused."""

    index: int
    node: str
    token_id: str
    start_seq: int
    start_us: int
    end_seq: int | None = None
    end_us: int | None = None
    outcome: str = "running"
    seqs: list[int] = field(default_factory=list)
    emitted: list[str] = field(default_factory=list)
    retries: int = 0
    timeouts: int = 0
    resumed: bool = False
    llm_calls: int = 0
    tokens: int = 0
    cost_usd: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "node": self.node,
            "token_id": self.token_id,
            "start_seq": self.start_seq,
            "end_seq": self.end_seq,
            "start_us": self.start_us,
            "end_us": self.end_us,
            "outcome": self.outcome,
            "emitted": list(self.emitted),
            "retries": self.retries,
            "timeouts": self.timeouts,
            "resumed": self.resumed,
            "llm_calls": self.llm_calls,
            "tokens": self.tokens,
            "cost_usd": self.cost_usd,
            "events": len(self.seqs),
        }


@dataclass(slots=True)
class _Token:
    token_id: str
    seq: int
    source: str | None
    target: str | None
    parent: str | None


_ENDS: Final = {
    NODE_COMPLETED: "completed",
    NODE_FAILED: "failed",
    RUN_INTERRUPTED: "interrupted",
    RUNTIME_STOPPED: "stopped",
}


class RunView:
    """What the run page shows of one run, built in one pass over its entries."""

    def __init__(
        self, run_id: str, entries: Sequence[bytes], report: VerificationReport | None
    ) -> None:
        self.run_id = run_id
        self.entries = entries
        self.verification = report
        self.activations: list[Activation] = []
        self.tokens: dict[str, _Token] = {}
        self.consumers: dict[str, list[int]] = {}
        self.approvals: list[dict[str, Any]] = []
        self.interrupts: list[dict[str, Any]] = []
        self.custom: list[int] = []
        self.unreadable: list[int] = []
        self.started: dict[str, Any] = {}
        self.finished: dict[str, Any] | None = None
        self.first_us: int | None = None
        self.last_us: int | None = None
        self.llm_calls = 0
        self.llm_tokens = 0
        self.cost_usd: float | None = None
        self.cost_complete = True
        self._build()

    # ------------------------------------------------------------------ building

    def _build(self) -> None:
        open_: dict[str, Activation] = {}
        for seq, entry in enumerate(self.entries):
            ev = _light(entry)
            if ev is None:
                self.unreadable.append(seq)
                continue
            if self.first_us is None:
                self.first_us = ev.ts
            self.last_us = ev.ts
            self._one(seq, ev, open_)

    def _one(self, seq: int, ev: _Ev, open_: dict[str, Activation]) -> None:
        kind, tid = ev.type, ev.token_id
        if kind == RUN_STARTED and not self.started:
            self.started = ev.metadata
        elif kind == RUN_FINISHED:
            self.finished = ev.metadata
        if kind == TOKEN_ENQUEUED and tid is not None:
            self._enqueued(seq, ev, open_)
            return
        if kind == TOKEN_DEQUEUED and tid is not None:
            act = Activation(
                index=len(self.activations),
                node=ev.node or "",
                token_id=tid,
                start_seq=seq,
                start_us=ev.ts,
            )
            act.resumed = bool(self.approvals) and self.approvals[-1]["token_id"] == tid
            act.seqs.append(seq)
            self.activations.append(act)
            self.consumers.setdefault(tid, []).append(act.index)
            open_[tid] = act
            return
        if kind not in _BUILTIN:
            self.custom.append(seq)
        if kind == RUN_INTERRUPTED:
            self.interrupts.append(_interrupt(seq, ev))
        elif kind == RUN_RESUMED:
            self.approvals.append(self._approval(seq, ev))
        current = open_.get(tid) if tid is not None else None
        if current is None:
            return
        current.seqs.append(seq)
        if kind == EFFECT_RECORDED:
            self._usage(current, ev)
        elif kind == NODE_RETRYING:
            current.retries += 1
            current.timeouts += bool(ev.metadata.get("timeout"))
        end = _ENDS.get(kind)
        if end is not None:
            current.outcome, current.end_seq, current.end_us = end, seq, ev.ts
            current.timeouts += kind == NODE_FAILED and bool(ev.metadata.get("timeout"))
            open_.pop(current.token_id, None)

    def _enqueued(self, seq: int, ev: _Ev, open_: dict[str, Activation]) -> None:
        tid = ev.token_id or ""
        self.tokens[tid] = _Token(tid, seq, ev.node, ev.target, ev.parent_token_id)
        parent = open_.get(ev.parent_token_id or "")
        if parent is not None:
            parent.emitted.append(tid)
            parent.seqs.append(seq)

    def _usage(self, act: Activation, ev: _Ev) -> None:
        llm = ev.metadata.get("llm")
        if not isinstance(llm, dict) or ev.metadata.get("forked"):
            return
        usage: dict[str, Any] = llm["usage"] if isinstance(llm.get("usage"), dict) else {}
        tokens: int = sum(_int(usage.get(k)) for k in ("input_tokens", "output_tokens"))
        cost = llm.get("cost_usd")
        act.llm_calls += 1
        act.tokens += tokens
        self.llm_calls += 1
        self.llm_tokens += tokens
        if isinstance(cost, (int, float)) and not isinstance(cost, bool):
            act.cost_usd = (act.cost_usd or 0.0) + float(cost)
            self.cost_usd = (self.cost_usd or 0.0) + float(cost)
        else:
            self.cost_complete = False

    def _approval(self, seq: int, ev: _Ev) -> dict[str, Any]:
        md = ev.metadata
        asked = next(
            (
                i
                for i in reversed(self.interrupts)
                if i["token_id"] == ev.token_id
                and i["interrupt_index"] == md.get("interrupt_index")
            ),
            None,
        )
        return {
            "seq": seq,
            "ts": ev.ts,
            "actor": ev.actor,
            "node": ev.node,
            "token_id": ev.token_id,
            "input": clip(md.get("input")),
            "interrupt_index": md.get("interrupt_index"),
            "question": None if asked is None else asked["reason"],
            "asked_seq": None if asked is None else asked["seq"],
            "asked_payload": None if asked is None else asked["payload"],
        }

    # ------------------------------------------------------------------ reading

    @property
    def event_count(self) -> int:
        return len(self.entries)

    @property
    def logic_id(self) -> str | None:
        """The logic id ``run_started`` recorded (None when it recorded none)."""
        workload = self.started.get("workload")
        found = workload.get("logic_id") if isinstance(workload, dict) else None
        return found if isinstance(found, str) else None

    def node_specs(self) -> dict[str, Any]:
        nodes = self.started.get("nodes")
        return nodes if isinstance(nodes, dict) else {}

    def graph(self) -> dict[str, Any]:
        """Nodes (with activation counts and a status each) and edges, from ``run_started``."""
        counts: dict[str, dict[str, int]] = {}
        last: dict[str, str] = {}
        for act in self.activations:
            per = counts.setdefault(act.node, {})
            per[act.outcome] = per.get(act.outcome, 0) + 1
            last[act.node] = act.outcome
        names = list(self.node_specs())
        names += sorted(n for n in counts if n not in self.node_specs())
        edges = [
            [str(e[0]), str(e[1])]
            for e in self.started.get("edges") or ()
            if isinstance(e, list) and len(e) == 2
        ]
        entry = self.started.get("entry_nodes")
        return {
            "nodes": [
                _graph_node(n, self.node_specs().get(n), counts.get(n, {}), last.get(n))
                for n in names
            ],
            "edges": edges,
            "entry_nodes": [str(n) for n in entry] if isinstance(entry, list) else [],
        }

    def pending_question(self) -> dict[str, Any] | None:
        """The interrupt the run is paused on, if it is."""
        if not self.interrupts:
            return None
        last = self.interrupts[-1]
        answered = any(a["seq"] > last["seq"] for a in self.approvals)
        return None if answered else last

    def event(self, seq: int, *, whole: bool = False) -> dict[str, Any]:
        return event_json(seq, self.entries[seq], whole=whole)

    def events(self, seqs: list[int] | range) -> list[dict[str, Any]]:
        return [event_json(s, self.entries[s]) for s in seqs]

    def token(self, token_id: str) -> dict[str, Any] | None:
        """A token's lineage: the activation that emitted it and the ones it caused."""
        tok = self.tokens.get(token_id)
        if tok is None:
            return None
        emitter = next(
            (
                a.index
                for a in reversed(self.activations[: self._act_at(tok.seq) + 1])
                if a.token_id == tok.parent and tok.seq in a.seqs
            ),
            None,
        )
        consumers = self.consumers.get(token_id, [])
        children = [t for a in consumers for t in self.activations[a].emitted]
        ev = self.event(tok.seq)
        return {
            "token_id": token_id,
            "seq": tok.seq,
            "source": tok.source,
            "target": tok.target,
            "parent_token_id": tok.parent,
            "payload": ev.get("payload"),
            "emitted_by": None if emitter is None else self.activations[emitter].to_dict(),
            "consumed_by": [self.activations[a].to_dict() for a in consumers],
            "children": children,
        }

    def activation_at(self, seq: int) -> int | None:
        """The activation event ``seq`` belongs to, if any (activations overlap when
        concurrent: the latest started one holding ``seq`` wins)."""
        i = self._act_at(seq)
        for act in reversed(self.activations[max(0, i - 64) : i + 1]):
            end = act.end_seq if act.end_seq is not None else seq
            if act.start_seq <= seq <= end and seq in act.seqs:
                return act.index
        return None

    def _act_at(self, seq: int) -> int:
        """The index of the last activation started at or before ``seq``."""
        lo, hi = 0, len(self.activations)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.activations[mid].start_seq <= seq:
                lo = mid + 1
            else:
                hi = mid
        return lo - 1


class _Ev:
    """The fields of one entry the view reads (a plain class: built 100,000 times a run)."""

    __slots__ = ("actor", "metadata", "node", "parent_token_id", "target", "token_id", "ts", "type")

    def __init__(self, obj: dict[str, Any], kind: str, ts: int) -> None:
        self.type = kind
        self.ts = ts
        node, target, tid, parent = (
            obj.get("node"),
            obj.get("target"),
            obj.get("token_id"),
            obj.get("parent_token_id"),
        )
        self.node = node if type(node) is str else None
        self.target = target if type(target) is str else None
        self.token_id = tid if type(tid) is str else None
        self.parent_token_id = parent if type(parent) is str else None
        md, actor = obj.get("metadata"), obj.get("actor")
        self.metadata: dict[str, Any] = md if type(md) is dict else {}
        self.actor = actor if type(actor) is str else None


def _light(entry: bytes) -> _Ev | None:
    """The fields the view needs, each of the type it must have (None: unreadable).

    Lighter than ``parse_entry``: what is wrong with an entry beyond that is the
    verification's to say (the run is then ``tampered``), not a reason to hide it.
    """
    try:
        obj = orjson.loads(entry)
    except orjson.JSONDecodeError:
        return None
    if type(obj) is not dict:
        return None
    kind, ts = obj.get("type"), obj.get("ts")
    if type(kind) is not str or type(ts) is not int:
        return None
    return _Ev(obj, kind, ts)


def _int(value: Any) -> int:
    return value if type(value) is int and value >= 0 else 0


def _interrupt(seq: int, ev: _Ev) -> dict[str, Any]:
    md = ev.metadata
    return {
        "seq": seq,
        "ts": ev.ts,
        "node": ev.node,
        "token_id": ev.token_id,
        "reason": md.get("reason"),
        "kind": md.get("kind"),
        "interrupt_index": md.get("interrupt_index"),
        "payload": clip(md.get("payload")),
    }


def _graph_node(name: str, spec: Any, counts: dict[str, int], last: str | None) -> dict[str, Any]:
    spec = spec if isinstance(spec, dict) else {}
    if counts.get("failed"):
        status = "failed"
    elif counts.get("running"):
        status = "running"
    elif last in ("interrupted", "stopped"):
        status = last
    elif counts:
        status = "completed"
    else:
        status = "not run"
    return {
        "name": name,
        "role": spec.get("role"),
        "node_id": spec.get("id"),
        "code_hash": spec.get("code_hash"),
        "activations": sum(counts.values()),
        "outcomes": counts,
        "status": status,
    }
