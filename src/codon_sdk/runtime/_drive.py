"""Drivers: one async engine, run from sync code, from inside a running loop, or as a stream."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterator
from datetime import datetime, timezone
from typing import Any, TypeVar

from codon_sdk.runtime._records import StreamEvent

__all__ = ["run_coroutine", "stream_async", "stream_sync"]

T = TypeVar("T")
_DONE = object()


def _in_running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def run_coroutine(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code.

    Outside an event loop it runs on a fresh loop in this thread; inside one (a
    notebook, an async web handler) it runs on a fresh loop in a helper thread,
    with the caller's context variables (the current span, for instance).
    """
    if not _in_running_loop():
        return _run_fresh(factory)
    ctx = contextvars.copy_context()
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="codon-run") as pool:
        return pool.submit(ctx.run, _run_fresh, factory).result()


def _run_fresh(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(factory())
    finally:
        try:
            _cancel_leftovers(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))


Starter = Callable[[Callable[[str, dict[str, Any]], None]], Coroutine[Any, Any, Any]]


async def stream_async(start: Starter) -> AsyncGenerator[StreamEvent, None]:
    """Run ``start(observer)`` as a task and yield what the observer sees, as it happens."""
    queue: asyncio.Queue[Any] = asyncio.Queue()

    def observe(event_type: str, data: dict[str, Any]) -> None:
        queue.put_nowait(StreamEvent(event_type, data, datetime.now(timezone.utc)))

    task = asyncio.ensure_future(start(observe))
    task.add_done_callback(lambda _t: queue.put_nowait(_DONE))
    try:
        while True:
            item = await queue.get()
            if item is _DONE:
                break
            yield item
        task.result()  # re-raise the run's failure, if any
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):  # the consumer stopped early
                await task


def stream_sync(start: Starter) -> Iterator[StreamEvent]:
    """The blocking twin of :func:`stream_async`, on a private event loop."""
    if _in_running_loop():
        raise RuntimeError(
            "execute_streaming() cannot be used inside a running event loop; "
            "use `async for event in workload.execute_streaming_async(...)` instead"
        )
    return _stream_sync(start)


def _stream_sync(start: Starter) -> Iterator[StreamEvent]:
    loop = asyncio.new_event_loop()
    agen = stream_async(start)
    try:
        while True:
            try:
                event = loop.run_until_complete(agen.__anext__())
            except StopAsyncIteration:
                return
            yield event
    finally:
        try:
            loop.run_until_complete(agen.aclose())
            _cancel_leftovers(loop)
        finally:
            loop.close()
