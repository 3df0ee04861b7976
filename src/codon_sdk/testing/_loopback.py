"""A threaded HTTP/1.1 server on 127.0.0.1 that always stops cleanly.

Shared by the OpenAI protocol server and the OTLP receiver. Stopping joins every
handler thread, and first shuts down every open connection, so an idle
keep-alive connection left open by a client (or a handler sleeping in a fault
delay) never keeps ``stop()`` waiting.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from typing_extensions import Self

from codon_sdk.redaction import get_logger

__all__ = ["LoopbackHTTPServer", "QuietHandler", "Served", "read_body"]

_log = get_logger("codon_sdk.testing")


class Served:
    """Base of the test servers: ``with Server(...) as server:`` starts and stops it."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class LoopbackHTTPServer(ThreadingHTTPServer):
    """A :class:`ThreadingHTTPServer` on 127.0.0.1 that tracks its connections."""

    daemon_threads = False
    block_on_close = True

    def __init__(self, handler: type[BaseHTTPRequestHandler], *, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), handler)
        self.stopping = threading.Event()
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self, name: str) -> None:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, cut open connections, join every thread and close the socket."""
        self.stopping.set()
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
            self._thread = None
        with self._open_lock:
            open_now = list(self._open)
        for conn in open_now:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self.server_close()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)) or self.stopping.is_set():
            _log.debug("connection from %s ended: %r", client_address, exc)
        else:
            _log.exception("unexpected error while serving %s", client_address)


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler that logs request lines at DEBUG, never headers."""

    protocol_version = "HTTP/1.1"
    timeout = 60.0
    server: LoopbackHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("%s %s", self.address_string(), format % args)

    def send_bytes(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        """Send a complete response with a Content-Length."""
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def cut_connection(self) -> None:
        """Close the connection abruptly, as a crashed upstream would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def pause(self, seconds: float) -> bool:
        """Sleep, waking early when the server stops; True when the server is stopping."""
        return self.server.stopping.wait(seconds) if seconds > 0 else self.server.stopping.is_set()


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body, by Content-Length or chunked transfer coding."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        parts: list[bytes] = []
        while True:
            size = int(handler.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            parts.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length > 0 else b""
