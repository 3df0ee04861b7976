"""C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 keys.

A note is UTF-8 text ending in a newline, a blank line, then one or more
signature lines::

    <text, one or more lines, each ending in \\n>
    <blank line>
    — <key name> <base64(4-byte big-endian key id || signature)>

Keys travel as strings:

* verifier key: ``<name>+<8 hex digits key id>+<base64(0x01 || 32-byte public key)>``
* signer key: ``PRIVATE+KEY+<name>+<8 hex digits key id>+<base64(0x01 || 32-byte seed)>``

with key id = the first 4 bytes of ``SHA-256(name || 0x0A || 0x01 || public key)``.
A key name is non-empty, without Unicode spaces or ``+``.

Trust rules (the spec's): a signature counts when its (name, key id) pair matches
a verifier and it verifies. Signatures by unknown keys, including a known name
with another key id, are ignored and never trusted. A signature by a known key
that fails to verify is *reported*: :func:`check_note` lists it in
:attr:`NoteCheck.bad`, and :func:`open_note` rejects the whole note with a
:class:`~codon_sdk.errors.CheckpointError`. So a caller of :func:`open_note` tells
"unsigned by anyone I trust" (an empty list of names; the text must then be
ignored) from "signed with a broken signature" (an error).

Anything malformed (invalid UTF-8, control characters other than newline, no
final newline, empty text, no blank line or no signature line, a line not of the
signature form, bad base64, a signature shorter than 5 bytes, more than
:data:`MAX_SIGNATURES` lines) raises :class:`~codon_sdk.errors.CheckpointError`.
Base64 must be canonical standard base64 (padding included).

Signing goes through the small :class:`Signer` interface so that a key held in a
KMS or HSM can sign; :class:`Ed25519Signer` is the built-in one. Ed25519 needs the
``cryptography`` package (``pip install "codon-sdk[crypto]"``), imported on use;
parsing notes and keys does not.
"""

from __future__ import annotations

import abc
import base64
import binascii
import functools
import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from codon_sdk.errors import CheckpointError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

__all__ = [
    "ALG_ED25519",
    "MAX_SIGNATURES",
    "Ed25519Signer",
    "Note",
    "NoteCheck",
    "NoteSignature",
    "Signer",
    "Verifier",
    "check_note",
    "ed25519_key_id",
    "generate_key",
    "open_note",
    "sign_note",
]

ALG_ED25519: Final = 0x01
MAX_SIGNATURES: Final = 100
_DASH: Final = "\u2014 "
_SKEY_PREFIX: Final = "PRIVATE+KEY+"
_HEX8 = re.compile(r"[0-9a-fA-F]{8}")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
_CRYPTO_HINT: Final = (
    'Ed25519 signatures need the cryptography package: pip install "codon-sdk[crypto]"'
)


class Signer(abc.ABC):
    """Something that signs notes under a key name: an in-memory key, a KMS, an HSM.

    ``key_id`` is the 32-bit key id of the signature lines (for Ed25519, see
    :func:`ed25519_key_id`); ``sign`` returns the raw signature over the exact
    message bytes (for Ed25519, 64 bytes).
    """

    __slots__ = ()

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """The key name written in signature lines."""

    @property
    @abc.abstractmethod
    def key_id(self) -> int:
        """The 32-bit key id written before each signature."""

    @abc.abstractmethod
    def sign(self, message: bytes) -> bytes:
        """Sign ``message`` and return the raw signature bytes."""

    @property
    def vkey(self) -> str | None:
        """The verifier key of this signer, when known (a KMS signer should provide it):
        the ledger then checks its own checkpoints before resuming or replaying a run."""
        return None


