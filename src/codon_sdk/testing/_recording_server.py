"""The part every protocol server of the test kit shares: recordings in, HTTP answers out.

:class:`RecordingServer` keeps the recordings and the requests received and
picks the answer to each request, in this order: the first queued recording
(:meth:`~RecordingServer.enqueue`, served once each, FIFO) whose match fits;
else the most specific added recording (:meth:`~RecordingServer.add`,
reusable) whose match fits; else the ``fallback`` if one was given; else
``None`` (each protocol answers that with its own error). :class:`RecordingHandler`
receives requests and sends whole bodies and server-sent event streams with the
recordings' faults (delays, connections cut midway). A protocol (OpenAI,
Anthropic) is a subclass of each.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from typing_extensions import Self

from codon_sdk.testing._loopback import LoopbackHTTPServer, QuietHandler, Served, read_body
from codon_sdk.testing._recordings import (
    RecordedRequest,
    Recording,
    load_recordings,
    request_hash,
)

__all__ = ["Fallback", "RecordingHandler", "RecordingServer"]

Fallback = Callable[[RecordedRequest], Recording]


class RecordingServer(Served):
    """A threaded server on 127.0.0.1 answering from recordings (see the module docstring).

    Args:
        recordings: reusable recordings, as if passed to :meth:`add`.
        fallback: called for requests no recording matches; by default those get an
            HTTP 500 from the protocol.
        port: the port to bind; 0 (default) picks a free one.
    """

    handler: ClassVar[type[RecordingHandler]]
    label: ClassVar[str] = "RecordingServer"  # for messages
    thread_name: ClassVar[str] = "codon-recording-server"

    def __init__(
        self,
        recordings: Iterable[Recording] = (),
        *,
        fallback: Fallback | None = None,
        port: int = 0,
    ) -> None:
        self._lock = threading.Lock()
        self._library: list[Recording] = list(recordings)
        self._queue: list[Recording] = []
        self._requests: list[RecordedRequest] = []
        self._fallback = fallback
        self._requested_port = port
        self._http: _HTTPServer | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Bind and serve in background threads; returns the server."""
        if self._http is not None:
            raise RuntimeError(f"{self.label} is already running; call stop() first")
        http = _HTTPServer(self, port=self._requested_port)
        http.start(name=f"{self.thread_name}:{http.port}")
        self._http = http
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and join every thread. Idempotent."""
        http, self._http = self._http, None
        if http is not None:
            http.stop()

    @property
    def port(self) -> int:
        if self._http is None:
            raise RuntimeError(f"{self.label} is not running; call start() first")
        return self._http.port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------ script

    def add(self, *recordings: Recording) -> None:
        """Add reusable recordings; the most specific match wins, ties go to the earliest."""
        with self._lock:
            self._library.extend(recordings)

    def load(self, path: str | os.PathLike[str]) -> None:
        """Add the recordings of a JSON file or directory (see :func:`load_recordings`)."""
        self.add(*load_recordings(path))

    def enqueue(self, *recordings: Recording) -> None:
        """Queue recordings served once each, in order, ahead of added ones."""
        with self._lock:
            self._queue.extend(recordings)

    @property
    def pending(self) -> tuple[Recording, ...]:
        """Queued recordings not served yet."""
        with self._lock:
            return tuple(self._queue)

    @property
    def requests(self) -> tuple[RecordedRequest, ...]:
        """Every request received so far, in arrival order."""
        with self._lock:
            return tuple(self._requests)

    def clear(self) -> None:
        """Forget received requests and queued recordings (added ones stay)."""
        with self._lock:
            self._requests.clear()
            self._queue.clear()

    # ------------------------------------------------------------ serving

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _select(self, request: RecordedRequest) -> Recording | None:
        with self._lock:
            for index, queued in enumerate(self._queue):
                if queued.match.matches(request):
                    return self._queue.pop(index)
            best: Recording | None = None
            for recording in self._library:
                fits = recording.match.matches(request)
                if fits and (best is None or recording.match.specificity > best.match.specificity):
                    best = recording
        if best is None and self._fallback is not None:
            return self._fallback(request)
        return best


class _HTTPServer(LoopbackHTTPServer):
    def __init__(self, owner: RecordingServer, *, port: int) -> None:
        super().__init__(owner.handler, port=port)
        self.owner = owner


class RecordingHandler(QuietHandler):
    """Receiving requests and sending recorded answers. A protocol says which paths it
    serves and how it words its errors (``_known_path``, ``_bad_json``, ``_unknown_path``,
    ``_unmatched``) and how it sends a recorded body (``_serve_body``)."""

    server: _HTTPServer
    request_id_header: ClassVar[str] = "x-request-id"

    @property
    def _owner(self) -> RecordingServer:
        return self.server.owner

    def _receive(self, raw: bytes, body: Any = None) -> RecordedRequest:
        path, _, query = self.path.partition("?")
        request = RecordedRequest(
            method=self.command,
            path=path,
            query=query,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            raw_body=raw,
            request_hash=request_hash(path, body),
        )
        self._owner._record(request)
        return request

    def _request_id(self) -> str:
        raise NotImplementedError

    def _known_path(self, path: str) -> bool:
        raise NotImplementedError

    def _bad_json(self) -> Any:
        """The error body for a request body that is not JSON (sent with a 400)."""
        raise NotImplementedError

    def _unknown_path(self, method: str, path: str) -> Any:
        """The error body for a path the protocol does not serve (sent with a 404)."""
        raise NotImplementedError

    def _unmatched(self, request: RecordedRequest) -> Any:
        """The error body for a request no recording matched (sent with a 500)."""
        raise NotImplementedError

    def _serve_body(self, recording: Recording, request: RecordedRequest) -> None:
        raise NotImplementedError

    def do_GET(self) -> None:
        self._receive(b"")
        self._send_json(404, self._unknown_path("GET", self.path))

    def do_POST(self) -> None:
        raw = read_body(self)
        path = self.path.split("?", 1)[0]
        try:
            body = json.loads(raw) if raw else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            self._receive(raw, None)
            self._send_json(400, self._bad_json())
            return
        request = self._receive(raw, body)
        if not self._known_path(path):
            self._send_json(404, self._unknown_path("POST", path))
            return
        recording = self._owner._select(request)
        if recording is None:
            self._send_json(500, self._unmatched(request))
            return
        if self.pause(recording.delay):
            self.cut_connection()
            return
        if recording.raw_body is not None:
            headers = self._headers(recording, "application/json")
            self._send_whole(recording.status, recording.raw_body, headers, recording.cut_after)
            return
        self._serve_body(recording, request)

    def _headers(self, recording: Recording, content_type: str) -> dict[str, str]:
        headers = {"content-type": content_type, self.request_id_header: self._request_id()}
        headers.update(recording.headers)
        return headers

    def _send_json(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        merged = {"content-type": "application/json", **(headers or {})}
        self.send_bytes(status, payload, merged)

    def _send_whole(
        self, status: int, body: bytes, headers: dict[str, str], cut: int | None
    ) -> None:
        if cut == 0:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.cut_connection()
            return
        self.send_bytes(status, body, headers)

    def _send_stream(self, recording: Recording, items: list[bytes]) -> None:
        self.send_response(recording.status)
        headers = self._headers(recording, "text/event-stream; charset=utf-8")
        headers.update({"cache-control": "no-cache", "transfer-encoding": "chunked"})
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        for count, item in enumerate(items):
            if recording.cut_after is not None and count >= recording.cut_after:
                self.cut_connection()
                return
            if count and self.pause(recording.chunk_delay):
                self.cut_connection()
                return
            self.wfile.write(b"%x\r\n%s\r\n" % (len(item), item))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
