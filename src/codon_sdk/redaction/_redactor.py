"""The :class:`Redactor`: a frozen policy applying the detectors to text and JSON-like values."""

from __future__ import annotations

import hmac
import logging
import os
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Any, Final, Literal

from opentelemetry.util.types import AttributeValue

from codon_sdk.redaction._detectors import (
    BUILTIN,
    DEFAULT_CREDENTIAL_KEYS,
    DEFAULT_DETECTORS,
    KEY_DETECTOR,
    MARKER_PATTERN,
    Rule,
    Span,
    check_detectors,
    gate_table,
)
from codon_sdk.redaction._keys import KeyVerdicts, mask_whole, normalise_key_names

_log = logging.getLogger("codon_sdk.redaction")

KEY_ENV_VAR: Final = "CODON_REDACTION_KEY"

RedactionCallable = Callable[[str], Iterable[tuple[int, int, str]]]
"""``fn(text)`` -> ``(start, end, kind)`` for each secret ``text[start:end]`` it finds."""

KeySource = Literal["explicit", "environment", "process", "none"]

_DIGEST_HEX = 12
_MAX_PASSES = 4
_MAX_DEPTH = 200  # as deep as the canonical encoder goes
_KIND = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}\Z")
_CONTAINERS = (dict, list, tuple, set, frozenset)
_NO_TEXT = 1 << 62  # a min_len no string reaches
_CLEAN_LEN = 64  # texts up to this length found clean are remembered (keys, labels, ids)
_CLEAN_MAX = 8192  # at most this many: the set is emptied when full

# ------------------------------------------------------------------------------ keys

_key_lock = threading.Lock()
_process_key: bytes | None = None


def _per_process_key() -> bytes:
    global _process_key
    with _key_lock:
        if _process_key is None:
            _process_key = secrets.token_bytes(32)
            _log.info(
                "no redaction key configured (pass key= to Redactor or set %s): using a "
                "random key for this process, so redaction markers will not correlate "
                "across processes",
                KEY_ENV_VAR,
            )
        return _process_key


def _resolve_key(key: bytes | str | None) -> tuple[bytes, KeySource]:
    if key is not None:
        raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
        if not raw:
            raise ValueError(
                "the redaction key is empty; pass at least 32 random bytes, or key=None to "
                f"use {KEY_ENV_VAR}"
            )
        return raw, "explicit"
    env = os.environ.get(KEY_ENV_VAR)
    if env:
        return env.encode("utf-8", "surrogateescape"), "environment"
    return _per_process_key(), "process"


# -------------------------------------------------------------------------- redactor


