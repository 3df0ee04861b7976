"""The explorer's ASGI application (Starlette): pages, assets and the JSON API under /api/.

Every API error is a JSON body ``{"error": {"status", "code", "message"}}`` with the
matching status code; an exception on one request never stops the server. With a token
every request must carry it (``Authorization: Bearer``, ``?token=`` once, which sets a
cookie for the pages, or the cookie), else 401. Without one the server only answers
requests addressed to a loopback host name (no DNS rebinding from a web page).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any, Final

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from codon_sdk import CodonWorkload, LedgerStore
from codon_sdk.errors import ExplorerError, StoreError
from codon_sdk.ui import _openapi
from codon_sdk.ui._assets import read_asset
from codon_sdk.ui._compare import compare_replay, compare_runs
from codon_sdk.ui._explorer import Explorer, RunFilter, page_bounds
from codon_sdk.ui._graph import to_dot, to_mermaid
from codon_sdk.ui._views import activation_detail, activations_page, events_page, run_detail

__all__ = ["ASSETS", "create_app", "read_asset"]

COOKIE: Final = "codon_ui_token"
ASSETS: Final = {"app.js": "text/javascript", "app.css": "text/css", "index.html": "text/html"}
LOOPBACK_HOSTS: Final = ["127.0.0.1", "localhost", "::1", "[::1]"]
_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class _JSON(JSONResponse):
    """JSON bodies encoded by orjson (pages of a big run are large; the stdlib is slow)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def _error(status: int, code: str, message: str) -> JSONResponse:
    return _JSON(
        {"error": {"status": status, "code": code, "message": message}}, status_code=status
    )


