"""Names of types and annotations that do not depend on how the code was loaded.

A node's signature and schemas name the types in its annotations. Naming a type by
``module.qualname`` would make the identity depend on the entry point: the same file
defines ``__main__.State`` when run as a script, ``agentmod.State`` when imported,
``<run_path>.State`` under ``runpy`` and whatever name a file-path import chose. So:

* a type from the node's own module, or from a module with no stable import name
  (``__main__``, ``<run_path>``, a module missing from ``sys.modules``), is *local*: it
  is named ``local:<qualname>`` and identified by what it is (:func:`class_fingerprint`:
  its bases, annotations, constants and methods' code hashes), so editing it changes
  the id and moving it does not;
* any other type is named by its import path, ``package.module.Qualname`` (builtins by
  their bare name): it is identified by what it is called where everyone imports it.
"""

from __future__ import annotations

import builtins
import inspect
import sys
import types
import typing
from typing import Any

__all__ = ["annotation_text", "is_local", "type_name"]

_UNSTABLE_MODULES = frozenset({"__main__", "__mp_main__", "<run_path>"})


def is_local(tp: Any, home: str | None) -> bool:
    """True when ``tp`` belongs to the code being identified rather than to a package."""
    module = getattr(tp, "__module__", None)
    if not isinstance(module, str) or module == home or module in _UNSTABLE_MODULES:
        return True
    if module.startswith("<"):
        return True
    loaded = sys.modules.get(module)
    return loaded is None or getattr(loaded, "__spec__", None) is None


def type_name(tp: type, home: str | None) -> str:
    """``tp`` named as the module docstring says: ``local:Qualname`` or its import path."""
    if getattr(builtins, tp.__name__, None) is tp:
        return str(tp.__name__)
    if is_local(tp, home):
        return f"local:{tp.__qualname__}"
    return f"{tp.__module__}.{tp.__qualname__}"


def annotation_text(annotation: Any, home: str | None) -> str:
    """An annotation as text, every type in it named by :func:`type_name`."""
    if annotation is inspect.Parameter.empty:
        return ""
    if isinstance(annotation, str):
        return annotation
    if annotation is None or annotation is type(None):
        return "None"
    if annotation is Any:
        return "Any"
    origin = typing.get_origin(annotation)
    if origin is not None:
        args = typing.get_args(annotation)
        if origin is typing.Union or origin is types.UnionType:
            return " | ".join(annotation_text(a, home) for a in args)
        if origin is typing.Literal:
            return f"Literal[{', '.join(repr(a) for a in args)}]"
        head = type_name(origin, home) if isinstance(origin, type) else _plain(origin)
        if not args:
            return head
        return f"{head}[{', '.join(_arg_text(a, home) for a in args)}]"
    if isinstance(annotation, type):
        return type_name(annotation, home)
    if isinstance(annotation, typing.TypeVar):
        return f"~{annotation.__name__}"
    return _plain(annotation)


def _arg_text(arg: Any, home: str | None) -> str:
    if arg is Ellipsis:
        return "..."
    if isinstance(arg, list):  # Callable[[A, B], R]
        return "[" + ", ".join(annotation_text(a, home) for a in arg) + "]"
    return annotation_text(arg, home)


def _plain(annotation: Any) -> str:
    """A typing construct with no type to rename (``typing.Callable``, a ``NewType``...)."""
    name = getattr(annotation, "__qualname__", None) or getattr(annotation, "_name", None)
    if isinstance(name, str):
        return name
    text = repr(annotation)
    return text.replace("typing.", "")
