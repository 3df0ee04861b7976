"""Streams of LLM clients: live wrappers that record a stream when it ends; replay's stand-ins.

Written for clients whose streams look like ``openai.Stream`` and ``anthropic.Stream``
(iteration, ``close()``, ``with``, a ``response`` the helpers close).

A live stream (:class:`InstrumentedStream`, :class:`InstrumentedAsyncStream`)
yields the client's chunks unchanged and calls ``on_end(chunks, outcome,
error)`` exactly once, when the stream

- is exhausted (``"completed"``),
- fails while being read (``"failed"``, with the error, which still propagates),
- is closed before its end by ``close()``, a ``with`` block, the ``response``'s
  ``close()`` (the client's ``.stream()`` helpers close it that way) or garbage
  collection (``"closed"``: what was consumed is recorded).

Everything else (``response``, private attributes the client's helpers use) is
delegated to the wrapped stream. On resume and replay :class:`ReplayStream` /
:class:`AsyncReplayStream` yield the recorded chunks, then raise the recorded
error if the stream had failed; they support iteration, ``with`` and
``close()`` like the client's streams.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

from typing_extensions import Self

from codon_sdk.redaction import get_logger

__all__ = [
    "AsyncReplayStream",
    "InstrumentedAsyncStream",
    "InstrumentedStream",
    "LiveRawResponse",
    "ReplayStream",
    "ServedRawResponse",
    "StreamEnd",
]

_log = get_logger("codon_sdk.llm")

OnEnd = Callable[[list[Any], str, "BaseException | None"], None]


class StreamEnd:
    """Collects a stream's chunks and reports its end exactly once (shared by sync and async)."""

    __slots__ = ("_chunks", "_done", "_lock", "_on_end")

    def __init__(self, on_end: OnEnd) -> None:
        self._on_end = on_end
        self._chunks: list[Any] = []
        self._done = False
        self._lock = threading.Lock()

    @property
    def done(self) -> bool:
        return self._done

    def add(self, chunk: Any) -> None:
        self._chunks.append(chunk)

    def end(self, outcome: str, error: BaseException | None = None) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
        self._on_end(list(self._chunks), outcome, error)

    def abandon(self) -> None:
        """End from a finaliser: never raise (there is nobody to raise to)."""
        try:
            self.end("closed")
        except Exception:
            _log.debug("could not record an abandoned LLM stream", exc_info=True)


class _ResponseProxy:
    """The stream's HTTP response; closing it ends the stream (as the client's helpers do)."""

    def __init__(self, response: Any, end: StreamEnd) -> None:
        self._response = response
        self._end = end

    def close(self) -> None:
        try:
            self._response.close()
        finally:
            self._end.end("closed")

    async def aclose(self) -> None:
        try:
            await self._response.aclose()
        finally:
            self._end.end("closed")

    def __getattr__(self, name: str) -> Any:
        if name in ("_response", "_end"):  # not set yet (copy, pickle): never recurse
            raise AttributeError(name)
        return getattr(self._response, name)


class _Closing:
    """``with stream:`` closes it (the one ``close`` each stream class defines)."""

    __slots__ = ()

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _AsyncClosing:
    """``async with stream:`` and ``await stream.aclose()`` both ``await stream.close()``."""

    __slots__ = ()

    async def close(self) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        await self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class _Wrapper:
    __slots__ = ("__weakref__", "_end", "_inner", "_response")

    def __init__(self, inner: Any, end: StreamEnd) -> None:
        self._inner = inner
        self._end = end
        self._response: _ResponseProxy | None = None

    @property
    def response(self) -> Any:
        if self._response is None:
            self._response = _ResponseProxy(self._inner.response, self._end)
        return self._response

    def __getattr__(self, name: str) -> Any:
        if name in ("_inner", "_end", "_response"):  # a slot not set yet: never recurse
            raise AttributeError(name)
        return getattr(self._inner, name)

    def __del__(self) -> None:
        end = getattr(self, "_end", None)
        if end is not None and not end.done:
            end.abandon()


