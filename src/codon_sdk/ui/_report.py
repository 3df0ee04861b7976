"""``codon report``: one self-contained HTML file with the run page's views, read-only.

The file holds the page's styles and script inline and, as JSON data, the answers the
page would ask the API for (the run, its activations, each activation's panel, its
events, its tokens). Its Content-Security-Policy allows no network request at all, so
opening it from a ticket or an audit file loads nothing from anywhere. It names the
verification status at the time of export.
"""

from __future__ import annotations

import pathlib
from datetime import datetime, timezone
from typing import Any, Final

import orjson

from codon_sdk import CodonWorkload, LedgerStore
from codon_sdk.ui._assets import read_asset
from codon_sdk.ui._explorer import Explorer
from codon_sdk.ui._views import activation_detail, activations_page, events_page, run_detail

__all__ = ["MAX_DETAILED", "render_report", "write_report"]

MAX_DETAILED: Final = 2000
"""Activations whose full panel goes into a report (the list always has them all)."""
MAX_EVENTS: Final = 20_000
_PAGE: Final = 200
_EVENTS_PAGE: Final = 100
_CSP: Final = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data:; connect-src 'none'; base-uri 'none'; form-action 'none'"
)


def _data(explorer: Explorer, run_id: str, workloads: dict[str, CodonWorkload]) -> dict[str, Any]:
    base = f"/api/runs/{run_id}"
    detail = run_detail(explorer, run_id, workloads)
    view = explorer.view(run_id)
    answers: dict[str, Any] = {base: detail}
    for offset in range(0, max(1, len(view.activations)), _PAGE):
        answers[f"{base}/activations?offset={offset}&limit={_PAGE}"] = activations_page(
            view, offset, _PAGE
        )
    for index in range(min(len(view.activations), MAX_DETAILED)):
        answers[f"{base}/activations/{index}"] = activation_detail(view, index)
    for offset in range(0, max(1, min(view.event_count, MAX_EVENTS)), _EVENTS_PAGE):
        answers[f"{base}/events?offset={offset}&limit={_EVENTS_PAGE}"] = events_page(
            view, offset, _EVENTS_PAGE
        )
    for token_id in list(view.tokens)[:MAX_DETAILED]:
        answers[f"{base}/tokens/{token_id}"] = view.token(token_id)
    return {
        "mode": "report",
        "run_id": run_id,
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "verification_at_export": detail["verification"]["status"],
        "complete": len(view.activations) <= MAX_DETAILED and view.event_count <= MAX_EVENTS,
        "answers": answers,
    }


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element: no ``</script>``, no ``<!--``."""
    text = orjson.dumps(value).decode()
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_report(
    explorer: Explorer, run_id: str, workloads: dict[str, CodonWorkload] | None = None
) -> str:
    """The report of ``run_id`` as one HTML document."""
    data = _data(explorer, run_id, workloads or {})
    page = read_asset("index.html")
    status = data["verification_at_export"]
    page = page.replace(
        '<link rel="stylesheet" href="/assets/app.css">',
        f"<style>\n{read_asset('app.css')}</style>",
    )
    page = page.replace(
        '<script src="/assets/app.js"></script>',
        f'<script id="codon-data" type="application/json">{_script_json(data)}</script>\n'
        f"<script>\n{read_asset('app.js')}</script>",
    )
    page = page.replace(
        "<title>Codon run explorer</title>",
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        f"<title>Codon run report ({status})</title>",
    )
    return page


def write_report(
    store: LedgerStore,
    run_id: str,
    out: str | pathlib.Path,
    *,
    workloads: dict[str, CodonWorkload] | None = None,
) -> str:
    """Write the report of ``run_id`` to ``out``; returns the verification status it names."""
    explorer = Explorer(store)
    html = render_report(explorer, run_id, workloads)
    pathlib.Path(out).write_text(html, encoding="utf-8")
    return explorer.view(run_id).verification.status  # type: ignore[union-attr]