@dataclass(frozen=True, slots=True, init=False, repr=False, eq=False)
class Redactor:
    """An immutable redaction policy: which detectors run, and the key behind the markers.

    ``detectors`` names the built-in detectors to run (default
    :data:`DEFAULT_DETECTORS`; :data:`ALL_DETECTORS` adds e-mail and card numbers).
    ``patterns`` maps a kind name to a regular expression (``str`` or compiled);
    ``callables`` are functions ``fn(text) -> [(start, end, kind), ...]``. Kind names
    are 1-64 letters, digits, ``_``, ``.`` or ``-``, starting with a letter.

    Raises ``ValueError`` for an unknown detector, an invalid kind name, a pattern that
    does not compile or matches the empty string, or an empty key. Instances are frozen
    (setting an attribute raises ``dataclasses.FrozenInstanceError``): build a new one.
    """

    detectors: tuple[str, ...]
    """The built-in detectors this policy runs, in priority order."""
    key_source: KeySource
    """Where the key came from: ``explicit``, ``environment``, ``process`` or ``none``."""
    credential_keys: tuple[str, ...]
    """The credential key names (normalised) whose values are masked whole; empty when the
    ``credential_key`` detector is off."""
    _verdicts: KeyVerdicts | None  # key -> names a credential, when credential_key is on
    _by_gate: tuple[tuple[str, tuple[int, ...]], ...]  # gate -> indices of its rules
    _callables: tuple[RedactionCallable, ...]
    _extra: bool  # user patterns or callables: scan every string
    _failed: set[int]  # callables whose failure was logged
    _clean: set[str]  # short texts known to hold no secret
    _gates: tuple[tuple[str, tuple[str, ...]], ...]  # the pre-check
    _key: bytes
    _min_len: int
    _patterns: tuple[tuple[str, re.Pattern[str], int | str], ...]
    _rules: tuple[tuple[str, Rule], ...]

    def __init__(
        self,
        *,
        detectors: Iterable[str] = DEFAULT_DETECTORS,
        patterns: Mapping[str, str | re.Pattern[str]] | None = None,
        callables: Iterable[RedactionCallable] = (),
        key: bytes | str | None = None,
        credential_keys: Iterable[str] = DEFAULT_CREDENTIAL_KEYS,
    ) -> None:
        kinds = check_detectors(detectors)
        rules = tuple((kind, rule) for kind in kinds for rule in BUILTIN[kind])
        names = normalise_key_names(credential_keys)
        verdicts = KeyVerdicts(names) if KEY_DETECTOR in kinds and names else None
        compiled = tuple(_compile_pattern(k, p) for k, p in (patterns or {}).items())
        fns = tuple(callables)
        for i, fn in enumerate(fns):
            if not callable(fn):
                raise TypeError(f"callables[{i}] is not callable: {fn!r}")
        self._setup(rules, compiled, fns, *_resolve_key(key), kinds, verdicts)

    @classmethod
    def disabled(cls) -> Redactor:
        """A policy that redacts nothing, for users who must switch redaction off."""
        self = cls.__new__(cls)
        self._setup((), (), (), b"", "none", (), None)
        return self

    def _setup(
        self,
        rules: tuple[tuple[str, Rule], ...],
        patterns: tuple[tuple[str, re.Pattern[str], int | str], ...],
        callables: tuple[RedactionCallable, ...],
        key: bytes,
        key_source: KeySource,
        kinds: tuple[str, ...],
        verdicts: KeyVerdicts | None,
    ) -> None:
        gates = gate_table(rule for _, rule in rules)
        fields: dict[str, object] = {
            "detectors": kinds,
            "credential_keys": () if verdicts is None else verdicts.names,
            "_verdicts": verdicts,
            "key_source": key_source,
            "_by_gate": tuple(
                (g, tuple(i for i, (_, r) in enumerate(rules) if g in r.gates)) for g, _ in gates
            ),
            "_callables": callables,
            "_extra": bool(patterns or callables),
            "_failed": set(),
            "_clean": set(),
            "_gates": gates,
            "_key": key,
            "_min_len": min((rule.min_len for _, rule in rules), default=_NO_TEXT),
            "_patterns": patterns,
            "_rules": rules,
        }
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        if not self.enabled:
            return "Redactor.disabled()"
        return (
            f"Redactor(detectors={self.detectors!r}, "
            f"patterns={tuple(p[0] for p in self._patterns)!r}, "
            f"callables={len(self._callables)}, key_source={self.key_source!r})"
        )

    @property
    def enabled(self) -> bool:
        """False only for :meth:`disabled`."""
        return self.key_source != "none"

    # ------------------------------------------------------------------ public API

    def marker_for(self, secret: str, kind: str) -> str:
        """The marker this policy writes for ``secret`` found as ``kind``.

        Use it to look a known secret up in a ledger or trace without storing it.
        """
        if not self.enabled:
            raise ValueError("a disabled Redactor has no key and writes no markers")
        if not isinstance(kind, str) or _KIND.match(kind) is None:
            raise ValueError(f"invalid redaction kind {kind!r}: use 1-64 letters, digits, _ . -")
        return self._marker(kind, secret)

    def redact_text(self, text: str) -> str:
        """``text`` with every secret replaced by its marker; ``text`` itself if none."""
        short = len(text) <= _CLEAN_LEN
        if short and text in self._clean:  # a key or a value seen before, holding no secret
            return text
        if len(text) >= self._min_len:
            for gate, needles in self._gates:
                if gate in text:
                    if not needles:
                        return self._redact_new(text, short, builtin=True)
                    for needle in needles:
                        if needle in text:
                            return self._redact_new(text, short, builtin=True)
        if self._extra:
            return self._redact_new(text, short, builtin=False)
        if short:
            self._remember_clean(text)
        return text

    def _redact_new(self, text: str, short: bool, *, builtin: bool) -> str:
        out = self._redact(text, builtin=builtin)
        if short and out is text:
            self._remember_clean(text)
        return out

    def _remember_clean(self, text: str) -> None:
        """Remember a short text that holds no secret (never one that does: the set must
        not keep secrets alive); not with user callables, which may not be pure."""
        if self._callables:
            return
        clean = self._clean
        if len(clean) >= _CLEAN_MAX:
            clean.clear()
        clean.add(text)

    def redact_value(self, value: Any) -> Any:
        """Redact every string (and dict key) in JSON-like ``value``: dict, list, tuple, set.

        Copy-on-write: the very same object comes back when nothing changed, and only the
        containers on the path to a change are copied (as their base type). ``bytes`` that
        decode as UTF-8 are redacted as text; other objects are returned untouched, so call
        this on values already converted to JSON types. Reference cycles and nesting deeper
        than 200 levels are left as they are (the canonical encoder rejects them). Should
        two keys redact to one string (one already was that marker, or a 48-bit digest
        collision), the later value wins.
        """
        return self._walk(value, 0, set()) if self.enabled else value

    def redact_mapping(
        self, attributes: Mapping[str, AttributeValue]
    ) -> Mapping[str, AttributeValue]:
        """Span attributes with their values redacted (names are SDK constants, kept as is).

        Returns ``attributes`` itself when nothing changed, else a new ``dict``.
        """
        return self._dict(attributes, 1, set(), keys=False) if self.enabled else attributes

    def is_credential_key(self, key: object) -> bool:
        """Whether the value under dict key ``key`` is masked whole (``credential_key``)."""
        return self._verdicts is not None and self._verdicts[key]

    def mask_whole(self, value: Any) -> Any:
        """``value`` masked whole, as under a credential key: every string and number in it
        becomes a ``credential_key`` marker (None, booleans and markers stay)."""
        if not self.enabled:
            return value
        return mask_whole(value, self._whole_marker, self.redact_text)

    def key_masker(self) -> tuple[Callable[[Any], bool], Callable[[Any], Any]] | None:
        """``(is_credential_key, mask_whole)`` for encoders that walk dicts themselves
        (the canonical encoder), or None when no key is a credential under this policy."""
        if self._verdicts is None:
            return None
        return self._verdicts.__getitem__, self.mask_whole

    def _whole_marker(self, secret: str) -> str:
        return self._marker(KEY_DETECTOR, secret)

    # ------------------------------------------------------------------ scanning

    def _redact(self, text: str, *, builtin: bool) -> str:
        """Redact until nothing more is found (a marker can expose a boundary)."""
        out = text
        for _ in range(_MAX_PASSES):
            hits = self._hits(out, builtin=builtin)
            if not hits:
                break
            new = self._apply(out, hits)
            if new is out:
                break
            out = new
            builtin = True
        return out

    def _hits(self, text: str, *, builtin: bool) -> list[tuple[int, int, int, str]]:
        """Every finding as ``(start, -end, priority, kind)``."""
        hits: list[tuple[int, int, int, str]] = []
        if builtin and len(text) >= self._min_len:
            armed: set[int] = set()
            for gate, indices in self._by_gate:
                if gate in text:
                    armed.update(indices)
            for prio in armed:
                kind, rule = self._rules[prio]
                if len(text) < rule.min_len:
                    continue
                for needle in rule.needles:  # plain loops: any(<genexpr>) costs more here
                    if needle in text:
                        break
                else:
                    if rule.needles:
                        continue
                for s, e in rule.find(text):
                    if s < e:
                        hits.append((s, -e, prio, kind))
        prio = len(self._rules)
        for kind, rx, group in self._patterns:
            for m in rx.finditer(text):
                s, e = m.span(group)
                if s < e:
                    hits.append((s, -e, prio, kind))
            prio += 1
        for i, fn in enumerate(self._callables):
            hits.extend((s, -e, prio + i, kind) for s, e, kind in self._call(i, fn, text))
        return hits

    def _call(self, index: int, fn: RedactionCallable, text: str) -> list[tuple[int, int, str]]:
        try:
            found = [(start, end, kind) for start, end, kind in fn(text)]
            for start, end, kind in found:
                ints = isinstance(start, int) and isinstance(end, int)
                if not (ints and 0 <= start < end <= len(text) and _KIND.match(kind)):
                    raise ValueError("malformed (start, end, kind)")
            return found
        except Exception as exc:  # hooks never break a run
            if index not in self._failed:
                self._failed.add(index)
                # Neither the text nor the message: either may hold the secret.
                _log.error(
                    "redaction callable %s failed (%s); its findings are skipped. "
                    "Logged once per callable; fix it to return (start, end, kind) "
                    "tuples within the text",
                    getattr(fn, "__qualname__", type(fn).__qualname__),
                    type(exc).__name__,
                )
            return []

    def _apply(self, text: str, hits: list[tuple[int, int, int, str]]) -> str:
        hits.sort()
        merged: list[tuple[int, int, str]] = []
        for s, neg_e, _, kind in hits:
            e = -neg_e
            if merged and s < merged[-1][1]:
                if e > merged[-1][1]:
                    merged[-1] = (merged[-1][0], e, merged[-1][2])
            else:
                merged.append((s, e, kind))
        protected = (
            [m.span() for m in MARKER_PATTERN.finditer(text)] if "[REDACTED:" in text else []
        )
        pieces: list[str] = []
        pos = 0
        for s, e, kind in merged:
            for ps, pe in _outside(s, e, protected):
                pieces.append(text[pos:ps])
                pieces.append(self._marker(kind, text[ps:pe]))
                pos = pe
        if not pieces:
            return text
        pieces.append(text[pos:])
        return "".join(pieces)

    def _marker(self, kind: str, secret: str) -> str:
        if kind == "card_number":
            digits = secret.replace(" ", "").replace("-", "")
            secret = digits if digits.isdigit() else secret
        elif kind == "email":
            secret = secret.lower()
        data = secret.encode("utf-8", "surrogatepass")
        digest = hmac.digest(self._key, data, "sha256").hex()[:_DIGEST_HEX]
        return f"[REDACTED:{kind}:{digest}]"

    # ------------------------------------------------------------------ values

    def _walk(self, v: Any, depth: int, active: set[int]) -> Any:
        tv = type(v)
        if tv is str:
            return self.redact_text(v)
        if v is None or tv is int or tv is float or tv is bool:
            return v
        if isinstance(v, str):
            new = self.redact_text(str(v))
            return v if new == v else new
        if isinstance(v, (bytes, bytearray)):  # scanned when UTF-8 text
            try:
                text = bytes(v).decode("utf-8")
            except UnicodeDecodeError:
                return v
            new = self.redact_text(text)
            return v if new is text else type(v)(new.encode("utf-8"))
        key = id(v)
        if depth >= _MAX_DEPTH or key in active or not isinstance(v, _CONTAINERS):
            return v  # a cycle or too deep: the canonical encoder rejects it anyway
        active.add(key)
        try:
            if isinstance(v, dict):
                return self._dict(v, depth + 1, active, keys=True)
            return self._collection(v, depth + 1, active)
        finally:
            active.discard(key)

    def _dict(self, d: Mapping[Any, Any], depth: int, active: set[int], *, keys: bool) -> Any:
        out: dict[Any, Any] | None = None
        verdicts = self._verdicts if keys else None
        for i, (k, x) in enumerate(d.items()):
            nk = self._walk(k, depth, active) if keys else k
            if verdicts is not None and verdicts[k]:
                nx = self.mask_whole(x)
            else:
                nx = self._walk(x, depth, active)
            if out is None:
                if nk is k and nx is x:
                    continue
                out = dict(islice(d.items(), i))
            out[nk] = nx
        return d if out is None else out

    def _collection(
        self,
        c: list[Any] | tuple[Any, ...] | set[Any] | frozenset[Any],
        depth: int,
        active: set[int],
    ) -> Any:
        out: list[Any] | None = None
        for i, x in enumerate(c):
            nx = self._walk(x, depth, active)
            if out is None:
                if nx is x:
                    continue
                out = list(islice(c, i))
            out.append(nx)
        if out is None:
            return c
        if isinstance(c, list):
            return out
        if isinstance(c, tuple):
            return tuple(out)
        return frozenset(out) if isinstance(c, frozenset) else set(out)


