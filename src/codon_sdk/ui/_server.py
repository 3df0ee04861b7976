"""The explorer served by uvicorn: in the foreground (``codon ui``) or in a thread (tests,
notebooks), on a socket bound before the server starts so that port 0 works."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
import time
from typing import Any

import uvicorn

from codon_sdk import CodonWorkload, LedgerStore
from codon_sdk.errors import ExplorerError
from codon_sdk.ui._app import create_app

__all__ = ["ExplorerServer", "is_loopback"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ExplorerServer:
    """The run explorer over ``store`` on ``host:port`` (port 0: any free port).

    Listening beyond loopback needs ``token``; every request must then carry it.
    Use it as a context manager (served in a thread) or call :meth:`serve_forever`.
    """

    def __init__(
        self,
        store: LedgerStore,
        *,
        host: str = "127.0.0.1",
        port: int = 7300,
        token: str | None = None,
        workloads: dict[str, CodonWorkload] | None = None,
    ) -> None:
        if not is_loopback(host) and not token:
            raise ExplorerError(
                f"listening on {host} (beyond this machine) needs a token: pass --token TOKEN "
                "or set CODON_UI_TOKEN; every request without it then gets 401"
            )
        if token is not None and (len(token) < 16 or not token.isprintable() or " " in token):
            raise ExplorerError(
                "the token must be at least 16 printable characters without spaces (e.g. "
                "python -c 'import secrets; print(secrets.token_urlsafe())')"
            )
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host.strip("[]"), port))
        except OSError as exc:
            self._sock.close()
            raise ExplorerError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port"
            ) from exc
        self._sock.listen(128)
        self.host, self.port = host, self._sock.getsockname()[1]
        self.token = token
        hosts = None if token else ["127.0.0.1", "localhost", "::1", "[::1]", host]
        self.app = create_app(store, token=token, workloads=workloads, allowed_hosts=hosts)
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The URL to open (with the token, when there is one)."""
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        shown = f"[{shown}]" if ":" in shown and not shown.startswith("[") else shown
        query = f"?token={self.token}" if self.token else ""
        return f"http://{shown}:{self.port}/{query}"

    @property
    def base_url(self) -> str:
        return self.url.split("?")[0].rstrip("/")

    def serve_forever(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._sock]))

    def __enter__(self) -> ExplorerServer:
        self._thread = threading.Thread(target=self.serve_forever, name="codon-ui", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise ExplorerError("the explorer server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._sock.close()
