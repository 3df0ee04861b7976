"""Joins (fan-in): a node that runs once on every token its sources sent it.

``workload.add_join(sources, node)`` makes ``node`` a join. A token that one of
``sources`` emits to it does not activate it: it *waits* at the join. The join
*fires* when no more tokens can reach it from its sources: nothing queued for,
running in, or waiting at another join of, a node from which one of the sources can be
reached (its *feeders*, the sources included). Firing records one ``token_enqueued``
from the reserved origin ``__join__``, with no parent, whose payload is the tuple of
the waiting tokens' payloads (in the order of ``sources``, then in arrival order) and
whose metadata ``join`` names the node, the tokens joined and the source of each; the
node then runs once on that token, like on any other.

A join inside a loop fires once per round: the tokens of the next round arrive only
after the join's own activation ran (the node feeds its sources, so it is a feeder).
Tokens for the node from other nodes (and seeds) are not joined: each activates it.
Two joins that wait for each other (each feeds the other's sources) cannot both wait
for the other: when nothing else is left to run, the first one registered fires.

Durability: an arrival waits only once the activation that emitted it completed, and
firing depends only on what the ledger holds, so resume (``_rebuild.py``) refinds the
same waiting tokens: the join's token consumes the tokens it lists, and tokens still
waiting are queued again, then held again by :meth:`Joins.start`. A crash between two
arrivals, or after the last one but before the join's token was recorded, fires the
join once on resume; a crash after the token was recorded runs the node on it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from codon_sdk._clock import now_us
from codon_sdk.errors import CanonicalEncodingError, PayloadTooLargeError
from codon_sdk.runtime._outcome import NodeFailed
from codon_sdk.runtime._records import JOIN_ORIGIN

if TYPE_CHECKING:  # pragma: no cover
    from codon_sdk.runtime._engine import NodeDef, QueueItem, Run

__all__ = ["Joins", "feeders"]


def feeders(nodes: Mapping[str, NodeDef], sources: Iterable[str]) -> frozenset[str]:
    """The nodes from which one of ``sources`` can be reached (the sources included)."""
    into: dict[str, set[str]] = {}
    for name, node in nodes.items():
        for successor in node.successors:
            into.setdefault(successor, set()).add(name)
    found = set(sources)
    todo = list(found)
    while todo:
        for before in into.get(todo.pop(), ()):
            if before not in found:
                found.add(before)
                todo.append(before)
    return frozenset(found)


@dataclass(slots=True)
class _Join:
    node: str
    sources: tuple[str, ...]
    feeders: frozenset[str]
    waiting: list[QueueItem] = field(default_factory=list)


class Joins:
    """The joins of one run: the tokens waiting at each, and when each fires."""

    __slots__ = ("_joins", "running")

    def __init__(self, nodes: Mapping[str, NodeDef]) -> None:
        self._joins = {
            name: _Join(name, node.join, feeders(nodes, node.join))
            for name, node in nodes.items()
            if node.join
        }
        #: activations in flight per node (kept by the concurrent driver only: with one
        #: activation at a time, the only one is the one completing)
        self.running: dict[str, int] = {}

    @classmethod
    def of(cls, nodes: Mapping[str, NodeDef]) -> Joins | None:
        """The joins of a run of ``nodes``; None when no node is a join (the engine's
        fast path then checks nothing)."""
        return cls(nodes) if any(node.join for node in nodes.values()) else None

    def holds(self, target: str, origin: str) -> bool:
        """Whether a token from ``origin`` to ``target`` waits at a join."""
        join = self._joins.get(target)
        return join is not None and origin in join.sources

    def hold(self, item: QueueItem) -> None:
        self._joins[item[1]].waiting.append(item)

    @property
    def waiting(self) -> int:
        """How many tokens wait at joins."""
        return sum(len(j.waiting) for j in self._joins.values())

    def start(self, run: Run) -> None:
        """Before a run (or a resumed or forked one) drives: hold the queued tokens that wait
        at a join (resume queues them again), then fire what is complete."""
        queue = run.queue
        if any(self.holds(item[1], item[3]) for item in queue):
            kept: deque[QueueItem] = deque()
            for item in queue:
                if self.holds(item[1], item[3]):
                    self.hold(item)
                else:
                    kept.append(item)
            run.queue.load(kept)
        self.settle(run)

    def completed(
        self,
        run: Run,
        node: str,
        token_id: str,
        ts: int,
        emitted: list[tuple[str, str, Any, Any, Any]] | None,
    ) -> None:
        """An activation of ``node`` on ``token_id`` completed at ``ts`` (its events are
        recorded): queue its emitted tokens, or hold those for a join; fire what can."""
        for etid, etarget, epayload, _, _ in emitted or ():
            item = (etid, etarget, epayload, node, token_id, ts)
            if self.holds(etarget, node):
                self.hold(item)
            else:
                run.queue.put(item)
        count = self.running.get(node)
        if count is not None:
            if count <= 1:
                del self.running[node]
            else:
                self.running[node] = count - 1
        self.settle(run)

    def settle(self, run: Run) -> None:
        """Fire every join whose feeders are all idle (nothing queued, running or waiting)."""
        pending = [j for j in self._joins.values() if j.waiting]
        if not pending:
            return
        busy = {item[1] for item in run.queue}
        busy.update(self.running)
        waiting = {j.node for j in pending}
        for join in pending:
            if join.feeders.isdisjoint(busy) and join.feeders.isdisjoint(waiting - {join.node}):
                self._fire(run, join)
                busy.add(join.node)
                waiting.discard(join.node)

    def unblock(self, run: Run) -> bool:
        """With nothing queued or running: fire the first join still waiting (joins that
        wait for each other); False when none waits."""
        for join in self._joins.values():
            if join.waiting:
                self._fire(run, join)
                return True
        return False

    def _fire(self, run: Run, join: _Join) -> None:
        order = {source: i for i, source in enumerate(join.sources)}
        items = sorted(join.waiting, key=lambda item: order[item[3]])
        join.waiting = []
        payload = tuple(item[2] for item in items)
        tid = run.next_token_id()
        meta: dict[str, Any] = {
            "join": {
                "node": join.node,
                "tokens": [item[0] for item in items],
                "sources": [item[3] for item in items],
            }
        }
        ts = now_us()
        try:
            run.rec.enqueued(JOIN_ORIGIN, tid, run.prep(payload), meta, join.node, None, ts)
        except (CanonicalEncodingError, PayloadTooLargeError) as exc:
            raise NodeFailed(
                join.node,
                tid,
                exc,
                f"join {join.node!r} cannot record the {len(items)} token(s) it joined "
                f"({', '.join(item[0] for item in items)}): {exc}; send smaller payloads to "
                "the join (keep large values in runtime.state or an effect) or raise "
                "max_event_bytes",
            ) from exc
        run.queue.put((tid, join.node, payload, JOIN_ORIGIN, None, ts))
        run.observe(
            "token_enqueued",
            {
                "token_id": tid,
                "source_node": JOIN_ORIGIN,
                "target_node": join.node,
                "payload": payload,
                "join": meta["join"],
            },
        )
