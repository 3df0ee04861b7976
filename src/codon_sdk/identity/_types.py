"""Which types ledger data may bring back to life: an explicit allowlist, never an import.

Tagged values (``{"$codon": "enum" | "dataclass" | "pydantic", "type": "<module>:<qualname>",
"v": ...}``) and recorded errors name a type. Reading a ledger must never let that name
choose a module to import or a callable to call: an entry written by an attacker with
access to the database (or copied by a node from untrusted input) could otherwise name
``subprocess:Popen``. So a name is only ever looked up in this registry:

* every enum, dataclass and pydantic class this process has encoded itself is
  registered as it is encoded (the process already holds and trusts it);
* the exception class of every error this process recorded is registered the same way;
* an application registers the rest once at start-up with :func:`register_type` (a
  process that resumes a run and reads a dataclass before it has encoded one);
* the standard library's exception types are allowed for recorded errors.

A name not found is never resolved: the value decodes to an inert
:class:`~codon_sdk.identity.TaggedValue` and an error to a plain
:class:`~codon_sdk.errors.RecordedError`.
"""

from __future__ import annotations

import builtins
import threading
from typing import Final

from codon_sdk.errors import RecordedError

__all__ = ["allowed_type", "recorded_error", "register_type", "remember_type", "type_path"]

_TYPES: dict[str, type] = {}
_LOCK = threading.Lock()
_MIXINS: dict[type, type[RecordedError] | None] = {}

#: Exception types of the standard library a recorded error may name (``builtins:<name>``).
_BUILTIN_ERRORS: Final[dict[str, type]] = {
    f"builtins:{name}": obj
    for name, obj in vars(builtins).items()
    if isinstance(obj, type) and issubclass(obj, Exception)
}


def type_path(cls: type) -> str:
    """``module:qualname`` of a class, the form tagged encodings use to name types."""
    return f"{cls.__module__}:{cls.__qualname__}"


def register_type(*classes: type) -> None:
    """Allow ledger data to revive values of these classes (enums, dataclasses, pydantic
    models) and to raise recorded errors as these exception classes.

    Call it at start-up for the types your nodes put into tokens, results, state and
    effects, in any process that reads runs back (resume, replay, fork, reports) before
    it has encoded a value of that type itself. Registering the same class again is a
    no-op; a different class under the same ``module:qualname`` replaces it.
    """
    for cls in classes:
        if not isinstance(cls, type):
            raise TypeError(f"register_type() takes classes, got {cls!r}")
    with _LOCK:
        for cls in classes:
            _TYPES[type_path(cls)] = cls


def remember_type(cls: type) -> None:
    """Register a class this process is encoding (the encoder calls this; cheap when known)."""
    path = type_path(cls)
    if _TYPES.get(path) is not cls:
        with _LOCK:
            _TYPES[path] = cls


def allowed_type(path: object) -> type | None:
    """The registered class named ``path`` (``module:qualname``), or None: never imported."""
    return _TYPES.get(path) if isinstance(path, str) else None


def recorded_error(
    type_name: object, message: object, traceback_text: object = ""
) -> RecordedError:
    """The error a recorded effect raised, raised again without trusting the ledger.

    Always a :class:`RecordedError` carrying the recorded type name, message and
    traceback text; when the name is a standard-library exception type or a registered
    one, the instance is also an instance of that class (a subclass made here, whose
    ``__init__`` is never called), so ``except ValueError:`` in node code still matches.
    """
    name = type_name if isinstance(type_name, str) else ""
    text = message if isinstance(message, str) else ""
    trace = traceback_text if isinstance(traceback_text, str) else ""
    cls = _BUILTIN_ERRORS.get(name) or allowed_type(name)
    mixin = _mixin(cls) if cls is not None and issubclass(cls, Exception) else None
    if mixin is None:
        return RecordedError(text, type_name=name, traceback_text=trace)
    err: RecordedError = mixin.__new__(mixin, text)  # never the class's __init__
    err.args = (text,)
    err.message, err.type_name, err.traceback_text = text, name, trace
    return err


def _mixin(cls: type) -> type[RecordedError] | None:
    """``RecordedError`` and ``cls`` in one class (None when Python refuses the mix)."""
    try:
        return _MIXINS[cls]
    except KeyError:
        pass
    made: type[RecordedError] | None
    try:
        made = type(
            f"Recorded{cls.__name__}",
            (RecordedError, cls),
            {"__module__": __name__, "__str__": RecordedError.__str__},
        )
        made.__new__(made, "")  # some layouts only fail on construction
    except Exception:
        made = None
    _MIXINS[cls] = made
    return made
