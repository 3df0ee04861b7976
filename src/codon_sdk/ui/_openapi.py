"""The OpenAPI 3.1 document of the explorer's JSON API (served at ``/api/openapi.json``)."""

from __future__ import annotations

from typing import Any

from codon_sdk._version import __version__

__all__ = ["schema"]

_PAGE = [
    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}},
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
]
_RUN = {"name": "run_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _q(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "description": description,
        "schema": {"type": "string", **schema},
    }


def _op(summary: str, params: list[dict[str, Any]], ref: str = "Object") -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "parameters": params,
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {
                        "application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}
                    },
                },
                "default": {
                    "description": "An error",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                },
            },
        }
    }


def schema() -> dict[str, Any]:
    """The document (built per request: it is small)."""
    status = [
        "running",
        "completed",
        "stopped",
        "failed",
        "interrupted",
        "pending_approval",
        "stale",
    ]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Codon run explorer",
            "version": __version__,
            "description": "Read-only views of a Codon ledger store. Every list is a "
            "page: items, offset, limit, total, next_offset.",
        },
        "paths": {
            "/api/runs": _op(
                "Runs, newest first, filtered",
                [
                    *_PAGE,
                    _q("status", "run status, pending_approval or stale", enum=status),
                    _q("workload", "workload name"),
                    _q("deployment", "deployment id"),
                    _q("logic_id", "logic id (or a prefix of it)"),
                    _q("q", "part of a run id"),
                    _q("since", "started at or after (ISO 8601 or epoch microseconds)"),
                    _q("until", "started at or before (ISO 8601 or epoch microseconds)"),
                ],
                "Page",
            ),
            "/api/runs/{run_id}": _op("One run: summary, verification, graph, approvals", [_RUN]),
            "/api/runs/{run_id}/head": _op("The run's index row (for live pages)", [_RUN]),
            "/api/runs/{run_id}/activations": _op(
                "Activations in start order", [_RUN, *_PAGE, _q("node", "only this node's")], "Page"
            ),
            "/api/runs/{run_id}/activations/{index}": _op(
                "One activation in full",
                [
                    _RUN,
                    {
                        "name": "index",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer"},
                    },
                ],
            ),
            "/api/runs/{run_id}/events": _op(
                "Ledger events in seq order (values clipped)",
                [_RUN, *_PAGE, _q("type", "one event type, or custom")],
                "Page",
            ),
            "/api/runs/{run_id}/events/{seq}": _op(
                "One event, whole",
                [
                    _RUN,
                    {"name": "seq", "in": "path", "required": True, "schema": {"type": "integer"}},
                ],
            ),
            "/api/runs/{run_id}/tokens/{token_id}": _op(
                "A token's lineage",
                [
                    _RUN,
                    {
                        "name": "token_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                ],
            ),
            "/api/runs/{run_id}/graph": _op(
                "The run's graph",
                [_RUN, _q("format", "json, mermaid or dot", enum=["json", "mermaid", "dot"])],
            ),
            "/api/runs/{run_id}/replay": _op("The run beside its replay with today's code", [_RUN]),
            "/api/runs/{run_id}/report": _op("The self-contained HTML report", [_RUN]),
            "/api/compare": _op(
                "Two runs side by side", [_q("left", "a run id"), _q("right", "a run id")]
            ),
        },
        "components": {
            "schemas": {
                "Object": {"type": "object"},
                "Page": {
                    "type": "object",
                    "required": ["items", "offset", "limit", "total", "next_offset"],
                    "properties": {
                        "items": {"type": "array", "items": {"type": "object"}},
                        "offset": {"type": "integer"},
                        "limit": {"type": "integer"},
                        "total": {"type": "integer"},
                        "next_offset": {"type": ["integer", "null"]},
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["status", "code", "message"],
                            "properties": {
                                "status": {"type": "integer"},
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                            },
                        }
                    },
                },
            },
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
        },
    }
