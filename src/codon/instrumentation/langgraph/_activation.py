"""The per-task wrapper: what runs around every LangGraph node execution of an adapted graph.

LangGraph runs a task by calling its ``proc`` (the node's runnable followed by
its channel writers, conditional edges included). The adapter replaces each
node's ``proc`` with :class:`NodeActivation`, which records the activation in
the invocation's Codon run (found in the task's config), makes the
activation's handle the current runtime and its span the current span while the
node runs, and passes input, config and result through untouched.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import Runnable, RunnableConfig

from codon.instrumentation.langgraph._compat import CONF
from codon.instrumentation.langgraph._context import INVOCATION_KEY, Activation

if TYPE_CHECKING:  # pragma: no cover
    from codon.instrumentation.langgraph._invocation import Invocation

__all__ = ["NodeActivation"]


def _invocation_of(config: RunnableConfig | None) -> Invocation | None:
    if not config:
        return None
    conf = config.get(CONF)
    if not conf:
        return None
    inv: Invocation | None = conf.get(INVOCATION_KEY)
    return inv


class NodeActivation(Runnable[Any, Any]):
    """A task's ``proc`` wrapped so that each execution is a recorded Codon activation."""

    def __init__(self, inner: Runnable[Any, Any], node: str) -> None:
        self.inner = inner
        self.node = node

    def get_name(self, suffix: str | None = None, *, name: str | None = None) -> str:
        return self.inner.get_name(suffix, name=name)

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        conf = config.get(CONF) if config else None
        inv: Invocation | None = conf.get(INVOCATION_KEY) if conf else None
        if inv is None:
            return self.inner.invoke(input, config, **kwargs)
        assert config is not None
        act = inv.begin(self.node, input, config)
        tokens = act.enter()
        try:
            result = self.inner.invoke(input, act.config, **kwargs)
        except BaseException as exc:
            inv.fail(act, exc)
            raise
        else:
            inv.end(act, result)
        finally:
            act.exit(tokens)
        return result

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        inv = _invocation_of(config)
        if inv is None:
            return await self.inner.ainvoke(input, config, **kwargs)
        assert config is not None
        act = inv.begin(self.node, input, config)
        tokens = act.enter()
        try:
            result = await self.inner.ainvoke(input, act.config, **kwargs)
        except BaseException as exc:
            inv.fail(act, exc)
            raise
        else:
            inv.end(act, result)
        finally:
            act.exit(tokens)
        return result

    def stream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[Any]:
        yield self.invoke(input, config, **kwargs)

    async def astream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        """Stream the inner runnable's chunks (``astream_log``); the result is their sum."""
        inv = _invocation_of(config)
        if inv is None:
            async for chunk in self.inner.astream(input, config, **kwargs):
                yield chunk
            return
        assert config is not None
        act = inv.begin(self.node, input, config)
        result: Any = None
        started = False
        try:
            async for chunk in _scoped(act, self.inner.astream(input, act.config, **kwargs)):
                result = chunk if not started else _add(result, chunk)
                started = True
                yield chunk
        except BaseException as exc:
            tokens = act.enter()
            try:
                inv.fail(act, exc)
            finally:
                act.exit(tokens)
            raise
        tokens = act.enter()
        try:
            inv.end(act, result)
        finally:
            act.exit(tokens)


async def _scoped(act: Activation, chunks: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """Iterate ``chunks`` with the activation current while each chunk is produced."""
    iterator = chunks.__aiter__()
    while True:
        tokens = act.enter()
        try:
            chunk = await iterator.__anext__()
        except StopAsyncIteration:
            return
        finally:
            act.exit(tokens)
        yield chunk


def _add(left: Any, right: Any) -> Any:
    try:
        return left + right
    except TypeError:
        return right