class InstrumentedStream(_Closing, _Wrapper):
    """A client ``Stream`` whose end is recorded (see the module docstring)."""

    __slots__ = ()

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> Any:
        try:
            chunk = self._inner.__next__()
        except StopIteration:
            self._end.end("completed")
            raise
        except Exception as exc:
            self._end.end("failed", exc)
            raise
        self._end.add(chunk)
        return chunk

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            self._end.end("closed")


class InstrumentedAsyncStream(_AsyncClosing, _Wrapper):
    """A client ``AsyncStream`` whose end is recorded (see the module docstring)."""

    __slots__ = ()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self._inner.__anext__()
        except StopAsyncIteration:
            self._end.end("completed")
            raise
        except Exception as exc:
            self._end.end("failed", exc)
            raise
        self._end.add(chunk)
        return chunk

    async def close(self) -> None:
        try:
            await self._inner.close()
        finally:
            self._end.end("closed")


# --------------------------------------------------------------------------- served


class _ServedHTTPResponse:
    """Stands for the HTTP response of a served stream: closing it closes the stream."""

    def __init__(self, stream: _Replay, headers: Mapping[str, str]) -> None:
        self._stream = stream
        self.headers = dict(headers)
        self.status_code = 200
        self.http_version = "HTTP/1.1"

    def close(self) -> None:
        self._stream._closed = True

    async def aclose(self) -> None:
        self._stream._closed = True


class _Replay:
    __slots__ = ("_closed", "_error", "_items", "_response")

    def __init__(
        self,
        items: Iterable[Any],
        error: BaseException | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._items = iter(list(items))
        self._error = error
        self._closed = False
        self._response = _ServedHTTPResponse(self, headers or {})

    @property
    def response(self) -> Any:
        return self._response

    def _next(self) -> Any:
        if self._closed:
            return _END
        item = next(self._items, _END)
        if item is _END and self._error is not None:
            error, self._error = self._error, None
            self._closed = True
            raise error
        if item is _END:
            self._closed = True
        return item


_END: Any = object()


class ReplayStream(_Closing, _Replay):
    """A recorded stream, served: iterate it, use it in ``with``, ``close()`` it."""

    __slots__ = ()

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> Any:
        item = self._next()
        if item is _END:
            raise StopIteration
        return item

    def close(self) -> None:
        self._closed = True


class AsyncReplayStream(_AsyncClosing, _Replay):
    """A recorded stream, served to async code: ``async for``, ``async with``, ``await close()``."""

    __slots__ = ()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Any:
        item = self._next()
        if item is _END:
            raise StopAsyncIteration
        return item

    async def close(self) -> None:
        self._closed = True


# --------------------------------------------------------------------------- raw responses


class LiveRawResponse:
    """A ``with_raw_response`` result whose ``parse()`` returns the instrumented stream."""

    def __init__(self, raw: Any, parsed: Any) -> None:
        self._raw = raw
        self._parsed = parsed

    def parse(self, *, to: Any = None) -> Any:
        return self._parsed if to is None else self._raw.parse(to=to)

    def __getattr__(self, name: str) -> Any:
        if name in ("_raw", "_parsed"):
            raise AttributeError(name)
        return getattr(self._raw, name)


class ServedRawResponse:
    """A ``with_raw_response`` result served from the ledger: ``parse()``, ``headers``,
    ``status_code`` and ``request_id`` (no HTTP response behind it)."""

    def __init__(self, parsed: Any, headers: Mapping[str, str]) -> None:
        self._parsed = parsed
        self.headers = dict(headers)
        self.status_code = 200
        self.http_response = None

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-request-id") or self.headers.get("request-id")

    def parse(self, *, to: Any = None) -> Any:
        return self._parsed