class Ed25519Signer(Signer):
    """An Ed25519 signing key held in memory. ``repr`` never shows the seed."""

    __slots__ = ("_key", "_key_id", "_name", "_public", "_seed")

    def __init__(self, name: str, seed: bytes) -> None:
        _check_name(name)
        if not isinstance(seed, bytes) or len(seed) != 32:
            raise CheckpointError(
                f"an Ed25519 seed is 32 bytes, got {type(seed).__name__} of length "
                f"{len(seed) if isinstance(seed, bytes) else '?'}; use generate_key() to make one"
            )
        self._name = name
        self._seed = seed
        self._key = _private_key(seed)
        self._public = self._key.public_key().public_bytes_raw()
        self._key_id = ed25519_key_id(name, self._public)

    @classmethod
    def generate(cls, name: str) -> Ed25519Signer:
        """A new random key under ``name``."""
        return cls(name, os.urandom(32))

    @classmethod
    def from_skey(cls, skey: str) -> Ed25519Signer:
        """Load a signer key string ``PRIVATE+KEY+<name>+<hex id>+<base64(0x01 || seed)>``."""
        if not isinstance(skey, str) or not skey.startswith(_SKEY_PREFIX):
            raise CheckpointError(
                f"a signer key starts with {_SKEY_PREFIX!r}; got {_redact(skey)} "
                "(is this a verifier key?)"
            )
        name, key_id, key = _split_key(skey[len(_SKEY_PREFIX) :], "signer key", secret=True)
        signer = cls(name, key)
        if signer.key_id != key_id:
            raise CheckpointError(
                f"signer key for {name!r} says key id {key_id:08x}, but its key gives "
                f"{signer.key_id:08x}; the key string is corrupt"
            )
        return signer

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> int:
        return self._key_id

    @property
    def public_key(self) -> bytes:
        """The 32-byte Ed25519 public key."""
        return self._public

    @property
    def skey(self) -> str:
        """The signer key string (secret: store it like a password)."""
        return _SKEY_PREFIX + _key_string(self._name, self.key_id, self._seed)

    @property
    def vkey(self) -> str:
        """The verifier key string to give to whoever checks signatures."""
        return self.verifier().vkey

    def verifier(self) -> Verifier:
        """The matching :class:`Verifier`."""
        return Verifier(name=self._name, public_key=self._public)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def __repr__(self) -> str:
        return f"Ed25519Signer(name={self._name!r}, key_id={self.key_id:08x})"


@dataclass(frozen=True, slots=True, kw_only=True)
class Verifier:
    """An Ed25519 verifier key: a name and a public key; ``key_id`` is derived from both."""

    name: str
    public_key: bytes
    key_id: int = field(init=False)

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not isinstance(self.public_key, bytes) or len(self.public_key) != 32:
            raise CheckpointError(
                f"an Ed25519 public key is 32 bytes, got {self.public_key!r} for {self.name!r}"
            )
        object.__setattr__(self, "key_id", ed25519_key_id(self.name, self.public_key))

    @classmethod
    def from_vkey(cls, vkey: str) -> Verifier:
        """Parse ``<name>+<hex key id>+<base64(0x01 || public key)>``."""
        if not isinstance(vkey, str):
            raise CheckpointError(f"a verifier key is a string, got {type(vkey).__name__}")
        if vkey.startswith(_SKEY_PREFIX):
            raise CheckpointError(
                "this is a signer (private) key, not a verifier key: keep it secret and "
                "pass its vkey (Ed25519Signer.from_skey(skey).vkey) instead"
            )
        name, key_id, key = _split_key(vkey, "verifier key")
        verifier = cls(name=name, public_key=key)
        if verifier.key_id != key_id:
            raise CheckpointError(
                f"verifier key {vkey!r} says key id {key_id:08x}, but its name and public key "
                f"give {verifier.key_id:08x}; the key string is corrupt"
            )
        return verifier

    @property
    def vkey(self) -> str:
        """The verifier key string."""
        return _key_string(self.name, self.key_id, self.public_key)

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature over ``message``."""
        if len(signature) != 64:
            return False
        try:
            from cryptography.exceptions import InvalidSignature
        except ImportError as err:
            raise ImportError(_CRYPTO_HINT) from err
        try:
            _public_key(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True, slots=True, kw_only=True)
class NoteSignature:
    """One signature line: key name, 32-bit key id, raw signature bytes."""

    name: str
    key_id: int
    signature: bytes

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not isinstance(self.key_id, int) or not 0 <= self.key_id < 2**32:
            raise CheckpointError(f"key id of {self.name!r} must be a uint32, got {self.key_id!r}")
        if not isinstance(self.signature, bytes) or not self.signature:
            raise CheckpointError(
                f"signature of {self.name!r} must be non-empty bytes, got {self.signature!r}"
            )

    def format(self) -> str:
        """The signature line, newline included."""
        blob = self.key_id.to_bytes(4, "big") + self.signature
        return f"{_DASH}{self.name} {base64.b64encode(blob).decode('ascii')}\n"


@dataclass(frozen=True, slots=True, kw_only=True)
class Note:
    """A parsed signed note: its text (final newline included) and its signature lines."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.text, str) or not self.text.endswith("\n"):
            raise CheckpointError(
                f"note text must be a non-empty string ending in a newline, got {_clip(self.text)}"
            )
        _check_text(self.text)

    @classmethod
    def parse(cls, note: bytes | str) -> Note:
        """Parse a signed note; raises :class:`CheckpointError` when it is malformed."""
        s = _decode_note(note)
        cut = ("\n" + s).rfind("\n\n")  # the last blank line separates text and signatures
        if cut < 0:
            raise CheckpointError(
                f"note has no blank line before its signatures: {_clip(s)}; a signed note is "
                "text ending in a newline, a blank line, then '— <name> <signature>' lines"
            )
        text, block = s[:cut], s[cut + 1 :]
        if not text:
            raise CheckpointError(f"note text is empty: {_clip(s)}; sign a non-empty text")
        lines = block.split("\n")[:-1]
        if not lines:
            raise CheckpointError(f"note has no signature lines after its blank line: {_clip(s)}")
        if len(lines) > MAX_SIGNATURES:
            raise CheckpointError(
                f"note has {len(lines)} signature lines, more than the {MAX_SIGNATURES} accepted"
            )
        return cls(text=text, signatures=tuple(_parse_signature(line) for line in lines))

    def format(self) -> bytes:
        """The note as UTF-8 bytes: text, blank line, signature lines."""
        return (self.text + "\n" + "".join(s.format() for s in self.signatures)).encode("utf-8")


