"""What a run decided, in a form two runs can be compared by: its committed activations.

A run's decisions are its completed activations, in completion order: which node
processed which token, what it returned, which tokens it emitted (target and
payload), what it changed in the shared state, which custom events it recorded,
and how its failed attempts failed. Events that describe the process rather than
the decisions are left out: dequeues, recorded effects (replay serves them; what
they were asked for is compared as it is served, see :func:`request_divergences`),
pauses and resumes, timestamps, hashes. Attempts that never completed (a crash
interrupted them, and resume ran them again) are dropped, so a crashed-and-resumed
run compares equal to one that never crashed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from codon_sdk._text import printable
from codon_sdk.ledger import LedgerEvent, ReplayRole, event_type
from codon_sdk.redaction import comparable
from codon_sdk.runtime._request import RequestChange

__all__ = [
    "REQUEST_CHANGED",
    "Activation",
    "Divergence",
    "activations",
    "compare",
    "in_order",
    "outcome",
    "request_divergences",
]

REQUEST_CHANGED = "request changed"
"""The divergence of an effect or LLM call asked for something else than was recorded."""


@dataclass(slots=True)
class Activation:
    """One completed activation, reduced to what it decided."""

    token_id: str
    node: str
    seq: int = -1
    result: Any = None
    emitted: list[tuple[str | None, str | None, Any]] = field(default_factory=list)
    state: list[Any] = field(default_factory=list)
    custom: list[tuple[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Divergence:
    """The first place where a replay decided differently from the recording."""

    seq: int
    token_id: str | None
    node: str | None
    what: str
    expected: Any
    actual: Any
    #: where ``expected`` and ``actual`` differ, when they are too large to show whole
    differences: tuple[str, ...] = ()
    #: the effect concerned, for a ``request changed`` divergence
    effect: str | None = None

    def __str__(self) -> str:
        where = f"seq {self.seq}" if self.seq >= 0 else "end of run"
        who = f" node {self.node!r}" if self.node else ""
        tok = f" (token {self.token_id})" if self.token_id else ""
        if self.differences:
            of = f" (effect {printable(self.effect)})" if self.effect else ""
            return f"{where}:{who}{tok} {self.what}{of}: " + "; ".join(self.differences)
        return f"{where}:{who}{tok} {self.what}: recorded {self.expected!r}, replay {self.actual!r}"


def activations(events: Iterable[LedgerEvent]) -> list[Activation]:
    """The completed activations of a run, in completion order (see the module docstring).

    Each event counts by the replay role its type declares (custom types: a decision).
    """
    open_: dict[str, Activation] = {}
    done: list[Activation] = []
    for ev in events:
        tid = ev.token_id
        role = event_type(ev.type).replay
        if role is ReplayRole.ATTEMPT:
            if tid is not None:  # a new attempt starts clean
                open_[tid] = Activation(token_id=tid, node=ev.node or "")
            continue
        if role is ReplayRole.EMIT:  # belongs to the activation of the token it came from
            parent = open_.get(ev.parent_token_id) if ev.parent_token_id is not None else None
            if parent is not None:
                parent.emitted.append((ev.token_id, ev.target, comparable(ev.payload)))
            continue
        act = open_.get(tid) if tid is not None else None
        if act is None:
            continue
        match role:
            case ReplayRole.STATE:
                act.state.append(comparable(ev.payload))
            case ReplayRole.RETRY:
                act.failures.append(str(ev.metadata.get("exception")))
                act.emitted.clear()
            case ReplayRole.COMMIT:
                act.result = comparable(ev.payload)
                act.seq = ev.seq
                done.append(open_.pop(act.token_id))
            case ReplayRole.DECISION:
                act.custom.append((ev.type, comparable(ev.metadata)))
            case ReplayRole.FINISH | ReplayRole.PAUSE | ReplayRole.FAILURE | ReplayRole.SKIP:
                pass  # the outcome, or the process: not a decision of the activation
    return done


def request_divergences(changes: Iterable[RequestChange]) -> list[Divergence]:
    """One ``request changed`` divergence per effect served for a changed request."""
    return [
        Divergence(
            c.seq,
            c.token_id,
            c.node,
            REQUEST_CHANGED,
            c.recorded,
            c.replay,
            differences=c.differences,
            effect=f"{c.effect} #{c.index}",
        )
        for c in changes
    ]


def in_order(found: Iterable[Divergence]) -> list[Divergence]:
    """Divergences by the seq they point at (the end of the run last), ties as given."""
    return sorted(found, key=lambda d: d.seq if d.seq >= 0 else float("inf"))


def outcome(events: Iterable[LedgerEvent]) -> tuple[str, str | None, int]:
    """(status, failing node or None, seq) of how the run ended or paused."""
    status, node, seq = "running", None, -1
    for ev in events:
        match event_type(ev.type).replay:
            case ReplayRole.FINISH:
                status, seq = str(ev.metadata.get("status")), ev.seq
            case ReplayRole.PAUSE:
                status, node, seq = "interrupted", ev.node, ev.seq
            case ReplayRole.FAILURE:
                node = ev.node
            case _:
                pass  # a decision or the process, compared by activations()
    return status, node, seq


def compare(recorded: list[Activation], replayed: list[Activation]) -> list[Divergence]:
    """Every difference between two activation lists, first one first (at most 20)."""
    found: list[Divergence] = []
    for rec, rep in zip(recorded, replayed, strict=False):
        found.extend(_differences(rec, rep))
        if len(found) >= 20:
            return found[:20]
    if len(recorded) > len(replayed):
        missing = recorded[len(replayed)]
        found.append(
            Divergence(
                missing.seq,
                missing.token_id,
                missing.node,
                "activation did not happen in the replay",
                f"{missing.node} completed",
                "no such activation",
            )
        )
    elif len(replayed) > len(recorded):
        extra = replayed[len(recorded)]
        found.append(
            Divergence(
                -1,
                extra.token_id,
                extra.node,
                "the replay ran an activation the recording does not have",
                "no such activation",
                f"{extra.node} completed",
            )
        )
    return found[:20]


def _differences(rec: Activation, rep: Activation) -> list[Divergence]:
    def div(what: str, expected: Any, actual: Any) -> Divergence:
        return Divergence(rec.seq, rec.token_id, rec.node, what, expected, actual)

    if (rec.token_id, rec.node) != (rep.token_id, rep.node):
        return [
            div(
                "a different activation completed here",
                f"{rec.node} on {rec.token_id}",
                f"{rep.node} on {rep.token_id}",
            )
        ]
    out: list[Divergence] = []
    if rec.failures != rep.failures:
        out.append(div("failed attempts differ", rec.failures, rep.failures))
    if rec.custom != rep.custom:
        out.append(div("custom audit events differ", rec.custom, rep.custom))
    if rec.emitted != rep.emitted:
        out.append(div("emitted tokens differ", _emits(rec), _emits(rep)))
    if rec.state != rep.state:
        out.append(div("shared state changes differ", rec.state, rep.state))
    if rec.result != rep.result:
        out.append(div("the node returned a different result", rec.result, rep.result))
    return out


def _emits(act: Activation) -> list[str]:
    return [f"{tid} -> {target}: {payload!r}" for tid, target, payload in act.emitted]
