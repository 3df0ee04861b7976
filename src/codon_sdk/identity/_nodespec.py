"""NodeSpec: the immutable identity record of one node function."""

from __future__ import annotations

import builtins
import hashlib
import inspect
import os
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from codon_sdk._warn import warn_once
from codon_sdk.errors import NodeSpecValidationError
from codon_sdk.identity._canonical import canonical_bytes
from codon_sdk.identity._codehash import class_fingerprint, code_hash, describe_constant
from codon_sdk.identity._typenames import annotation_text, is_local, type_name
from codon_sdk.redaction import get_logger

__all__ = ["NODESPEC_VERSION", "NodeSpec", "resolve_org_namespace"]

NODESPEC_VERSION = "1"
_log = get_logger("codon_sdk")
_INJECTED = ("runtime", "context")
_FIELDS = (
    "id",
    "spec_version",
    "org_namespace",
    "name",
    "role",
    "callable_signature",
    "input_schema",
    "output_schema",
    "model_name",
    "model_version",
    "code_hash",
)


def resolve_org_namespace(explicit: str | None) -> str:
    """The namespace given, else ``ORG_NAMESPACE``, else ``"unknown"`` (with a warning)."""
    if explicit:
        return explicit
    env = os.environ.get("ORG_NAMESPACE")
    if env:
        return env
    warn_once(
        _log,
        "org-namespace",
        "no org namespace given and ORG_NAMESPACE is not set; using 'unknown'. "
        "Pass org_namespace=... or set ORG_NAMESPACE so node identities name their owner "
        "(said once per process)",
    )
    return "unknown"


class NodeSpec:
    """Immutable identity record of a node: who owns it, what it is, and what its code does.

    ``id`` is the hex SHA-256 of the canonical form of every other field, including
    ``code_hash`` (see :mod:`codon_sdk.identity._codehash`): the same function gives
    the same id in every process; a change to what it does gives a new one.
    ``input_schema`` and ``output_schema`` are JSON Schema documents (canonical JSON
    text) derived from the function's annotations.
    """

    __slots__ = _FIELDS

    id: str
    spec_version: str
    org_namespace: str
    name: str
    role: str
    callable_signature: str
    input_schema: str
    output_schema: str
    model_name: str | None
    model_version: str | None
    code_hash: str

    def __init__(
        self,
        name: str,
        role: str,
        callable: Callable[..., Any],
        org_namespace: str | None = None,
        model_name: str | None = None,
        model_version: str | None = None,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise NodeSpecValidationError(
                f"node name must be a non-empty string, got {name!r}; give every node a name"
            )
        if not isinstance(role, str) or not role.strip():
            raise NodeSpecValidationError(
                f"role of node {name!r} must be a non-empty string, got {role!r}"
            )
        if not builtins.callable(callable):
            raise NodeSpecValidationError(
                f"node {name!r} needs a callable, got {type(callable).__name__}: {callable!r}"
            )
        for label, value in (("model_name", model_name), ("model_version", model_version)):
            if value is not None and not isinstance(value, str):
                raise NodeSpecValidationError(
                    f"{label} of node {name!r} must be a string or None, got {value!r}"
                )
        fields: dict[str, Any] = {
            "spec_version": NODESPEC_VERSION,
            "org_namespace": resolve_org_namespace(org_namespace),
            "name": name,
            "role": role,
            "callable_signature": callable_signature(callable),
            "input_schema": _schema_text(_input_schema(callable)),
            "output_schema": _schema_text(_output_schema(callable)),
            "model_name": model_name,
            "model_version": model_version,
            "code_hash": code_hash(callable),
        }
        fields["id"] = hashlib.sha256(canonical_bytes(fields)).hexdigest()
        for key, value in fields.items():
            object.__setattr__(self, key, value)

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"NodeSpec is immutable; cannot set {key!r}")

    def __delattr__(self, key: str) -> None:
        raise AttributeError(f"NodeSpec is immutable; cannot delete {key!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (self.to_dict(),))

    def __copy__(self) -> NodeSpec:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> NodeSpec:
        return self

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NodeSpec) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"NodeSpec(name={self.name!r}, role={self.role!r}, id={self.id[:12]}…)"

    def to_dict(self) -> dict[str, Any]:
        """Every field as a plain dict (JSON-ready)."""
        return {key: getattr(self, key) for key in _FIELDS}


def _restore(fields: dict[str, Any]) -> NodeSpec:
    """Rebuild a NodeSpec from its fields (unpickling; the callable is not needed)."""
    spec = object.__new__(NodeSpec)
    for key in _FIELDS:
        object.__setattr__(spec, key, fields[key])
    return spec


