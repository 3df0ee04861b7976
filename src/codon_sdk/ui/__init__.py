"""The run explorer: ``codon ui`` (a local web UI over a ledger store) and ``codon report``.

Needs the ``ui`` extra (``pip install 'codon-sdk[ui]'``: uvicorn and Starlette). Every page
asset ships in the package; nothing is loaded from the internet. The explorer is
read-only, shows what the ledger holds (redaction applies as everywhere) and puts each
run's verification verdict beside it.

- :class:`ExplorerServer` serves the explorer (thread or foreground), :func:`create_app`
  is the ASGI application to mount elsewhere;
- :func:`write_report` writes one run as a self-contained HTML file;
- :func:`to_mermaid` / :func:`to_dot` draw a graph document as text;
- :class:`Explorer` reads runs for the pages (no server needed), :class:`RunView` is one
  run as the pages show it and :func:`activation_detail` one activation of it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from codon_sdk.ui._explorer import Explorer
from codon_sdk.ui._graph import graph_of_workload, to_dot, to_mermaid
from codon_sdk.ui._model import RunView
from codon_sdk.ui._views import activation_detail

if TYPE_CHECKING:  # pragma: no cover
    from codon_sdk.ui._app import create_app
    from codon_sdk.ui._report import write_report
    from codon_sdk.ui._server import ExplorerServer

__all__ = [
    "Explorer",
    "ExplorerServer",
    "RunView",
    "activation_detail",
    "create_app",
    "graph_of_workload",
    "to_dot",
    "to_mermaid",
    "write_report",
]

_SERVED = {"ExplorerServer": "_server", "create_app": "_app", "write_report": "_report"}


def __getattr__(name: str) -> Any:
    """The server parts are imported on first use: they need the ``ui`` extra."""
    module = _SERVED.get(name)
    if module is None:
        raise AttributeError(f"module 'codon_sdk.ui' has no attribute {name!r}")
    return getattr(importlib.import_module(f"codon_sdk.ui.{module}"), name)