class _TokenGate:
    """401 for every request that does not carry the token."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        header = request.headers.get("authorization", "")
        offered = [
            header[7:] if header.lower().startswith("bearer ") else "",
            request.query_params.get("token", ""),
            request.cookies.get(COOKIE, ""),
        ]
        if not any(hmac.compare_digest(o.encode(), self.token) for o in offered if o):
            response = _error(
                401,
                "unauthorized",
                "this explorer needs its token: open the URL `codon ui` printed (it carries "
                "?token=...), or send Authorization: Bearer TOKEN",
            )
            await response(scope, receive, send)
            return
        if request.query_params.get("token"):
            await self.app(scope, receive, _with_cookie(send, request.query_params["token"]))
            return
        await self.app(scope, receive, send)


def _with_cookie(send: Send, token: str) -> Send:
    async def sending(message: Any) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            headers.append(
                (b"set-cookie", f"{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/".encode())
            )
            message = {**message, "headers": headers}
        await send(message)

    return sending


Handler = Callable[[Request], Awaitable[Response]]


def create_app(
    store: LedgerStore,
    *,
    token: str | None = None,
    workloads: dict[str, CodonWorkload] | None = None,
    allowed_hosts: list[str] | None = None,
) -> Starlette:
    """The explorer over ``store``. ``workloads`` (by name) enable replay and today's-code
    checks; ``token`` makes every request need it; ``allowed_hosts`` (default: loopback
    names, or any host with a token) are the Host headers answered."""
    explorer = Explorer(store)
    loaded = dict(workloads or {})

    def api(fn: Callable[[Request], Any]) -> Handler:
        async def endpoint(request: Request) -> Response:
            from starlette.concurrency import run_in_threadpool

            try:
                result = await run_in_threadpool(fn, request)
            except ExplorerError as exc:
                return _error(exc.status, exc.code, str(exc))
            except StoreError as exc:
                return _error(503, "store_unavailable", f"the ledger store failed: {exc}")
            except Exception as exc:  # one bad request never stops the server
                return _error(500, "internal_error", f"{type(exc).__name__}: {exc}")
            if isinstance(result, Response):
                return result
            return _JSON(result)

        return endpoint

    def runs(request: Request) -> Any:
        q = request.query_params
        offset, limit = page_bounds(q.get("offset"), q.get("limit"))
        flt = RunFilter(
            status=q.get("status") or None,
            workload=q.get("workload") or None,
            deployment=q.get("deployment") or None,
            logic_id=q.get("logic_id") or None,
            search=q.get("q") or None,
            since_us=_time(q.get("since"), "since"),
            until_us=_time(q.get("until"), "until"),
        )
        return explorer.runs(flt, offset, limit)

    def run(request: Request) -> Any:
        return run_detail(explorer, request.path_params["run_id"], loaded)

    def head(request: Request) -> Any:
        info = explorer.info(request.path_params["run_id"])
        return {
            "run_id": info.run_id,
            "status": info.status,
            "event_count": info.event_count,
            "head": info.head,
        }

    def activations(request: Request) -> Any:
        view = explorer.view(request.path_params["run_id"])
        offset, limit = page_bounds(
            request.query_params.get("offset"), request.query_params.get("limit"), 200
        )
        return activations_page(view, offset, limit, request.query_params.get("node") or None)

    def activation(request: Request) -> Any:
        view = explorer.view(request.path_params["run_id"])
        return activation_detail(view, _int(request.path_params["index"], "activation index"))

    def events(request: Request) -> Any:
        view = explorer.view(request.path_params["run_id"])
        offset, limit = page_bounds(
            request.query_params.get("offset"), request.query_params.get("limit"), 100
        )
        return events_page(view, offset, limit, request.query_params.get("type") or None)

    def event(request: Request) -> Any:
        view = explorer.view(request.path_params["run_id"])
        seq = _int(request.path_params["seq"], "seq")
        if not 0 <= seq < view.event_count:
            raise ExplorerError(
                f"run {view.run_id!r} holds events 0..{view.event_count - 1}; no seq {seq}",
                status=404,
                code="event_not_found",
            )
        return view.event(seq, whole=True)

    def token_(request: Request) -> Any:
        view = explorer.view(request.path_params["run_id"])
        found = view.token(request.path_params["token_id"])
        if found is None:
            raise ExplorerError(
                f"run {view.run_id!r} has no token {request.path_params['token_id']!r}",
                status=404,
                code="token_not_found",
            )
        return found

    def graph(request: Request) -> Any:
        view = explorer.view(request.path_params["run_id"])
        fmt = request.query_params.get("format", "json")
        if fmt == "mermaid":
            return PlainTextResponse(to_mermaid(view.graph()))
        if fmt == "dot":
            return PlainTextResponse(to_dot(view.graph()))
        if fmt != "json":
            raise ExplorerError(f"format must be json, mermaid or dot, got {fmt!r}")
        return view.graph()

    def compare(request: Request) -> Any:
        left, right = request.query_params.get("left"), request.query_params.get("right")
        if not left or not right:
            raise ExplorerError("compare needs two runs: ?left=RUN_ID&right=RUN_ID")
        return compare_runs(explorer, left, right)

    def replay(request: Request) -> Any:
        return compare_replay(explorer, request.path_params["run_id"], loaded)

    def report(request: Request) -> Any:
        from codon_sdk.ui._report import render_report

        run_id = request.path_params["run_id"]
        html = render_report(explorer, run_id, loaded)
        return HTMLResponse(
            html,
            headers={"content-disposition": f'attachment; filename="{_filename(run_id)}.html"'},
        )

    def schema(request: Request) -> Any:
        return _openapi.schema()

    async def page(request: Request) -> Response:
        return HTMLResponse(read_asset("index.html"), headers=_page_headers())

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS:
            return _error(404, "not_found", f"no asset {name!r}")
        return Response(read_asset(name), media_type=ASSETS[name], headers=_page_headers())

    async def not_found(request: Request) -> Response:
        return _error(404, "not_found", f"no API route {request.url.path!r}; see /api/openapi.json")

    routes = [
        Route("/", page),
        Route("/assets/{name}", asset),
        Route("/api/openapi.json", api(schema)),
        Route("/api/runs", api(runs)),
        Route("/api/compare", api(compare)),
        Route("/api/runs/{run_id}", api(run)),
        Route("/api/runs/{run_id}/head", api(head)),
        Route("/api/runs/{run_id}/activations", api(activations)),
        Route("/api/runs/{run_id}/activations/{index}", api(activation)),
        Route("/api/runs/{run_id}/events", api(events)),
        Route("/api/runs/{run_id}/events/{seq}", api(event)),
        Route("/api/runs/{run_id}/tokens/{token_id}", api(token_)),
        Route("/api/runs/{run_id}/graph", api(graph)),
        Route("/api/runs/{run_id}/replay", api(replay)),
        Route("/api/runs/{run_id}/report", api(report)),
        Route("/api/{rest:path}", not_found),
    ]
    hosts = allowed_hosts or (["*"] if token else LOOPBACK_HOSTS)
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=hosts)]
    if token:
        middleware.insert(0, Middleware(_TokenGate, token=token))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={404: _not_found_page, 405: _bad_method},
    )
    app.state.explorer = explorer
    return app


async def _not_found_page(request: Request, exc: Exception) -> Response:
    return _error(404, "not_found", f"nothing at {request.url.path!r}")


async def _bad_method(request: Request, exc: Exception) -> Response:
    return _error(405, "method_not_allowed", "the explorer is read-only: only GET is served")


def _page_headers() -> dict[str, str]:
    return {
        "content-security-policy": _CSP,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "cache-control": "no-store",
    }


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ExplorerError(f"{what} must be an integer, got {text!r}") from None


def _time(text: str | None, what: str) -> int | None:
    """An ISO 8601 time (or microseconds since the epoch) as microseconds."""
    if not text:
        return None
    if text.isdigit():
        return int(text)
    from datetime import datetime, timezone

    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ExplorerError(
            f"{what} must be an ISO 8601 time (2026-01-31T12:00:00Z), got {text!r}"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return int(when.timestamp() * 1_000_000)


def _filename(run_id: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)
    return f"run-{safe[:80]}"
