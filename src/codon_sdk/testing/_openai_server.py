"""A local HTTP server that speaks the OpenAI protocol from recordings.

Point the real ``openai`` client at it::

    with OpenAIProtocolServer(bundled_recordings()) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test")
        client.chat.completions.create(model="gpt-4o-mini", messages=[...])
        assert server.requests[0].headers["authorization"] == "Bearer sk-test"

It serves ``POST /v1/chat/completions``, ``/v1/responses`` and
``/v1/embeddings``. Each request gets, in this order: the first queued
recording (:meth:`~OpenAIProtocolServer.enqueue`, served once each, FIFO) whose
match fits; else the most specific added recording
(:meth:`~OpenAIProtocolServer.add`, reusable) whose match fits; else the
``fallback`` if one was given; else an HTTP 500 whose JSON error says no
recording matched, with the request's path, model and hash.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from typing_extensions import Self

from codon_sdk.redaction import get_logger
from codon_sdk.testing._loopback import LoopbackHTTPServer, QuietHandler, Served, read_body
from codon_sdk.testing._openai_wire import (
    chat_stream,
    encode_embeddings,
    final_response_of,
    responses_stream,
)
from codon_sdk.testing._recordings import (
    RecordedRequest,
    Recording,
    error_body,
    load_recordings,
    request_hash,
)

__all__ = ["OpenAIProtocolServer"]

_log = get_logger("codon_sdk.testing")
_ENDPOINTS = frozenset({"/v1/chat/completions", "/v1/responses", "/v1/embeddings"})
_STREAMABLE = frozenset({"/v1/chat/completions", "/v1/responses"})

Fallback = Callable[[RecordedRequest], Recording]


class OpenAIProtocolServer(Served):
    """Threaded OpenAI-protocol server on 127.0.0.1 answering from recordings.

    Args:
        recordings: reusable recordings, as if passed to :meth:`add`.
        fallback: called for requests no recording matches (for example
            :func:`echo_fallback`); by default those get an HTTP 500.
        port: the port to bind; 0 (default) picks a free one.
    """

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
            raise RuntimeError("OpenAIProtocolServer is already running; call stop() first")
        http = _HTTPServer(self, port=self._requested_port)
        http.start(name=f"codon-openai-server:{http.port}")
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
            raise RuntimeError("OpenAIProtocolServer is not running; call start() first")
        return self._http.port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, for ``openai.OpenAI(base_url=...)``."""
        return f"{self.url}/v1"

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
    def __init__(self, owner: OpenAIProtocolServer, *, port: int) -> None:
        super().__init__(_Handler, port=port)
        self.owner = owner


class _Handler(QuietHandler):
    server: _HTTPServer

    @property
    def _owner(self) -> OpenAIProtocolServer:
        return self.server.owner

    def do_GET(self) -> None:
        self._receive(b"")
        self._send_json(404, _invalid_url("GET", self.path))

    def do_POST(self) -> None:
        raw = read_body(self)
        path = self.path.split("?", 1)[0]
        try:
            body = json.loads(raw) if raw else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            self._receive(raw, None)
            message = "We could not parse the JSON body of your request."
            self._send_json(400, error_body(message, type="invalid_request_error"))
            return
        request = self._receive(raw, body)
        if path not in _ENDPOINTS:
            self._send_json(404, _invalid_url("POST", path))
            return
        recording = self._owner._select(request)
        if recording is None:
            self._send_json(500, _no_match(request))
            return
        self._serve(recording, request)

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

    def _headers(self, recording: Recording, content_type: str) -> dict[str, str]:
        headers = {"content-type": content_type, "x-request-id": f"req_{uuid.uuid4().hex}"}
        headers.update(recording.headers)
        return headers

    def _send_json(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        merged = {"content-type": "application/json", **(headers or {})}
        self.send_bytes(status, payload, merged)

    def _serve(self, recording: Recording, request: RecordedRequest) -> None:
        if self.pause(recording.delay):
            self.cut_connection()
            return
        if recording.raw_body is not None:
            headers = self._headers(recording, "application/json")
            self._send_whole(recording.status, recording.raw_body, headers, recording.cut_after)
            return
        streamed = request.stream and 200 <= recording.status < 300 and request.path in _STREAMABLE
        if streamed:
            try:
                if request.path == "/v1/chat/completions":
                    items = chat_stream(recording, request)
                else:
                    items = responses_stream(recording)
            except ValueError as exc:
                self._send_json(500, error_body(str(exc), type="codon_testing_error"))
                return
            self._send_stream(recording, items)
            return
        body = final_response_of(recording) if request.path == "/v1/responses" else recording.body
        if body is None and recording.chunks is not None:
            message = (
                f"recording {recording.name!r} has only stream chunks; request was not streamed"
            )
            self._send_json(500, error_body(message, type="codon_testing_error"))
            return
        if request.path == "/v1/embeddings":
            body = encode_embeddings(body, request)
        payload = json.dumps(body).encode()
        headers = self._headers(recording, "application/json")
        self._send_whole(recording.status, payload, headers, recording.cut_after)

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


def _invalid_url(method: str, path: str) -> dict[str, Any]:
    return error_body(f"Invalid URL ({method} {path})", type="invalid_request_error")


def _no_match(request: RecordedRequest) -> dict[str, Any]:
    message = (
        f"No recording matched POST {request.path} (model={request.model!r}, "
        f"request_hash={request.request_hash!r}, stream={request.stream}). Add a Recording "
        "whose RequestMatch fits, enqueue one, or pass fallback=echo_fallback."
    )
    _log.debug("%s", message)
    return error_body(message, type="codon_testing_error", code="no_recording_matched")