def _outside(s: int, e: int, protected: list[Span]) -> Iterator[Span]:
    """The parts of ``[s, e)`` outside the (sorted, disjoint) ``protected`` spans."""
    for ps, pe in protected:
        if pe <= s:
            continue
        if ps >= e:
            break
        if ps > s:
            yield s, ps
        s = pe
        if s >= e:
            return
    if s < e:
        yield s, e


def _compile_pattern(
    kind: str, pattern: str | re.Pattern[str]
) -> tuple[str, re.Pattern[str], int | str]:
    if not isinstance(kind, str) or _KIND.match(kind) is None:
        raise ValueError(
            f"invalid redaction kind {kind!r}: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter (it appears in markers as [REDACTED:<kind>:<hash>])"
        )
    if isinstance(pattern, str):
        try:
            rx = re.compile(pattern)
        except re.error as exc:
            raise ValueError(
                f"redaction pattern {kind!r} does not compile: {exc} (pattern {pattern!r}); "
                "fix the regular expression"
            ) from exc
    elif isinstance(pattern, re.Pattern) and isinstance(pattern.pattern, str):
        rx = pattern
    else:
        raise ValueError(f"redaction pattern {kind!r} must be a str or str re.Pattern: {pattern!r}")
    if rx.fullmatch("") is not None:
        raise ValueError(
            f"redaction pattern {kind!r} matches the empty string ({rx.pattern!r}); "
            "make it require at least one character"
        )
    return kind, rx, "secret" if "secret" in rx.groupindex else 0


# ---------------------------------------------------------------- default policy

_default_lock = threading.Lock()
_default: Redactor | None = None


def default_redactor() -> Redactor:
    """The process-wide policy: the last one set, else a ``Redactor()`` built on first use."""
    global _default
    current = _default
    if current is None:
        with _default_lock:
            if _default is None:
                _default = Redactor()
            current = _default
    return current


def set_default_redactor(redactor: Redactor | None) -> Redactor | None:
    """Install ``redactor`` as the process-wide policy and return the previous one.

    ``None`` resets to a fresh ``Redactor()`` built on next use (re-reading the
    environment), so ``set_default_redactor(previous)`` always restores.
    """
    global _default
    if redactor is not None and not isinstance(redactor, Redactor):
        raise TypeError(f"set_default_redactor expects a Redactor or None, not {redactor!r}")
    with _default_lock:
        previous, _default = _default, redactor
    return previous
