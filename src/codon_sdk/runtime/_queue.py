"""The token queue seam: where a run's pending tokens wait for their activation.

A run's ledger is the single source of truth for its tokens: a token is enqueued by a
``token_enqueued`` entry and taken by a ``token_dequeued`` one, and on resume the queue
is rebuilt from those entries (``_rebuild.py``) and loaded into the run's queue with
:meth:`TokenQueue.load`. A :class:`TokenQueue` therefore only decides where the pending
tokens of a *live* run are held and in which order they are taken; it never has to be
durable, and whatever it held when its process died is recovered from the ledger.

The base has five abstract operations (:meth:`~TokenQueue.put`, :meth:`~TokenQueue.take`,
``len``, iteration and :meth:`~TokenQueue.clear`); :meth:`~TokenQueue.load` is built on
them (and truth testing on ``len``). :class:`InMemoryTokenQueue`, the default, is a ``deque``:
first in, first out, at C speed on the engine's hot path. The conformance suite every
queue must pass is :class:`codon_sdk.testing.TokenQueueConformance`.

A queue is one run's: pass a fresh one (or a zero-argument factory such as the class) to
``execute(..., token_queue=...)`` or ``resume``, or set a factory once on the workload
(``workload.token_queue = MyQueue``). A fresh run refuses a queue that already holds
tokens (two runs must never share one).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeAlias

from codon_sdk.errors import ConfigurationError

__all__ = ["InMemoryTokenQueue", "QueuedToken", "TokenQueue", "TokenQueueLike", "open_token_queue"]

QueuedToken: TypeAlias = tuple[str, str, Any, str, "str | None", int]
"""A pending token: (token id, target node, payload, origin node, parent token id, created µs)."""


class TokenQueue(ABC):
    """Where one run's pending tokens wait (first in, first out unless a queue says
    otherwise). The engine calls it from the run's event loop only, one call at a time."""

    @abstractmethod
    def put(self, item: QueuedToken) -> None:
        """Add a pending token (its ``token_enqueued`` entry is already recorded)."""

    @abstractmethod
    def take(self) -> QueuedToken:
        """Remove and return the next token to activate; called only when the queue is
        not empty (raise ``IndexError`` otherwise)."""

    @abstractmethod
    def __len__(self) -> int:
        """How many tokens are pending."""

    @abstractmethod
    def __iter__(self) -> Iterator[QueuedToken]:
        """The pending tokens, in the order :meth:`take` would return them, without
        removing them (joins look at what is still queued)."""

    @abstractmethod
    def clear(self) -> None:
        """Remove every pending token."""

    def load(self, items: Iterable[QueuedToken]) -> None:
        """Replace the contents with ``items`` (a queue rebuilt from the ledger on resume,
        or the tokens a join does not hold), in order."""
        kept = list(items)  # ``items`` may be this queue itself
        self.clear()
        for item in kept:
            self.put(item)


class InMemoryTokenQueue(deque[QueuedToken], TokenQueue):
    """The default queue: first in, first out, in this process's memory (a ``deque``)."""

    if TYPE_CHECKING:

        def put(self, item: QueuedToken) -> None: ...
        def take(self) -> QueuedToken: ...

    else:  # the deque's own methods: no Python call per token on the engine's hot path
        put = deque.append
        take = deque.popleft

    def __repr__(self) -> str:
        return f"InMemoryTokenQueue({len(self)} pending)"


TokenQueueLike: TypeAlias = "TokenQueue | Callable[[], TokenQueue]"
"""What ``token_queue=`` takes: a queue, or a zero-argument factory of one."""


def open_token_queue(default: Any, chosen: Any, run_id: str, *, fresh: bool) -> TokenQueue:
    """The run's queue: ``chosen`` (``execute``/``resume``), else the workload's ``default``,
    else an :class:`InMemoryTokenQueue`; a factory is called. A fresh run's queue must be
    empty; a resumed run's is loaded from the ledger by the caller."""
    given = chosen if chosen is not None else default
    if given is None:
        return InMemoryTokenQueue()
    queue = given
    if not isinstance(queue, TokenQueue) and callable(queue):
        queue = queue()
    if not isinstance(queue, TokenQueue):
        raise TypeError(
            f"token_queue must be a codon_sdk.runtime.TokenQueue (such as InMemoryTokenQueue) "
            f"or a zero-argument factory of one, got {given!r}"
        )
    if fresh and len(queue):
        raise ConfigurationError(
            f"the token queue given to run {run_id} already holds {len(queue)} token(s): a "
            "queue belongs to one run (pass a new one, or a factory such as the class)"
        )
    return queue
