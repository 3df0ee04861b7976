"""Sealed values: a secret kept in the ledger encrypted, so a resumed run gets it back.

Where the policy says ``seal``, the secret substring is replaced by::

    [SEALED:<kind>:<digest>:<key id>:<base64url(nonce || ciphertext || tag)>]

AES-256-GCM under the key with that id; the additional data binds the kind, the
digest and the key id, so none of them can be swapped. The digest is the keyed
HMAC a mask carries (``[REDACTED:<kind>:<digest>]``), so sealed and masked records
of one secret still correlate. The chain hashes the stored text: verification never
needs the key. Spans, logs and the CLI get the mask form, never the ciphertext.

Sealing is deterministic (a synthetic IV: the nonce is a keyed BLAKE2b of the marker's
header and the secret), so the same secret sealed twice under one key gives the same
marker: state diffs, replay comparisons and the digest of a recorded request do not
see a change where there is none. It reveals only what the digest already does, that
two sealed values are equal.

Opening (:func:`unseal_value`) happens only where code is given values: resume,
replay and fork. Every marker must authenticate under the key its id names; one that
does not (wrong key, edited ciphertext, forged marker) raises
:class:`~codon_sdk.errors.SealingKeyError` and decodes to nothing. The marker's text is
data: it never chooses anything but which key is asked for.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable
from typing import Any, Final

from codon_sdk.errors import SealingKeyError
from codon_sdk.redaction._sealing_keys import KEY_BYTES, KEY_ID, SealingKeys

__all__ = [
    "SEALED_MARKER_PATTERN",
    "SEALED_PREFIX",
    "Sealer",
    "comparable",
    "mask_sealed",
    "unseal_value",
]

SEALED_PREFIX: Final = "[SEALED:"
SEALED_MARKER_PATTERN: Final = re.compile(
    r"\[SEALED:(?P<kind>[A-Za-z][A-Za-z0-9_.-]{0,63}):(?P<digest>[0-9a-f]{12}):"
    r"(?P<key_id>[A-Za-z0-9][A-Za-z0-9_.-]{0,63}):(?P<box>[A-Za-z0-9_-]{38,})\]"
)
"""Matches a sealed marker; ``kind``, ``digest``, ``key_id`` and ``box`` name its parts."""

_NONCE = 12
_TAG = 16
_MAX_DEPTH = 200


def _aad(kind: str, digest: str, key_id: str) -> bytes:
    return f"codon-sealed-v1\x00{kind}\x00{digest}\x00{key_id}".encode("ascii")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def _aead_class() -> Any:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:  # pragma: no cover - the crypto extra is part of every test set-up
        raise SealingKeyError(
            "sealing needs the cryptography package: pip install 'codon-sdk[crypto]'"
        ) from None
    return AESGCM


class _Key:
    """One key's derived parts: the AEAD (encryption key) and the nonce key."""

    __slots__ = ("aead", "nonce_key")

    def __init__(self, key: bytes) -> None:
        self.aead = _aead_class()(hmac.digest(key, b"codon-sealing-encrypt-v1", "sha256"))
        self.nonce_key = hmac.digest(key, b"codon-sealing-nonce-v1", "sha256")


