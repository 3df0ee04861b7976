"""How LangGraph values are recorded in the ledger.

Everything Codon's canonical encoding can express is recorded as it is (plain
JSON, and the tagged forms of ``codon_sdk.identity._canonical``: datetimes,
tuples, dataclasses such as a ``Command`` of plain values, pydantic models such
as LangChain messages...). Where it fails, the value is rebuilt with one
documented form for each part it cannot express, so a node's record is never
dropped:

=====================  ===============================================================
value                  recorded as
=====================  ===============================================================
``Send(node, arg)``    ``{"$langgraph": "Send", "node": node, "arg": <arg>}``
``Command(...)``       ``{"$langgraph": "Command", "graph": ..., "update": ...,
                       "resume": ..., "goto": ...}``
``Overwrite(value)``   ``{"$langgraph": "Overwrite", "value": <value>}``
anything else that     ``{"$langgraph": "opaque", "type": "<module>:<qualname>"}``
cannot be encoded      (a reference cycle: ``{"$langgraph": "cycle"}``)
=====================  ===============================================================

The record of a value that needed an opaque form lists where those values were
(``"$['docs'][2]"``...) so the gap is visible, and a warning is logged once per
node and type. These forms are one-way: a replay compares them, it does not
rebuild the objects.
"""

from __future__ import annotations

from typing import Any, Final

from codon_sdk.errors import CanonicalEncodingError
from codon_sdk.identity import MAX_DEPTH, prepare, type_path
from codon_sdk.redaction import get_logger

__all__ = ["MARKER", "recordable", "recordable_value"]

MARKER: Final = "$langgraph"
_log = get_logger("codon.instrumentation.langgraph")
_PLAIN = (str, int, float, bool, type(None))
_warned: set[tuple[str, str]] = set()


def recordable(value: Any, *, where: str = "") -> tuple[Any, list[str]]:
    """``value`` in a form the canonical encoding accepts, and the paths made opaque.

    An encodable value comes back as the very object given (one canonical walk
    to find out); only a value that fails is rebuilt. The result is meant for
    APIs that prepare values themselves (``prepare`` is not idempotent).
    """
    try:
        prepare(value)
    except CanonicalEncodingError:
        opaque: list[str] = []
        clean = _sanitize(value, "$", opaque, (), 0)
        for path_type in opaque:
            key = (where, path_type.split(" ", 1)[-1])
            if key not in _warned:
                _warned.add(key)
                _log.warning(
                    "%s: a value has no canonical encoding and is recorded by its type only "
                    "(%s); see codon.instrumentation.langgraph._encode",
                    where or "LangGraph value",
                    path_type,
                )
        return clean, opaque
    return value, []


def recordable_value(value: Any) -> Any:
    """Like :func:`recordable`, keeping only the value."""
    return recordable(value)[0]


def _sanitize(value: Any, path: str, opaque: list[str], stack: tuple[int, ...], depth: int) -> Any:
    if isinstance(value, _PLAIN):
        return value
    if depth > MAX_DEPTH:
        opaque.append(f"{path} (nested deeper than {MAX_DEPTH})")
        return {MARKER: "opaque", "type": "too deep"}
    if id(value) in stack:
        opaque.append(f"{path} (cycle)")
        return {MARKER: "cycle"}
    special = _langgraph_value(value, path, opaque, stack, depth)
    if special is not None:
        return special
    inner = (*stack, id(value))
    if isinstance(value, dict):
        return {
            _key(k): _sanitize(v, f"{path}[{k!r}]", opaque, inner, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        items = [
            _sanitize(v, f"{path}[{i}]", opaque, inner, depth + 1) for i, v in enumerate(value)
        ]
        return tuple(items) if isinstance(value, tuple) else items
    try:
        prepare(value)
    except CanonicalEncodingError:
        name = type_path(type(value))
        opaque.append(f"{path} {name}")
        return {MARKER: "opaque", "type": name}
    return value


def _key(key: Any) -> Any:
    try:
        prepare(key)
    except CanonicalEncodingError:
        return f"<{type_path(type(key))}>"
    return key


def _langgraph_value(
    value: Any, path: str, opaque: list[str], stack: tuple[int, ...], depth: int
) -> dict[str, Any] | None:
    """The documented form of a Send, Command or Overwrite (None for other values)."""
    from langgraph.types import Command, Overwrite, Send

    inner = (*stack, id(value))

    def sub(v: Any, label: str) -> Any:
        return _sanitize(v, f"{path}.{label}", opaque, inner, depth + 1)

    if isinstance(value, Send):
        return {MARKER: "Send", "node": value.node, "arg": sub(value.arg, "arg")}
    if isinstance(value, Command):
        return {
            MARKER: "Command",
            "graph": value.graph,
            "update": sub(value.update, "update"),
            "resume": sub(value.resume, "resume"),
            "goto": sub(value.goto, "goto"),
        }
    if isinstance(value, Overwrite):
        return {MARKER: "Overwrite", "value": sub(value.value, "value")}
    return None
