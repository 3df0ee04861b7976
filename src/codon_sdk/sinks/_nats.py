"""NatsSink: ship the audit trail to a NATS JetStream stream as it is written (extra ``nats``).

Each entry is one message on the subject ``<subject>.<run token>`` (one subject per run;
the token is the run id when it is made of letters, digits, ``-`` and ``_``, else ``=``
and the hex of its UTF-8 bytes), its body the entry's exact bytes, with the headers

* ``Nats-Msg-Id``: the entry's leaf hash (hex), so the server drops a re-delivery
  within the stream's duplicate window (:attr:`NatsSink.duplicate_window`);
* ``Codon-Run-Id`` and ``Codon-Seq``: the run and the entry's position.

Publishing waits for the stream's acknowledgement of each message before the next,
which keeps a run's messages in chain order across reconnects and retries. The sink's
cursor for a run is read from the stream (the ``Codon-Seq`` of the run subject's last
message), so a new process catches up where the last one stopped.

nats-py is asyncio; the sink runs its own event loop on a daemon thread and its
sync methods wait on it, so it works from the relay's thread and from any caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from codon_sdk._text import printable
from codon_sdk.errors import AuditSinkError, InvalidSinkURLError
from codon_sdk.sinks._base import AuditSink
from codon_sdk.sinks._entry import AuditEntry

__all__ = ["NatsSink", "StreamMessage", "subject_token"]

_T = TypeVar("_T")
_SAFE_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,200}")
_STREAM_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SUBJECT = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
_RUN_HEADER = "Codon-Run-Id"
_SEQ_HEADER = "Codon-Seq"
_ID_HEADER = "Nats-Msg-Id"


def subject_token(run_id: str) -> str:
    """The subject token of a run: its id when that is a safe NATS token, else ``=`` + hex."""
    if _SAFE_TOKEN.fullmatch(run_id):
        return run_id
    return "=" + run_id.encode("utf-8").hex()


@dataclass(frozen=True, slots=True)
class StreamMessage:
    """One message read back from the stream (hostile input: nothing in it is trusted)."""

    stream_seq: int
    subject: str
    run_id: str | None
    key: str | None
    data: bytes


def _import_nats() -> Any:
    try:
        import nats
    except ImportError as err:  # pragma: no cover - the extra is part of dev
        raise ImportError(
            'NatsSink needs the nats-py package: pip install "codon-sdk[nats]"'
        ) from err
    return nats


class NatsSink(AuditSink):
    """An audit sink publishing each committed entry to a NATS JetStream stream.

    ``servers``: one URL or a list (``nats://127.0.0.1:4222``). ``stream``: the stream's
    name, created on first use (file storage, subjects ``<subject>.>``) when missing.
    ``subject``: the subject prefix. ``timeout``: seconds to wait for a connection or
    an acknowledgement. ``duplicate_window``: seconds the server remembers message ids
    (a new stream's setting). Also opened by URL: ``open_sink("nats://host:4222?stream=S")``.
    """

    def __init__(
        self,
        servers: str | Sequence[str] = "nats://127.0.0.1:4222",
        *,
        stream: str = "CODON_AUDIT",
        subject: str = "codon.audit",
        timeout: float = 2.0,
        duplicate_window: float = 120.0,
    ) -> None:
        self.servers = [servers] if isinstance(servers, str) else list(servers)
        if not self.servers or not all(
            isinstance(s, str) and s.startswith(("nats://", "tls://")) for s in self.servers
        ):
            raise InvalidSinkURLError(
                f"NatsSink servers must be nats:// or tls:// URLs, got {servers!r}"
            )
        if not isinstance(stream, str) or not _STREAM_NAME.fullmatch(stream):
            raise InvalidSinkURLError(
                f"stream name {stream!r} is not valid: use letters, digits, - and _ (at most 64)"
            )
        if not isinstance(subject, str) or not _SUBJECT.fullmatch(subject):
            raise InvalidSinkURLError(
                f"subject prefix {subject!r} is not valid: dot-separated tokens of letters, "
                "digits, - and _ (no wildcards)"
            )
        for label, value in (("timeout", timeout), ("duplicate_window", duplicate_window)):
            if type(value) not in (int, float) or not value > 0:
                raise InvalidSinkURLError(f"{label} must be a positive number, got {value!r}")
        self.stream = stream
        self.subject = subject
        self.timeout = float(timeout)
        self.duplicate_window = float(duplicate_window)
        self._nats = _import_nats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._loop_lock = threading.Lock()
        self._nc: Any = None
        self._js: Any = None

    def __repr__(self) -> str:
        return f"NatsSink({','.join(self.servers)!r}, stream={self.stream!r})"

    def run_subject(self, run_id: str) -> str:
        """The subject a run's entries are published on."""
        return f"{self.subject}.{subject_token(run_id)}"

    # ------------------------------------------------------------------ the seam

    def deliver(self, entries: Sequence[AuditEntry]) -> None:
        self._call(self._publish(entries))

    def cursor(self, run_id: str) -> int:
        return self._call(self._cursor(run_id))

    def shutdown(self) -> None:
        with self._loop_lock:
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(AuditSinkError):
            self._call(self._disconnect())
        with self._loop_lock:
            self._loop = self._thread = None
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        if not thread.is_alive():
            loop.close()

    # ------------------------------------------------------------------ reading back

    def messages(self, run_id: str | None = None) -> Iterator[StreamMessage]:
        """The stream's messages in stream order: of one run, or of every run."""
        subject = self.run_subject(run_id) if run_id is not None else f"{self.subject}.>"
        seq = 1
        while True:
            found = self._call(self._next_message(seq, subject))
            if found is None:
                return
            yield found
            seq = found.stream_seq + 1

    def delete_stream(self) -> None:
        """Delete the stream and every message in it (tests, teardown); no-op when absent."""
        self._call(self._delete())

    def run_tokens(self) -> list[str]:
        """The run subject tokens the stream holds messages for (no decoding)."""
        return self._call(self._tokens())

    # ------------------------------------------------------------------ the event loop

    def _call(self, coro: Coroutine[Any, Any, _T]) -> _T:
        loop = self._ensure_loop()
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result(self.timeout * 3 + 5)
        except AuditSinkError:
            raise
        except Exception as exc:
            future.cancel()
            raise AuditSinkError(
                f"NATS JetStream at {', '.join(self.servers)} (stream {self.stream}): "
                f"{type(exc).__name__}: {printable(str(exc)) or 'no answer'}; check that the "
                "server runs with JetStream enabled (nats-server -js)"
            ) from exc

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._loop_lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=loop.run_forever, name="codon-nats-sink", daemon=True
                )
                self._thread.start()
                self._loop = loop
            return self._loop

    async def _connected(self) -> Any:
        nc = self._nc
        if nc is not None and not nc.is_closed:
            return self._js

        async def quiet(*_: Any) -> None:  # nats-py logs every failed reconnect otherwise
            return None

        nc = await asyncio.wait_for(
            self._nats.connect(
                servers=self.servers,
                connect_timeout=self.timeout,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.2,
                name="codon-audit-sink",
                error_cb=quiet,
                disconnected_cb=quiet,
            ),
            self.timeout,
        )
        js = nc.jetstream(timeout=self.timeout)
        from nats.js.errors import NotFoundError

        try:
            await js.stream_info(self.stream)
        except NotFoundError:
            await js.add_stream(
                name=self.stream,
                subjects=[f"{self.subject}.>"],
                duplicate_window=self.duplicate_window,
            )
        self._nc, self._js = nc, js
        return js

    async def _publish(self, entries: Sequence[AuditEntry]) -> None:
        js = await self._connected()
        for item in entries:
            headers = {
                _ID_HEADER: item.key,
                _RUN_HEADER: item.run_id,
                _SEQ_HEADER: str(item.seq),
            }
            await js.publish(
                self.run_subject(item.run_id),
                item.entry,
                timeout=self.timeout,
                stream=self.stream,
                headers=headers,
            )

    async def _cursor(self, run_id: str) -> int:
        js = await self._connected()
        from nats.js.errors import NotFoundError

        try:
            last = await js.get_last_msg(self.stream, self.run_subject(run_id))
        except NotFoundError:
            return 0
        text = (last.headers or {}).get(_SEQ_HEADER, "")
        # hostile: a header that is not a plain count means "deliver everything again"
        return int(text) + 1 if isinstance(text, str) and text.isdigit() and len(text) < 19 else 0

    async def _next_message(self, seq: int, subject: str) -> StreamMessage | None:
        js = await self._connected()
        from nats.js.errors import NotFoundError

        try:
            raw = await js.get_msg(self.stream, seq=seq, subject=subject, next=True)
        except NotFoundError:
            return None
        headers = raw.headers or {}
        run = headers.get(_RUN_HEADER)
        key = headers.get(_ID_HEADER)
        return StreamMessage(
            stream_seq=int(raw.seq or 0),
            subject=str(raw.subject or ""),
            run_id=run if isinstance(run, str) else None,
            key=key if isinstance(key, str) else None,
            data=bytes(raw.data or b""),
        )

    async def _tokens(self) -> list[str]:
        js = await self._connected()
        info = await js.stream_info(self.stream, subjects_filter=f"{self.subject}.>")
        subjects = info.state.subjects or {}
        prefix = self.subject + "."
        return sorted(s[len(prefix) :] for s in subjects if s.startswith(prefix))

    async def _delete(self) -> None:
        js = await self._connected()
        from nats.js.errors import NotFoundError

        with contextlib.suppress(NotFoundError):
            await js.delete_stream(self.stream)
        nc, self._nc, self._js = self._nc, None, None
        await nc.close()

    async def _disconnect(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None and not nc.is_closed:
            await nc.close()