class Sealer:
    """Seals and opens secrets with the keys of one :class:`SealingKeys` source."""

    __slots__ = ("_derived", "keys")

    def __init__(self, keys: SealingKeys) -> None:
        _aead_class()  # fail at configuration, not at the first secret
        self.keys = keys
        self._derived: dict[bytes, _Key] = {}

    @property
    def source(self) -> str:
        try:
            return str(self.keys.source)
        except Exception:  # a provider's property failing must not hide the real error
            return type(self.keys).__qualname__

    def _key(self, key: bytes) -> _Key:
        derived = self._derived.get(key)
        if derived is None:
            if len(self._derived) > 64:
                self._derived.clear()
            derived = self._derived[key] = _Key(key)
        return derived

    def seal(self, kind: str, digest: str, secret: str) -> str:
        """The sealed marker of ``secret``; :class:`SealingKeyError` when the source fails
        (the caller then records nothing: the secret must not be written unsealed)."""
        try:
            key_id, key = self.keys.current()
        except Exception as exc:
            raise SealingKeyError(
                f"the sealing key source {self.source} failed ({type(exc).__name__}); nothing "
                "was recorded unsealed. Fix the key source and resume the run",
                source=self.source,
            ) from None
        if not isinstance(key_id, str) or KEY_ID.match(key_id) is None:
            raise SealingKeyError(
                f"the sealing key source {self.source} gave an invalid key id {key_id!r}",
                source=self.source,
            )
        if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_BYTES:
            raise SealingKeyError(
                f"the sealing key source {self.source} gave key {key_id!r} that is not "
                f"{KEY_BYTES} bytes",
                source=self.source,
            )
        parts = self._key(bytes(key))
        aad = _aad(kind, digest, key_id)
        data = secret.encode("utf-8", "surrogatepass")
        # keyed BLAKE2b is a PRF, and several times cheaper per call than HMAC here
        nonce = hashlib.blake2b(
            aad + b"\x00" + data, key=parts.nonce_key, digest_size=_NONCE
        ).digest()
        box = nonce + parts.aead.encrypt(nonce, data, aad)
        return f"[SEALED:{kind}:{digest}:{key_id}:{_b64(box)}]"

    def open_match(self, m: re.Match[str], *, where: str, run_id: str | None) -> str:
        """The secret inside one sealed marker, or :class:`SealingKeyError`."""
        kind, digest, key_id = m["kind"], m["digest"], m["key_id"]
        try:
            key = self.keys.get(key_id)
        except Exception as exc:
            raise SealingKeyError(
                f"{where} holds values sealed with key {key_id!r}, and the key source "
                f"{self.source} failed when asked for it ({type(exc).__name__}); nothing ran",
                source=self.source,
                run_id=run_id,
            ) from None
        if key is None:
            raise SealingKeyError(
                f"{where} holds values sealed with key {key_id!r}, which the key source "
                f"{self.source} does not hold; configure the key that sealed them (a "
                "destroyed key means those values are erased). Nothing ran",
                source=self.source,
                run_id=run_id,
            )
        box = _unb64(m["box"])
        plain: bytes | None = None
        if box is not None and len(box) >= _NONCE + _TAG and len(key) == KEY_BYTES:
            try:
                plain = self._key(bytes(key)).aead.decrypt(
                    box[:_NONCE], box[_NONCE:], _aad(kind, digest, key_id)
                )
            except Exception:  # InvalidTag: wrong key or altered marker
                plain = None
        if plain is None:
            raise SealingKeyError(
                f"{where} holds a sealed {kind} value that does not open with key {key_id!r} "
                f"from {self.source}: the key is wrong or the record was altered. Nothing ran",
                source=self.source,
                run_id=run_id,
            )
        try:
            return plain.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:  # pragma: no cover - only the SDK seals, and it seals text
            raise SealingKeyError(
                f"{where} holds a sealed {kind} value that is not text", run_id=run_id
            ) from None


def mask_sealed(text: str) -> str:
    """``text`` with each sealed marker in its mask form ``[REDACTED:<kind>:<digest>]``."""
    if SEALED_PREFIX not in text:
        return text
    return SEALED_MARKER_PATTERN.sub(r"[REDACTED:\g<kind>:\g<digest>]", text)


def _short(text: str) -> str:
    if SEALED_PREFIX not in text:
        return text
    return SEALED_MARKER_PATTERN.sub(r"[SEALED:\g<kind>:\g<digest>]", text)


def comparable(value: Any) -> Any:
    """``value`` with each sealed marker cut to ``[SEALED:<kind>:<digest>]``: the same secret
    compares equal whichever key sealed it (a replay after a key rotation is no change)."""
    return _walk(value, _short, 0)


def unseal_value(
    value: Any, sealer: Sealer | None, *, where: str, run_id: str | None = None
) -> Any:
    """``value`` with every sealed marker in its strings (and dict keys) opened.

    Copy-on-write: what holds no marker comes back as the very same object. Without a
    ``sealer`` any marker raises :class:`SealingKeyError`: code is never fed a marker
    in place of the value it recorded.
    """

    def open_text(text: str) -> str:
        if SEALED_PREFIX not in text:
            return text
        if sealer is None:
            if SEALED_MARKER_PATTERN.search(text) is None:
                return text
            raise SealingKeyError(
                f"{where} holds sealed values and no sealing key is configured; set "
                "CODON_SEALING_KEY or CODON_SEALING_KEY_FILE, or give the workload's Redactor "
                "sealing_keys=, with the key that sealed them. Nothing ran",
                source="none configured",
                run_id=run_id,
            )
        return SEALED_MARKER_PATTERN.sub(
            lambda m: sealer.open_match(m, where=where, run_id=run_id), text
        )

    return _walk(value, open_text, 0)


def _walk(v: Any, fn: Callable[[str], str], depth: int) -> Any:
    tv = type(v)
    if tv is str:
        return fn(v)
    if depth >= _MAX_DEPTH:
        return v
    if tv is dict:
        out: dict[Any, Any] | None = None
        for k, x in v.items():
            nk, nx = _walk(k, fn, depth + 1), _walk(x, fn, depth + 1)
            if out is None and (nk is not k or nx is not x):
                out = {}
                for k2, x2 in v.items():
                    if k2 is k:
                        break
                    out[k2] = x2
            if out is not None:
                out[nk] = nx
        return v if out is None else out
    if tv in (list, tuple, set, frozenset):
        items = [_walk(x, fn, depth + 1) for x in v]
        if all(a is b for a, b in zip(items, v, strict=False)):
            return v
        return items if tv is list else tv(items)
    return v
