"""Code hashes: what a function *does*, independent of where and how it is written.

The fingerprint of a function is, in order of preference:

1. its normalised syntax tree: the source is parsed, the function's own name,
   docstrings, comments, formatting, positions and ``ctx`` markers are dropped,
   and the tree is serialised field by field (empty fields omitted, so the same
   code gives the same tree on Python 3.10 to 3.13);
2. without source (a REPL, ``exec``, a frozen app): its compiled bytecode, names
   and constants (stable within one Python minor version).

Both are completed with what the function reads from outside itself: immutable
module constants and closure values (strings, numbers, tuples, enum members)
by value, and helper functions and classes defined in the same module by their own
code hash, recursively (a class by its bases, annotations, constants and methods:
:func:`class_fingerprint`). So a changed prompt constant, helper or local type
changes the id; a moved file, another process, another ``PYTHONHASHSEED`` or another
way of loading the module (script, import, ``runpy``, file path, notebook) does not.
Mutable globals (dicts, lists, clients) are runtime state and contribute their name
only, and so does any global the module lists in ``__codon_identity_ignore__``
(configuration such as a log path read at import). Nothing here names the module the
code was loaded as.
"""

from __future__ import annotations

import ast
import enum
import functools
import hashlib
import inspect
import textwrap
import types
from collections.abc import Callable
from typing import Any

from codon_sdk._text import valid_unicode
from codon_sdk.identity._canonical import canonical_bytes
from codon_sdk.identity._typenames import annotation_text, is_local, type_name

__all__ = [
    "IGNORE_NAME",
    "class_fingerprint",
    "code_fingerprint",
    "code_hash",
    "describe_constant",
]

_CONSTANT_TYPES = (str, bytes, int, float, bool, type(None))


def code_hash(fn: Callable[..., Any]) -> str:
    """Hex SHA-256 of the function's code fingerprint."""
    return hashlib.sha256(canonical_bytes(code_fingerprint(fn))).hexdigest()


def code_fingerprint(fn: Callable[..., Any], _seen: frozenset[int] = frozenset()) -> Any:
    """A JSON value describing what ``fn`` does (see the module docstring)."""
    if isinstance(fn, functools.partial):
        home = getattr(fn.func, "__module__", None)
        return {
            "partial": code_fingerprint(fn.func, _seen),
            "args": [_value(a, home) for a in fn.args],
            "keywords": {k: _value(v, home) for k, v in sorted(fn.keywords.items())},
        }
    if isinstance(fn, types.MethodType):
        return code_fingerprint(fn.__func__, _seen)
    if isinstance(fn, (staticmethod, classmethod)):
        return code_fingerprint(fn.__func__, _seen)
    target = inspect.unwrap(fn) if isinstance(fn, types.FunctionType) else fn
    if not isinstance(target, types.FunctionType):
        call = getattr(type(target), "__call__", None)  # noqa: B004 - we want the class attribute
        if isinstance(call, types.FunctionType) and not isinstance(target, type):
            return {"class": type(target).__qualname__, "call": code_fingerprint(call, _seen)}
        if isinstance(target, type) and is_local(target, None):
            return {"class": class_fingerprint(target, None, _seen)}
        return {"builtin": f"{getattr(target, '__module__', '')}.{_qualname(target)}"}
    seen = _seen | {id(target)}
    tree = _syntax_tree(target)
    body: dict[str, Any] = (
        {"ast": tree} if tree is not None else {"bytecode": _bytecode(target.__code__)}
    )
    body["reads"] = _outside_reads(target, seen)
    return body


def _qualname(obj: Any) -> str:
    return str(getattr(obj, "__qualname__", getattr(obj, "__name__", type(obj).__qualname__)))


# ---------------------------------------------------------------- syntax trees


def _syntax_tree(fn: types.FunctionType) -> Any:
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        return None
    node = _find_definition(source, fn)
    if node is None:
        return None
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        node.name = ""
    return _serialise(node)


def _find_definition(source: str, fn: types.FunctionType) -> ast.AST | None:
    try:
        module = ast.parse(source)
    except SyntaxError:
        if fn.__name__ != "<lambda>":
            return None
        try:  # a lambda inside a larger expression: parse it as a parenthesised expression
            module = ast.parse("(\n" + source.strip().rstrip(",") + "\n)")
        except SyntaxError:
            return None
    if fn.__name__ == "<lambda>":
        lambdas = [n for n in ast.walk(module) if isinstance(n, ast.Lambda)]
        return lambdas[0] if len(lambdas) == 1 else None
    for stmt in module.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and stmt.name == fn.__name__:
            return stmt
    return None


def _serialise(node: Any) -> Any:
    if isinstance(node, ast.AST):
        if isinstance(node, (ast.expr_context, ast.Load, ast.Store, ast.Del)):
            return None
        out: list[Any] = [type(node).__name__]
        fields = {}
        body = getattr(node, "body", None)
        for name, value in ast.iter_fields(node):
            if name in ("type_comment", "kind"):
                continue
            if name == "body" and isinstance(body, list) and _has_docstring(node):
                value = body[1:]
            encoded = _serialise(value)
            if encoded is None or encoded == []:
                continue
            fields[name] = encoded
        out.append(fields)
        return out
    if isinstance(node, list):
        return [x for x in (_serialise(v) for v in node) if x is not None]
    if isinstance(node, _CONSTANT_TYPES):
        return _value(node)
    return {"repr": repr(node)}  # complex, Ellipsis: repr of a literal is deterministic


def _has_docstring(node: ast.AST) -> bool:
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return False
    first = node.body[0] if node.body else None
    return (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    )


# ---------------------------------------------------------------- bytecode


