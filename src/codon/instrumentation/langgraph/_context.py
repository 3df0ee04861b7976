"""The activation running in this context: a node of an adapted graph, its token and span."""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace

from codon_sdk.runtime import CURRENT_RUNTIME, NodeRuntime

if TYPE_CHECKING:  # pragma: no cover
    from langchain_core.runnables import RunnableConfig
    from opentelemetry.trace import Span

    from codon.instrumentation.langgraph._invocation import Invocation

__all__ = ["INVOCATION_KEY", "Activation", "current_activation"]

# LangGraph strips configurable keys starting with "__pregel_" from what it streams
# and stores, so the invocation travels with the config without showing up anywhere.
INVOCATION_KEY = "__pregel_codon_invocation"

_ACTIVATION: contextvars.ContextVar[Activation | None] = contextvars.ContextVar(
    "codon_langgraph_activation", default=None
)


def current_activation() -> Activation | None:
    """The adapted-graph activation running in this context, if any."""
    return _ACTIVATION.get()


class Activation:
    """One node activation of an invocation: its token, handle, span and task identity."""

    __slots__ = (
        "calls",
        "captured",
        "config",
        "handle",
        "invocation",
        "key",
        "node",
        "path",
        "root_key",
        "span",
        "step",
        "writes",
    )

    def __init__(
        self,
        invocation: Invocation,
        node: str,
        handle: NodeRuntime,
        config: RunnableConfig,
        key: str,
        root_key: str,
        step: int,
        path: Any,
    ) -> None:
        self.invocation = invocation
        self.node = node
        self.handle = handle
        self.config = config
        self.key = key
        self.root_key = root_key
        self.step = step
        self.path = path
        self.span: Span | None = None
        self.writes: Any = None  # the task's own deque of (channel, value) writes
        self.captured: list[tuple[str, Any]] | None = None
        self.calls = 0  # adapted graphs invoked from inside this activation

    @property
    def token_id(self) -> str:
        return self.handle.token_id

    def enter(self) -> tuple[Any, Any, Any]:
        """Make this activation current (runtime handle, activation, span)."""
        if self.span is None:
            return CURRENT_RUNTIME.set(self.handle), _ACTIVATION.set(self), None
        span = otel_context.attach(trace.set_span_in_context(self.span))
        return CURRENT_RUNTIME.set(self.handle), _ACTIVATION.set(self), span

    def exit(self, tokens: tuple[Any, Any, Any]) -> None:
        if tokens[2] is not None:
            otel_context.detach(tokens[2])
        _ACTIVATION.reset(tokens[1])
        CURRENT_RUNTIME.reset(tokens[0])

    def all_writes(self) -> Any:
        return self.writes if self.writes is not None else (self.captured or ())