@dataclass(frozen=True, slots=True, kw_only=True)
class NoteCheck:
    """What :func:`check_note` found: names whose signature verified, failed, or was unknown.

    ``verified`` and ``bad`` name known keys (each once); ``unknown`` names the
    signature lines of keys not among the verifiers, which are ignored.
    """

    text: str
    verified: tuple[str, ...]
    bad: tuple[str, ...]
    unknown: tuple[str, ...]

    @property
    def trusted(self) -> bool:
        """At least one trusted key verified the note, and no trusted key's signature failed."""
        return bool(self.verified) and not self.bad


def ed25519_key_id(name: str, public_key: bytes) -> int:
    """Key id of an Ed25519 key: ``SHA-256(name || 0x0A || 0x01 || public key)[:4]`` as uint32."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key)
    return int.from_bytes(digest.digest()[:4], "big")


def generate_key(name: str) -> tuple[str, str]:
    """A new Ed25519 key under ``name``: ``(skey, vkey)``. Keep the skey secret."""
    signer = Ed25519Signer.generate(name)
    return signer.skey, signer.vkey


def sign_note(text: str, signers: Sequence[Signer]) -> bytes:
    """Sign ``text`` (non-empty, ending in a newline) with each signer; returns the note bytes."""
    if not isinstance(text, str) or not text.endswith("\n"):
        raise CheckpointError(f"note text must be a string ending in a newline, got {_clip(text)}")
    _check_text(text)
    if not signers:
        raise CheckpointError("a signed note needs at least one signer; pass a list of Signers")
    message = text.encode("utf-8")
    sigs: list[NoteSignature] = []
    for signer in signers:
        _check_name(signer.name)
        sig = signer.sign(message)
        sigs.append(NoteSignature(name=signer.name, key_id=signer.key_id, signature=sig))
    return Note(text=text, signatures=tuple(sigs)).format()


def check_note(note: bytes | str | Note, verifiers: Iterable[Verifier | str]) -> NoteCheck:
    """Check every signature of ``note`` against ``verifiers`` (objects or vkey strings).

    Raises :class:`CheckpointError` only when the note or a vkey is malformed;
    signature outcomes are in the returned :class:`NoteCheck`.
    """
    parsed = note if isinstance(note, Note) else Note.parse(note)
    known: dict[tuple[str, int], list[Verifier]] = {}
    for v in verifiers:
        verifier = v if isinstance(v, Verifier) else Verifier.from_vkey(v)
        known.setdefault((verifier.name, verifier.key_id), []).append(verifier)
    message = parsed.text.encode("utf-8")
    verified: dict[str, None] = {}
    bad: dict[str, None] = {}
    unknown: list[str] = []
    for sig in parsed.signatures:
        candidates = known.get((sig.name, sig.key_id))
        if candidates is None:
            unknown.append(sig.name)
        elif any(c.verify(message, sig.signature) for c in candidates):
            verified[sig.name] = None
        else:
            bad[sig.name] = None
    return NoteCheck(
        text=parsed.text, verified=tuple(verified), bad=tuple(bad), unknown=tuple(unknown)
    )


def open_note(note: bytes | str, verifiers: Iterable[Verifier | str]) -> tuple[str, list[str]]:
    """Verify ``note``: returns its text and the names of the trusted keys that signed it.

    An empty list means no trusted key signed it: ignore the text. A signature by
    a trusted key that fails to verify rejects the whole note (:class:`CheckpointError`).
    """
    check = check_note(note, verifiers)
    if check.bad:
        raise CheckpointError(
            f"note carries a signature by trusted key {', '.join(map(repr, check.bad))} "
            "that does not verify: "
            "the text was altered after signing or the signature was forged; reject this note"
        )
    return check.text, list(check.verified)


def _parse_signature(line: str) -> NoteSignature:
    if not line.startswith(_DASH):
        raise CheckpointError(
            f"signature line {line!r} does not start with an em dash (U+2014) and a space"
        )
    parts = line[len(_DASH) :].split(" ")
    if len(parts) != 2:
        raise CheckpointError(f"signature line {line!r} is not '— <key name> <base64 signature>'")
    name, b64 = parts
    _check_name(name)
    blob = _b64decode(b64, f"signature of {name!r}")
    if len(blob) < 5:
        raise CheckpointError(
            f"signature of {name!r} is {len(blob)} bytes; it needs a 4-byte key id and a signature"
        )
    return NoteSignature(name=name, key_id=int.from_bytes(blob[:4], "big"), signature=blob[4:])


def _decode_note(note: bytes | str) -> str:
    if isinstance(note, (bytes, bytearray, memoryview)):
        try:
            s = bytes(note).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CheckpointError(f"note is not valid UTF-8: {exc}") from exc
    elif isinstance(note, str):
        s = note
    else:
        raise CheckpointError(f"a note is bytes or str, got {type(note).__name__}")
    if not s:
        raise CheckpointError("note is empty; expected text, a blank line and signature lines")
    if not s.endswith("\n"):
        raise CheckpointError(f"note does not end in a newline: {_clip(s)}")
    _check_text(s)
    return s


def _check_text(s: str) -> None:
    if not s:
        raise CheckpointError("note text is empty; sign a non-empty text ending in a newline")
    bad = _CONTROL.search(s)
    if bad is not None:
        raise CheckpointError(
            f"note contains control character {bad.group()!r} at offset {bad.start()}; "
            "only newlines are allowed"
        )
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CheckpointError(f"note text is not encodable as UTF-8: {exc}") from exc


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not name:
        raise CheckpointError(f"a key name is a non-empty string, got {name!r}")
    if "+" in name or any(c.isspace() or c < " " for c in name):
        raise CheckpointError(
            f"key name {name!r} contains a space, control character or '+'; "
            "use a schema-less URL such as 'example.com/ledger'"
        )


def _split_key(key: str, what: str, *, secret: bool = False) -> tuple[str, int, bytes]:
    """Split ``name+hexid+base64`` (two splits only: base64 may contain '+')."""
    parts = key.split("+", 2)
    if len(parts) != 3:
        raise CheckpointError(f"{what} {_redact(key)} is not '<name>+<hex key id>+<base64 key>'")
    name, hex_id, b64 = parts
    _check_name(name)
    if not _HEX8.fullmatch(hex_id):
        raise CheckpointError(f"{what} key id {hex_id!r} is not 8 hex digits")
    blob = _b64decode(b64, f"{what} for {name!r}", secret=secret)
    if len(blob) != 33 or blob[0] != ALG_ED25519:
        raise CheckpointError(
            f"{what} for {name!r} is not an Ed25519 key (0x01 then 32 bytes): got "
            f"{len(blob)} bytes starting with {blob[:1].hex() or 'nothing'}"
        )
    return name, int(hex_id, 16), blob[1:]


def _key_string(name: str, key_id: int, key: bytes) -> str:
    blob = base64.b64encode(bytes([ALG_ED25519]) + key).decode("ascii")
    return f"{name}+{key_id:08x}+{blob}"


def _b64decode(text: str, what: str, *, secret: bool = False) -> bytes:
    shown = "(secret, not shown)" if secret else repr(text)
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise CheckpointError(f"{what} is not valid standard base64: {shown}") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise CheckpointError(f"{what} is not canonical standard base64: {shown}")
    return raw


def _private_key(seed: bytes) -> Ed25519PrivateKey:
    try:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    except ImportError as err:
        raise ImportError(_CRYPTO_HINT) from err
    return Ed25519PrivateKey.from_private_bytes(seed)


@functools.lru_cache(maxsize=256)
def _public_key(raw: bytes) -> Ed25519PublicKey:
    try:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError as err:
        raise ImportError(_CRYPTO_HINT) from err
    return Ed25519PublicKey.from_public_bytes(raw)


def _clip(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _redact(key: object) -> str:
    """A key string for an error message, without its key material."""
    if not isinstance(key, str):
        return f"of type {type(key).__name__}"
    return repr(key.split("+", 1)[0] + "+...") if "+" in key else "(no '+' separators)"