def _bytecode(code: types.CodeType) -> Any:
    consts: list[Any] = []
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            consts.append({"code": _bytecode(c)})
        else:
            consts.append(_value(c))
    return {
        "code": code.co_code.hex(),
        "consts": consts,
        "names": list(code.co_names),
        "varnames": list(code.co_varnames),
        "freevars": list(code.co_freevars),
    }


# ---------------------------------------------------------------- outside reads


def _outside_reads(fn: types.FunctionType, seen: frozenset[int]) -> dict[str, Any]:
    reads: dict[str, Any] = {}
    ignored = _ignored(fn.__globals__)
    for name in sorted(_global_names(fn.__code__)):
        if name in ignored:
            reads[name] = {"ignored": True}
        elif name in fn.__globals__:
            reads[name] = _read(fn.__globals__[name], fn, seen)
    if fn.__closure__:
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__, strict=True):
            try:
                contents = cell.cell_contents
            except ValueError:  # an empty cell (the name is not bound yet)
                continue
            reads["closure:" + name] = _read(contents, fn, seen)
    return reads


IGNORE_NAME = "__codon_identity_ignore__"
"""A module global listing names of that module's globals that are configuration, not
logic: a node reading one depends on its name only, not its value."""


def _ignored(module_globals: dict[str, Any]) -> frozenset[str]:
    declared = module_globals.get(IGNORE_NAME, ())
    if isinstance(declared, str):
        return frozenset({declared})
    try:
        return frozenset(n for n in declared if isinstance(n, str))
    except TypeError:
        return frozenset()


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names |= _global_names(c)
    return names


def _read(value: Any, fn: types.FunctionType, seen: frozenset[int]) -> Any:
    if _is_constant(value):
        return {"value": _value(value, fn.__module__)}
    if (
        isinstance(value, types.FunctionType)
        and value.__module__ == fn.__module__
        and id(value) not in seen
    ):
        return {"function": code_fingerprint(value, seen)}
    if isinstance(value, type) and is_local(value, fn.__module__):
        return {"class": class_fingerprint(value, fn.__module__, seen)}
    return {"kind": type(value).__name__}


def class_fingerprint(cls: type, home: str | None, seen: frozenset[int] = frozenset()) -> Any:
    """What a local class *is*: its qualified name, bases, annotations, constants and the
    code of the methods written in its source (generated ones, such as a dataclass's
    ``__init__``, follow from the annotations), never the module it was loaded as."""
    if id(cls) in seen:
        return {"name": cls.__qualname__}  # a class that refers to itself
    seen = seen | {id(cls)}
    annotations = inspect.get_annotations(cls)
    members: dict[str, Any] = {}
    for name, value in sorted(cls.__dict__.items()):
        if name in ("__annotations__", "__dict__", "__weakref__", "__doc__", "__module__"):
            continue
        member = _member(value, home, seen)
        if member is not None:
            members[name] = member
    return {
        "name": cls.__qualname__,
        "bases": [type_name(b, home) for b in cls.__bases__ if b is not object],
        "annotations": {str(k): annotation_text(v, home) for k, v in annotations.items()},
        "members": members,
    }


def _member(value: Any, home: str | None, seen: frozenset[int]) -> Any:
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    elif isinstance(value, property):
        value = value.fget
    if isinstance(value, types.FunctionType):
        if value.__code__.co_filename.startswith("<") and _syntax_tree(value) is None:
            return None  # generated (dataclass, attrs, namedtuple...): follows from the fields
        return {"function": code_fingerprint(value, seen)} if id(value) not in seen else None
    if _is_constant(value):
        return {"value": _value(value, home)}
    if isinstance(value, type) and is_local(value, home):
        return {"class": class_fingerprint(value, home, seen)}
    return {"kind": type(value).__name__}


def describe_constant(value: Any, home: str | None) -> str:
    """A default value as text: constants as Python writes them (enum members by class
    and name), anything else by its type, never by an address or a module's load name."""
    if isinstance(value, enum.Enum):
        return f"{type(value).__qualname__}.{value.name}"
    if isinstance(value, tuple) and _is_constant(value):
        inner = ", ".join(describe_constant(v, home) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, frozenset) and _is_constant(value):
        return "frozenset({" + ", ".join(sorted(describe_constant(v, home) for v in value)) + "})"
    if isinstance(value, _CONSTANT_TYPES):
        return repr(value)
    return f"<{type_name(type(value), home)}>"


def _is_constant(value: Any) -> bool:
    if isinstance(value, enum.Enum):
        return True
    if isinstance(value, _CONSTANT_TYPES):
        return True
    if isinstance(value, (tuple, frozenset)):
        return all(_is_constant(v) for v in value)
    return False


def _value(value: Any, home: str | None = None) -> Any:
    """A JSON-safe, deterministic description of a constant (``home``: the module of the
    code being identified, for naming other values by their type)."""
    if isinstance(value, enum.Enum):
        return {"enum": f"{type(value).__qualname__}.{value.name}"}
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    if isinstance(value, float):
        return {"float": repr(value)}
    if isinstance(value, str) and valid_unicode(value) is not value:
        # a lone surrogate (not valid Unicode, no JSON form): its code points, surrogates kept
        return {"invalid_str": value.encode("utf-8", "surrogatepass").hex()}
    if isinstance(value, _CONSTANT_TYPES):
        return value
    if isinstance(value, tuple):
        return {"tuple": [_value(v, home) for v in value]}
    if isinstance(value, frozenset):
        items = [_value(v, home) for v in value]
        return {"frozenset": sorted(items, key=canonical_bytes)}
    if isinstance(value, types.CodeType):
        return {"code": _bytecode(value)}
    return {"repr_type": type_name(type(value), home)}
