"""Sealing keys: held outside the database, found by id, so they can rotate and be destroyed.

A sealed value names the id of the key that sealed it. Whoever seals asks the key
source for its current key; whoever opens asks for the key with the recorded id. A
key source is anything with that shape (:class:`SealingKeys`), so a KMS or vault
adapter is a small class; the SDK brings :class:`StaticSealingKeys` (keys held in
memory) and reads ``CODON_SEALING_KEY`` or ``CODON_SEALING_KEY_FILE``.

Both hold one or more keys, each the standard or URL-safe base64 of 32 random bytes,
separated by whitespace or commas: the first seals, all of them open (list the new
key first to rotate, keep the old ones while records sealed with them must open).
A key's id is derived from the key (16 hex digits of a SHA-256), so a wrong key is
told apart from a tampered record. Destroying every copy of a key erases every
value sealed with it: the records keep verifying, their marker is all that is left.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import re
import secrets
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final, Protocol, runtime_checkable

from codon_sdk.errors import SealingKeyError

__all__ = [
    "SEALING_KEY_ENV_VAR",
    "SEALING_KEY_FILE_ENV_VAR",
    "SealingKeys",
    "StaticSealingKeys",
    "generate_sealing_key",
    "key_id_of",
    "sealing_keys_from_environment",
]

_log = logging.getLogger("codon_sdk.redaction")

SEALING_KEY_ENV_VAR: Final = "CODON_SEALING_KEY"
SEALING_KEY_FILE_ENV_VAR: Final = "CODON_SEALING_KEY_FILE"
KEY_BYTES: Final = 32
KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
_SEPARATORS = re.compile(r"[\s,]+")


@runtime_checkable
class SealingKeys(Protocol):
    """Where sealing keys come from (an adapter for a KMS or vault has this shape).

    ``source`` names the source in error messages (never a key). ``current()`` returns
    ``(key id, 32 key bytes)`` to seal with now; ``get(key_id)`` the key with that id,
    or ``None`` when the source does not hold it (never had it, or it was destroyed).
    Either may raise when the source cannot be reached: sealing then stops the write
    and opening refuses the run, naming the source. Key ids are 1-64 letters, digits,
    ``_``, ``.`` or ``-``, starting with a letter or digit.
    """

    @property
    def source(self) -> str: ...

    def current(self) -> tuple[str, bytes]: ...

    def get(self, key_id: str) -> bytes | None: ...


def key_id_of(key: bytes) -> str:
    """The id the SDK gives a key it did not get an id for: 16 hex digits of a SHA-256."""
    return hashlib.sha256(b"codon-sealing-key-id\x00" + key).hexdigest()[:16]


def generate_sealing_key() -> str:
    """A new random sealing key, as the base64 text ``CODON_SEALING_KEY`` expects."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


