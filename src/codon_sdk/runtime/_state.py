"""``runtime.state``: a dict that knows which of its keys may have changed.

Writes through the mapping interface mark a key dirty; reads that hand out a
mutable value (a list, a dict...) mark it possibly dirty, since the caller may
mutate it in place. When an activation completes, :meth:`RunState.changes`
compares the possibly-changed keys with what was last recorded and returns only
what really changed, ready for a ``state_updated`` event. At the end of a run a
full comparison catches changes made around the mapping interface (through
``dict(state)`` and the like). Resume and replay rebuild the state by applying
the recorded changes in order.

Concurrency (``docs/guides/joins-and-state.md`` states the rules for node authors):
:meth:`RunState.update_with` reads, computes and writes under the state's lock; a
run with ``max_concurrency`` > 1 makes its state ``locked``, so that every write
through the mapping interface takes the same lock and cannot land between the read
and the write of an ``update_with`` made in another thread.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from codon_sdk.errors import CanonicalEncodingError
from codon_sdk.identity import TAG, Redact, canonical_bytes, decode, key_masker, prepare

__all__ = ["RunState", "apply_change"]

_IMMUTABLE = frozenset({str, int, float, bool, type(None), bytes})
# Values recorded as they are: JSON as is, compared with ==.
_PLAIN = frozenset({str, bool, type(None)})
_SAFE = 2**53 - 1
_MISSING = object()
_MARKERS = (b"[REDACTED:", b"[SEALED:")


class _Kept:
    """A recorded value whose ledger form (masked or sealed) differs from the value itself:
    ``compared`` is what the ledger holds, ``raw`` what a rollback gives back."""

    __slots__ = ("compared", "raw")

    def __init__(self, compared: bytes, raw: bytes) -> None:
        self.compared = compared
        self.raw = raw

    def __eq__(self, other: object) -> bool:
        return other == self.compared

    __hash__ = None  # type: ignore[assignment]


def _held(value: Any, snapshot: bytes) -> bytes | _Kept:
    """What to remember of a recorded non-plain value: its snapshot, with the value's own
    bytes beside it when redaction changed it (so a rollback never restores a marker)."""
    if _MARKERS[0] in snapshot or _MARKERS[1] in snapshot:
        raw = canonical_bytes(value)
        if raw != snapshot:
            return _Kept(snapshot, raw)
    return snapshot


class RunState(dict[Any, Any]):
    """The per-run shared state dict (see the module docstring)."""

    __slots__ = ("_dirty", "_lock", "_locked", "_recorded", "_redact", "_secret_key")

    def __init__(
        self,
        initial: Mapping[Any, Any] | None = None,
        *,
        redact: Redact | None = None,
        locked: bool = False,
    ) -> None:
        super().__init__()
        self._lock = threading.RLock()
        #: every write takes ``_lock`` (a run whose nodes may run in several threads)
        self._locked = locked
        self._dirty: set[Any] = set()
        self._recorded: dict[Any, Any] = {}
        self._redact = redact
        masker = key_masker(redact)
        # numbers under a credential key are masked too: not recorded as they are
        self._secret_key = None if masker is None else masker[0]
        if initial:
            for key, value in initial.items():
                dict.__setitem__(self, key, value)
                self._dirty.add(key)

    # --------------------------------------------------------------- atomic updates

    def update_with(self, key: Any, fn: Callable[[Any], Any], *, default: Any = _MISSING) -> Any:
        """Set ``state[key]`` to ``fn(state[key])`` atomically and return the new value.

        The read, the call and the write happen under the state's lock, with no await
        and no other thread's write in between, so concurrent updates of one key are
        never lost: ``runtime.state.update_with("hits", lambda n: n + 1, default=0)``.
        A missing key gives ``fn(default)``; without ``default`` it raises ``KeyError``.
        ``fn`` must be a plain (not async) function that returns the new value without
        mutating the old one in place, and should be quick (other writers wait for it);
        if it raises, the state is left as it was and the exception propagates.
        """
        if not callable(fn):
            raise TypeError(
                f"update_with({key!r}, fn): fn must be a function of the current value, got {fn!r}"
            )
        if inspect.iscoroutinefunction(fn):
            raise TypeError(
                f"update_with({key!r}, fn): fn must be a plain function, not async "
                f"({fn!r}); await what you need first, then pass a function that "
                "computes the new value from the current one"
            )
        with self._lock:
            current = dict.get(self, key, _MISSING)
            if current is _MISSING:
                if default is _MISSING:
                    raise KeyError(key)
                current = default
            value = fn(current)
            if inspect.isawaitable(value):
                close = getattr(value, "close", None)
                if close is not None:
                    close()
                raise TypeError(
                    f"update_with({key!r}, fn): fn returned an awaitable ({value!r}); it must "
                    "return the new value itself (await what you need before update_with)"
                )
            dict.__setitem__(self, key, value)
            self._dirty.add(key)
        return value

    # --------------------------------------------------------------- writes

    # Under ``_locked``, a write and its dirty mark happen under the lock that ``changes``
    # swaps the dirty set under: a mark can never land in a set already taken.

    def __setitem__(self, key: Any, value: Any) -> None:
        if self._locked:
            with self._lock:
                dict.__setitem__(self, key, value)
                self._dirty.add(key)
        else:
            dict.__setitem__(self, key, value)
            self._dirty.add(key)

    def __delitem__(self, key: Any) -> None:
        if self._locked:
            with self._lock:
                dict.__delitem__(self, key)
                self._dirty.add(key)
        else:
            dict.__delitem__(self, key)
            self._dirty.add(key)

    def __ior__(self, other: Any) -> RunState:  # type: ignore[misc]
        self.update(other)
        return self

    def update(self, *args: Any, **kwargs: Any) -> None:
        with self._lock:
            before = set(self)
            dict.update(self, *args, **kwargs)
            self._dirty.update(set(self) - before)
            for source in (*args, kwargs):
                keys: Iterable[Any] = (
                    source.keys() if hasattr(source, "keys") else (k for k, _ in source)
                )
                self._dirty.update(keys)

    def pop(self, key: Any, *default: Any) -> Any:
        with self._lock:
            self._dirty.add(key)
            return dict.pop(self, key, *default)

    def popitem(self) -> tuple[Any, Any]:
        with self._lock:
            item = dict.popitem(self)
            self._dirty.add(item[0])
        return item

    def setdefault(self, key: Any, default: Any = None) -> Any:
        with self._lock:
            self._dirty.add(key)
            return dict.setdefault(self, key, default)

    def clear(self) -> None:
        with self._lock:
            self._dirty.update(self)
            dict.clear(self)

    # --------------------------------------------------------------- reads that hand out values

    def __getitem__(self, key: Any) -> Any:
        value = dict.__getitem__(self, key)
        if type(value) not in _IMMUTABLE:
            self._mark(key)
        return value

    def get(self, key: Any, default: Any = None) -> Any:
        value = dict.get(self, key, _MISSING)
        if value is _MISSING:
            return default
        if type(value) not in _IMMUTABLE:
            self._mark(key)
        return value

    def values(self) -> Any:
        self._touch_mutable()
        return dict.values(self)

    def items(self) -> Any:
        self._touch_mutable()
        return dict.items(self)

    def copy(self) -> dict[Any, Any]:
        self._touch_mutable()
        return dict(dict.items(self))

    def __iter__(self) -> Iterator[Any]:
        return dict.__iter__(self)

    def _touch_mutable(self) -> None:
        for key, value in dict.items(self):
            if type(value) not in _IMMUTABLE:
                self._mark(key)

    def _mark(self, key: Any) -> None:
        """Mark ``key`` possibly changed (a mutable value handed out)."""
        if self._locked:
            with self._lock:
                self._dirty.add(key)
        else:
            self._dirty.add(key)

    # --------------------------------------------------------------- change capture

    def changes(
        self, *, full: bool = False, skipped: list[str] | None = None
    ) -> dict[str, Any] | None:
        """What changed since the last call, as ``{"set": {...}, "del": [...]}`` (or None).

        The result is already prepared for canonical encoding. ``full`` compares
        every key instead of only the possibly-changed ones. A value with no
        canonical encoding raises ``CanonicalEncodingError``, unless ``skipped`` is
        given: then the key is left out and a description appended to it.
        """
        if not self._dirty and not full:
            return None
        if self._locked:
            with self._lock:  # no write (and its mark) in between
                keys, self._dirty = self._dirty, set()
        else:
            keys, self._dirty = self._dirty, set()
        if full:
            keys = keys | set(dict.keys(self)) | set(self._recorded)
        if not keys:
            return None
        changed: dict[Any, Any] = {}
        deleted: list[Any] = []
        recorded = self._recorded
        plain = True
        for key in keys:
            value = dict.get(self, key, _MISSING)
            if value is _MISSING:
                if key in recorded:
                    del recorded[key]
                    deleted.append(key)
                    plain = plain and type(key) is str
                continue
            old = recorded.get(key, _MISSING)
            tv = type(value)
            if tv in _PLAIN or (tv is int and -_SAFE <= value <= _SAFE):
                if old is value or (type(old) is tv and old == value):
                    continue
                recorded[key] = value
                secret = self._secret_key
                if (tv is str and self._redact is not None) or (
                    tv is int and secret is not None and secret(key)
                ):
                    plain = False
            else:
                try:
                    snapshot = canonical_bytes(value, self._redact)
                except CanonicalEncodingError as exc:
                    if skipped is None:
                        raise _at_key(key, exc) from exc
                    skipped.append(f"state[{key!r}]: {exc}")
                    continue
                if old == snapshot:
                    continue
                recorded[key] = _held(value, snapshot)
                plain = False
            plain = plain and _plain_key(key)
            changed[key] = value
        if not changed and not deleted:
            return None
        diff: dict[str, Any] = {}
        if changed:
            diff["set"] = changed
        if deleted:
            diff["del"] = sorted(deleted, key=canonical_bytes)
        return diff if plain else prepare(diff, self._redact)

    def rollback(self) -> None:
        """Undo the writes made since the last recorded state (a failed attempt's).

        Keys written or handed out since then get back their recorded values (fresh
        copies, decoded from the recorded bytes for mutable values); keys that were
        never recorded disappear.
        """
        keys, self._dirty = self._dirty, set()
        recorded = self._recorded
        for key in keys:
            if key not in recorded:
                dict.pop(self, key, None)
                continue
            held = recorded[key]
            if type(held) is _Kept:
                held = held.raw
            dict.__setitem__(self, key, decode(held) if type(held) is bytes else held)

    def load(self, values: Mapping[Any, Any]) -> None:
        """Replace the contents with recorded values (resume, replay), marking nothing dirty."""
        dict.clear(self)
        self._recorded.clear()
        for key, value in values.items():
            dict.__setitem__(self, key, value)
            tv = type(value)
            plain = tv in _PLAIN or (tv is int and -_SAFE <= value <= _SAFE)
            # compared with what the ledger holds (masked or sealed), as changes() makes it
            self._recorded[key] = (
                value if plain else _held(value, canonical_bytes(value, self._redact))
            )
        self._dirty = set()


def _plain_key(key: Any) -> bool:
    """Whether a key can be written as it is: a string that is not the tag key (which must be
    escaped, or ledger data would hold a live tagged object) and whose code-point order is
    RFC 8785's UTF-16 order (no character from U+D800 on)."""
    return type(key) is str and key != TAG and (key.isascii() or max(key) < "\ud800")


def _at_key(key: Any, exc: CanonicalEncodingError) -> CanonicalEncodingError:
    path = f"state[{key!r}]" + exc.path[1:]
    message = str(exc).replace(f"at {exc.path}", f"at {path}", 1)
    return CanonicalEncodingError(message, path=path, type_name=exc.type_name)


def apply_change(state: dict[Any, Any], change: Mapping[str, Any]) -> None:
    """Apply one recorded ``state_updated`` payload (already revived) to a plain dict."""
    for key, value in (change.get("set") or {}).items():
        state[key] = value
    for key in change.get("del") or ():
        state.pop(key, None)
