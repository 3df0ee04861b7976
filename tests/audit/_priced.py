"""A two-node agent whose recorded effects are real HTTP calls, in versions that differ in one
argument.

``price`` looks up a price with ``runtime.effect("price", fetch_price, OPENER, url,
"sku-1", qty=2)`` (``OPENER``, a urllib opener, has no canonical encoding: it is
recorded by type name) and emits it to ``check``, which looks up the stock the
same way. ``build_v2`` asks ``price`` for ``qty=3`` instead: a changed request.
:class:`PriceService` answers deterministically and records every path it served.
"""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.request
from typing import Any
from urllib.parse import parse_qs, urlsplit

from codon_sdk import CodonWorkload
from codon_sdk.testing._loopback import LoopbackHTTPServer, QuietHandler

__all__ = ["OPENER", "PriceService", "build_v1", "build_v2", "fetch_price"]

OPENER = urllib.request.build_opener()


class _Handler(QuietHandler):
    def do_GET(self) -> None:
        server: Any = self.server
        with server.lock:
            server.paths.append(self.path)
        query = parse_qs(urlsplit(self.path).query)
        digest = hashlib.sha256(self.path.encode()).digest()
        answer = {
            "sku": query.get("sku", [""])[0],
            "qty": int(query.get("qty", ["0"])[0]),
            "cents": int.from_bytes(digest[:2], "big"),
        }
        self.send_bytes(200, json.dumps(answer).encode(), {"Content-Type": "application/json"})


class PriceService:
    """A real HTTP server on 127.0.0.1: ``GET /<what>?sku=S&qty=N`` -> a price derived from the
    path (the same path, the same answer). ``paths`` lists the requests it served."""

    def __init__(self) -> None:
        self._server: Any = LoopbackHTTPServer(_Handler)
        self._server.paths = []
        self._server.lock = threading.Lock()
        self._server.start("audit-price-service")
        self.url = f"http://127.0.0.1:{self._server.port}"

    @property
    def paths(self) -> list[str]:
        with self._server.lock:
            return list(self._server.paths)

    def stop(self) -> None:
        self._server.stop()


def fetch_price(opener: Any, url: str, sku: str, *, qty: int) -> dict[str, Any]:
    with opener.open(f"{url}?sku={sku}&qty={qty}", timeout=10) as response:
        data: dict[str, Any] = json.loads(response.read())
    return data


def price_v1(message: Any, *, runtime: Any, context: Any) -> int:
    quote = runtime.effect("price", fetch_price, OPENER, f"{context['shop']}/price", "sku-1", qty=2)
    runtime.emit("check", quote["cents"])
    return int(quote["cents"])


def price_v2(message: Any, *, runtime: Any, context: Any) -> int:
    quote = runtime.effect("price", fetch_price, OPENER, f"{context['shop']}/price", "sku-1", qty=3)
    runtime.emit("check", quote["cents"])
    return int(quote["cents"])


def check(message: Any, *, runtime: Any, context: Any) -> bool:
    stock = runtime.effect("stock", fetch_price, OPENER, f"{context['shop']}/stock", "sku-1", qty=0)
    return bool(stock["cents"] >= message)


def _build(price: Any) -> CodonWorkload:
    workload = CodonWorkload(name="priced", version="1.0", org_namespace="audit-tests")
    workload.add_node(price, "price", "pricer")
    workload.add_node(check, "check", "checker")
    workload.add_edge("price", "check")
    return workload


def build_v1() -> CodonWorkload:
    return _build(price_v1)


def build_v2() -> CodonWorkload:
    return _build(price_v2)
