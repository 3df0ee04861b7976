"""A loopback TCP proxy in front of the PostgreSQL server, to play faults a test may not play
on the shared server itself: a restart (every connection cut, new ones refused for a while)
and a commit whose acknowledgement is lost (the server gets the whole transaction and
commits it; the client never hears back and sees its connection close)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit

from typing_extensions import Self

_CHUNK = 65536


class _Pair:
    """One proxied connection: the client's socket and the server's."""

    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self.client = client
        self.server = server
        self.mute = False  # swallow what the server says from now on

    def close(self) -> None:
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()


class PgProxy:
    """Forwards 127.0.0.1:<free port> to ``upstream`` (host, port), one thread per direction."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._pairs: set[_Pair] = set()
        self._lock = threading.Lock()
        self._up = threading.Event()
        self._up.set()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._armed: tuple[str, float, bytes] | None = None  # what the next match sets off
        self.lost_acks = 0  # connections cut after the server got a request (lose_next_reply)
        self.refused = 0  # connections refused while down
        self.restarts = 0
        self.requests = 0  # chunks the clients sent (one per round trip, for small requests)

    # ------------------------------------------------------------------ faults

    def url_for(self, url: str) -> str:
        """``url`` (a PostgreSQL URL) going through this proxy."""
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")
        host = f"127.0.0.1:{self.port}"
        auth = netloc[0] + "@" if netloc[1] else ""
        return urlunsplit((parts.scheme, auth + host, parts.path, parts.query, parts.fragment))

    def restart(self, down_for: float) -> None:
        """Cut every connection and refuse new ones (accepted and closed at once, as a server
        shutting down or starting up does) for ``down_for`` seconds; returns at once."""
        self.down()
        timer = threading.Timer(down_for, self.up)
        timer.daemon = True
        timer.start()

    def down(self) -> None:
        """Cut every connection and refuse new ones until :meth:`up`."""
        self._up.clear()
        self.restarts += 1
        self._cut_all()

    def up(self) -> None:
        self._up.set()

    def lose_next_reply(self, *, settle: float = 0.3, at: bytes = b"COMMIT") -> None:
        """The next request holding ``at`` (by default a ``COMMIT``, of any write
        transaction; a run id: the next write of that run, also one that is a statement of
        its own) reaches the server, but its connection hears nothing more and is cut
        ``settle`` seconds later (the server has committed by then)."""
        with self._lock:
            self._armed = ("lose", settle, at)

    def restart_at_next_commit(self, down_for: float, *, at: bytes = b"COMMIT") -> None:
        """:meth:`restart` when the next request holding ``at`` comes (it never reaches the
        server): a restart in the middle of a write."""
        with self._lock:
            self._armed = ("restart", down_for, at)

    def _cut_all(self) -> None:
        with self._lock:
            pairs = list(self._pairs)
            self._pairs.clear()
        for pair in pairs:
            pair.close()

    # ------------------------------------------------------------------ plumbing

    def start(self) -> Self:
        thread = threading.Thread(target=self._accept, name="pg-proxy-accept", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        self._cut_all()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._up.is_set():
                self.refused += 1
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            pair = _Pair(client, server)
            with self._lock:
                self._pairs.add(pair)
            for src, dst, up in ((client, server, True), (server, client, False)):
                thread = threading.Thread(
                    target=self._pump, args=(pair, src, dst, up), name="pg-proxy", daemon=True
                )
                thread.start()

    def _pump(self, pair: _Pair, src: socket.socket, dst: socket.socket, up: bool) -> None:
        try:
            while data := src.recv(_CHUNK):
                armed = self._armed
                if up:
                    self.requests += 1
                if up and armed is not None and armed[2] in data:
                    if not self._set_off(pair):
                        break  # restarted: the COMMIT never reaches the server
                elif not up and pair.mute:
                    continue  # the server's answer is lost
                dst.sendall(data)
        except OSError:
            pass
        with self._lock:
            self._pairs.discard(pair)
        pair.close()

    def _set_off(self, pair: _Pair) -> bool:
        """The armed fault, at a COMMIT on ``pair``; whether to forward the COMMIT."""
        with self._lock:
            armed, self._armed = self._armed, None
        if armed is None:
            return True
        kind, seconds, _ = armed
        if kind == "restart":
            self.restart(seconds)
            return False
        pair.mute = True
        self.lost_acks += 1
        timer = threading.Timer(seconds, self._cut, args=(pair,))
        timer.daemon = True
        timer.start()
        return True

    def _cut(self, pair: _Pair) -> None:
        with self._lock:
            self._pairs.discard(pair)
        pair.close()


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``condition()`` until true or ``timeout``; whether it came true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False