def _signature(fn: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(fn, eval_str=True)
    except Exception:
        try:
            return inspect.signature(fn)
        except (TypeError, ValueError):
            return None


def callable_signature(fn: Callable[..., Any]) -> str:
    """``name(params) -> return``, e.g. ``"f(a: int, b: str) -> float"``: types named
    independently of how the code was loaded (``local:State`` for a type of the node's
    own module, the import path for others; see :mod:`codon_sdk.identity._typenames`)."""
    name = getattr(fn, "__name__", None) or type(fn).__name__
    sig = _signature(fn)
    if sig is None:
        return f"{name}(...)"
    return signature_text(fn, sig, _home(fn))


def _home(fn: Callable[..., Any]) -> str | None:
    """The module of the code being identified (types from it are local)."""
    target = inspect.unwrap(fn) if isinstance(fn, types.FunctionType) else fn
    module = getattr(target, "__module__", None)
    if not isinstance(module, str):
        module = getattr(type(target), "__module__", None)
    return module if isinstance(module, str) else None


_STARS: dict[inspect._ParameterKind, str] = {
    inspect.Parameter.VAR_POSITIONAL: "*",
    inspect.Parameter.VAR_KEYWORD: "**",
}


def signature_text(fn: Callable[..., Any], sig: inspect.Signature, home: str | None) -> str:
    """``name(params) -> return`` with loading-independent type names and defaults."""
    parts: list[str] = []
    seen_kw_only = False
    previous: inspect._ParameterKind | None = None
    for p in sig.parameters.values():
        if previous is inspect.Parameter.POSITIONAL_ONLY and p.kind is not previous:
            parts.append("/")
        if p.kind is inspect.Parameter.KEYWORD_ONLY and not seen_kw_only:
            seen_kw_only = True
            if previous is not inspect.Parameter.VAR_POSITIONAL:
                parts.append("*")
        star = _STARS.get(p.kind, "")
        text = star + p.name
        note = annotation_text(p.annotation, home)
        if note:
            text += f": {note}"
        if p.default is not inspect.Parameter.empty:
            text += (" = " if note else "=") + describe_constant(p.default, home)
        parts.append(text)
        previous = p.kind
    if previous is inspect.Parameter.POSITIONAL_ONLY:
        parts.append("/")
    name = getattr(fn, "__name__", None) or type(fn).__name__
    ret = annotation_text(sig.return_annotation, home)
    return f"{name}({', '.join(parts)})" + (f" -> {ret}" if ret else "")


def _schema_text(schema: Mapping[str, Any]) -> str:
    return canonical_bytes(schema).decode("utf-8")


def _input_schema(fn: Callable[..., Any]) -> dict[str, Any]:
    sig = _signature(fn)
    if sig is None:
        return {"type": "object"}
    props: dict[str, Any] = {}
    required: list[str] = []
    for p in sig.parameters.values():
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name in _INJECTED:
            continue
        if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        props[p.name] = _type_schema(p.annotation, _home(fn))
        if p.default is inspect.Parameter.empty:
            required.append(p.name)
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        schema["required"] = required
    return schema


def _output_schema(fn: Callable[..., Any]) -> dict[str, Any]:
    sig = _signature(fn)
    if sig is None:
        return {}
    return _type_schema(sig.return_annotation, _home(fn))


_SIMPLE: dict[Any, dict[str, Any]] = {
    int: {"type": "integer"},
    float: {"type": "number"},
    str: {"type": "string"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
    None: {"type": "null"},
    bytes: {"type": "string", "contentEncoding": "base64"},
    dict: {"type": "object"},
    list: {"type": "array"},
}


def _type_schema(tp: Any, home: str | None) -> dict[str, Any]:
    if tp is inspect.Parameter.empty or tp is Any:
        return {}
    if isinstance(tp, str):
        return {"x-python-annotation": tp}
    simple = _SIMPLE.get(tp)
    if simple is not None:
        return dict(simple)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        return {"anyOf": [_type_schema(a, home) for a in args]}
    if origin is typing.Literal:
        return {"enum": list(args)} if all(_jsonable(a) for a in args) else {}
    if origin in (list, set, frozenset, tuple) or (
        isinstance(origin, type) and issubclass(origin, (list, tuple, set))
    ):
        schema: dict[str, Any] = {"type": "array"}
        if args and args[-1] is not Ellipsis:
            schema["items"] = _type_schema(args[0], home) if len(args) == 1 else {}
        elif args:
            schema["items"] = _type_schema(args[0], home)
        return schema
    if origin is dict or (isinstance(origin, type) and issubclass(origin, Mapping)):
        schema = {"type": "object"}
        if len(args) == 2:
            schema["additionalProperties"] = _type_schema(args[1], home)
        return schema
    if isinstance(tp, type):
        if is_local(tp, home):
            digest = hashlib.sha256(canonical_bytes(class_fingerprint(tp, home))).hexdigest()
            return {"x-python-type": type_name(tp, home), "x-codon-type-hash": digest}
        return {"x-python-type": type_name(tp, home)}
    return {"x-python-annotation": annotation_text(tp, home)}


def _jsonable(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) or value is None