class StaticSealingKeys:
    """Sealing keys held in memory: the first (or ``current``) seals, all of them open.

    ``keys`` is one key, a list of keys (ids derived with :func:`key_id_of`), or a
    mapping from key id to key; every key is 32 bytes. ``source`` names them in errors.
    """

    __slots__ = ("_current", "_keys", "_source")

    def __init__(
        self,
        keys: bytes | Iterable[bytes] | Mapping[str, bytes],
        *,
        current: str | None = None,
        source: str = "keys passed in code",
    ) -> None:
        self._source = source
        if isinstance(keys, (bytes, bytearray)):
            keys = [bytes(keys)]
        pairs = list(keys.items()) if isinstance(keys, Mapping) else [(None, k) for k in keys]
        held: dict[str, bytes] = {}
        for i, (kid, key) in enumerate(pairs):
            if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_BYTES:
                raise SealingKeyError(
                    f"sealing key {i + 1} from {source} is not {KEY_BYTES} bytes; generate one "
                    "with codon_sdk.redaction.generate_sealing_key()",
                    source=source,
                )
            kid = key_id_of(bytes(key)) if kid is None else kid
            if not isinstance(kid, str) or KEY_ID.match(kid) is None:
                raise SealingKeyError(
                    f"sealing key id {kid!r} from {source} is not 1-64 letters, digits, _ . -",
                    source=source,
                )
            held.setdefault(kid, bytes(key))
        if not held:
            raise SealingKeyError(f"{source} holds no sealing key", source=source)
        first = next(iter(held))
        if current is not None and current not in held:
            raise SealingKeyError(
                f"the current sealing key id {current!r} is not among the keys of {source}",
                source=source,
            )
        self._keys = held
        self._current = first if current is None else current

    def __repr__(self) -> str:  # never the keys
        return f"StaticSealingKeys(source={self._source!r}, ids={list(self._keys)!r})"

    @property
    def source(self) -> str:
        return self._source

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The ids of the keys held, the current one first."""
        return (self._current, *(k for k in self._keys if k != self._current))

    def current(self) -> tuple[str, bytes]:
        return self._current, self._keys[self._current]

    def get(self, key_id: str) -> bytes | None:
        return self._keys.get(key_id)


def parse_keys(text: str, source: str) -> StaticSealingKeys:
    """Keys written as base64 text separated by whitespace or commas (first one current)."""
    keys: list[bytes] = []
    for i, word in enumerate(w for w in _SEPARATORS.split(text.strip()) if w):
        raw = _decode(word)
        if raw is None or len(raw) != KEY_BYTES:
            raise SealingKeyError(
                f"sealing key {i + 1} in {source} is not the base64 of {KEY_BYTES} bytes; "
                "generate one with `python -c 'from codon_sdk.redaction import "
                "generate_sealing_key as g; print(g())'`",
                source=source,
            )
        keys.append(raw)
    if not keys:
        raise SealingKeyError(f"{source} is set but holds no sealing key", source=source)
    return StaticSealingKeys(keys, source=source)


def _decode(word: str) -> bytes | None:
    padded = word + "=" * (-len(word) % 4)
    for altchars in (b"+/", b"-_"):
        try:
            return base64.b64decode(padded, altchars=altchars, validate=True)
        except (binascii.Error, ValueError):
            continue
    return None


def sealing_keys_from_environment() -> StaticSealingKeys | None:
    """The keys ``CODON_SEALING_KEY`` or the file ``CODON_SEALING_KEY_FILE`` names, or
    None when neither is set. Both set, a file that cannot be read or a key that is not
    base64 of 32 bytes raise :class:`~codon_sdk.errors.SealingKeyError`."""
    text = os.environ.get(SEALING_KEY_ENV_VAR)
    path = os.environ.get(SEALING_KEY_FILE_ENV_VAR)
    if text and path:
        raise SealingKeyError(
            f"both {SEALING_KEY_ENV_VAR} and {SEALING_KEY_FILE_ENV_VAR} are set; set one",
            source=SEALING_KEY_ENV_VAR,
        )
    if text:
        return parse_keys(text, SEALING_KEY_ENV_VAR)
    if path:
        return read_key_file(path)
    return None


def read_key_file(path: str | os.PathLike[str]) -> StaticSealingKeys:
    """The keys in a key file (see the module docstring); a warning when others can read it."""
    source = f"{SEALING_KEY_FILE_ENV_VAR}={os.fspath(path)}"
    file = Path(path)
    try:
        text = file.read_text("utf-8")
        mode = file.stat().st_mode
    except (OSError, UnicodeDecodeError) as exc:
        raise SealingKeyError(
            f"cannot read the sealing key file {os.fspath(path)!r} ({type(exc).__name__}: "
            f"{getattr(exc, 'strerror', None) or exc}); check {SEALING_KEY_FILE_ENV_VAR}",
            source=source,
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        _log.warning(
            "the sealing key file %s can be read by other users (mode %o); chmod 600 it",
            os.fspath(path),
            stat.S_IMODE(mode),
        )
    return parse_keys(text, source)
