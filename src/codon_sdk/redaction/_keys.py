"""Credential-named keys: which dict keys name a credential, and masking a value whole.

A value under a key such as ``api_key``, ``X-API-Key`` or ``db_password`` is a secret
whatever it looks like (``"hunter2"`` has no shape a text detector could find), so the
key decides: the whole value becomes one marker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final

from codon_sdk.redaction._detectors import DEFAULT_CREDENTIAL_KEYS, KEY_DETECTOR, MARKER_PATTERN

__all__ = ["KeyVerdicts", "is_credential_key", "mask_whole", "normalise_key_names"]

_SEPARATORS: Final = str.maketrans("", "", "_-. ")
_MAX_CACHED = 4096  # distinct keys remembered per policy (state and metadata keys repeat)
_MAX_DEPTH = 200


def _normalise(name: str) -> str:
    return name.lower().translate(_SEPARATORS)


def normalise_key_names(names: Iterable[str]) -> tuple[str, ...]:
    """The credential key names of a policy, compared case- and separator-insensitively.

    Raises ``ValueError`` for a name that is not a string or has nothing left once
    case and separators are set aside.
    """
    wanted = (names,) if isinstance(names, str) else tuple(names)  # one name
    out: list[str] = []
    for name in wanted:
        norm = _normalise(name) if isinstance(name, str) else ""
        if not norm:
            raise ValueError(
                f"invalid credential key name {name!r}: give a non-empty string such as "
                "'api_key' (case and the separators _ - . and space are ignored)"
            )
        out.append(norm)
    return tuple(sorted(set(out)))


class KeyVerdicts(dict[Any, bool]):
    """``verdicts[key]``: does ``key`` name a credential? Computed once per key (C-speed
    lookups after that), for string keys only; at most 4096 keys are remembered."""

    __slots__ = ("names",)

    def __init__(self, names: tuple[str, ...]) -> None:
        super().__init__()
        self.names = names

    def __missing__(self, key: Any) -> bool:
        verdict = isinstance(key, str) and _normalise(key).endswith(self.names)
        if len(self) < _MAX_CACHED:
            self[key] = verdict
        return verdict


_DEFAULT_VERDICTS: KeyVerdicts | None = None


def is_credential_key(name: object) -> bool:
    """Whether ``name`` names a credential under :data:`DEFAULT_CREDENTIAL_KEYS`
    (case and the separators ``_ - .`` and space ignored): ``X-API-Key``, ``sslpassword``."""
    global _DEFAULT_VERDICTS
    if _DEFAULT_VERDICTS is None:
        _DEFAULT_VERDICTS = KeyVerdicts(normalise_key_names(DEFAULT_CREDENTIAL_KEYS))
    return _DEFAULT_VERDICTS[name]


def mask_whole(value: Any, marker: Callable[[str], str], text: Callable[[str], str]) -> Any:
    """``value`` (found under a credential key) with every scalar in it masked whole.

    ``marker(secret)`` writes the marker of one secret; ``text`` redacts the keys of
    nested dicts. None and booleans stay (they hold no secret and say whether one is
    set); markers already written stay; an object that is not JSON-like becomes one
    marker of its type name, so nothing of it is recorded.
    """
    return _mask(value, marker, text, 0)


def _mask(value: Any, marker: Callable[[str], str], text: Callable[[str], str], depth: int) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value if _is_marker(value) else marker(str(value))
    if isinstance(value, (int, float)):
        return marker(repr(value))
    if isinstance(value, (bytes, bytearray)):
        return marker(bytes(value).decode("utf-8", "backslashreplace"))
    if depth < _MAX_DEPTH:
        if isinstance(value, dict):
            return {
                (text(k) if isinstance(k, str) else k): _mask(x, marker, text, depth + 1)
                for k, x in value.items()
            }
        if isinstance(value, (list, tuple)):
            items = [_mask(x, marker, text, depth + 1) for x in value]
            return tuple(items) if isinstance(value, tuple) else items
        if isinstance(value, (set, frozenset)):
            return sorted({_mask(x, marker, text, depth + 1) for x in value}, key=repr)
    return marker(f"<{type(value).__module__}.{type(value).__qualname__}>")


def _is_marker(value: str) -> bool:
    return value.startswith("[REDACTED:") and MARKER_PATTERN.fullmatch(value) is not None


KIND: Final = KEY_DETECTOR
"""The kind of the markers written for values under credential keys."""
