"""The built-in detectors: rules that find one kind of secret each, and their pre-check.

The table of what each detector finds is in the package docstring (:mod:`codon_sdk.redaction`).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Final

ALL_DETECTORS: Final = ("private_key", "api_key", "bearer_token", "card_number", "email")
"""Every built-in detector, in priority order (the first wins when two find the same span)."""
DEFAULT_DETECTORS: Final = ("private_key", "api_key", "bearer_token")
"""The detectors a plain ``Redactor()`` runs: credentials, never personal data."""

Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Rule:
    """One way of finding one kind of secret.

    Every match lies in a text that contains one of ``gates`` (single characters,
    tested at memchr speed) and, when ``needles`` is not empty, one of ``needles``;
    no match is shorter than ``min_len``. That is what makes the pre-check sound.
    """

    gates: frozenset[str]
    needles: tuple[str, ...]
    min_len: int
    find: Callable[[str], Iterator[Span]]


def _rule(
    gates: str,
    needles: tuple[str, ...],
    min_len: int,
    find: str | Callable[[str], Iterator[Span]],
    check: Callable[[str], object] | None = None,
) -> Rule:
    """A rule; ``find`` is a finder or a pattern whose ``secret`` group (or match) is masked."""
    if not isinstance(find, str):
        return Rule(frozenset(gates), needles, min_len, find)
    rx = re.compile(find, re.ASCII)
    group: int | str = "secret" if "secret" in rx.groupindex else 0

    def find_matches(text: str) -> Iterator[Span]:
        for m in rx.finditer(text):
            if check is None or check(m.group(group)):
                yield m.span(group)

    return Rule(frozenset(gates), needles, min_len, find_matches)


_HAS_DIGIT = re.compile(r"[0-9]")
_CHAR_CLASSES = (re.compile(r"[a-z]"), re.compile(r"[A-Z]"), _HAS_DIGIT)


def _letters_and_digits(s: str) -> bool:
    return _HAS_DIGIT.search(s) is not None and re.search(r"[A-Za-z]", s) is not None


def _looks_random(s: str) -> bool:
    """16+ characters, two of lower/upper/digit, and at least 3 bits of entropy per character."""
    if len(s) < 16 or sum(1 for rx in _CHAR_CLASSES if rx.search(s) is not None) < 2:
        return False
    n, log2 = len(s), math.log2
    # Shannon entropy: log2(n) - sum(c * log2(c)) / n over the character counts c.
    return log2(n) - sum([c * log2(c) for c in map(s.count, set(s)) if c > 1]) / n >= 3.0


def _basic_credentials(s: str) -> bool:
    """``s`` is base64 of printable ASCII holding a ``:`` (``user:password``)."""
    try:
        raw = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in raw and all(0x20 <= b < 0x7F for b in raw)


_CRED_NAMES = (
    *("apikey", "apisecret", "apitoken", "secretkey", "secretaccesskey", "clientsecret"),
    *("accesstoken", "authtoken", "refreshtoken", "sessiontoken"),
)
# "=" only as trailing padding: runs between separators stay disjoint, so the scan is linear.
_ASSIGNED = re.compile(r"\s{0,4}(?:\\?[\"'])?(?P<secret>[\w\-+/.~]{16,}=*)", re.ASCII)


def _find_assignments(text: str) -> Iterator[Span]:
    """High-entropy values after ``<credential name>`` ``:`` or ``=`` (quotes allowed)."""
    for sep in ":=":
        i = text.find(sep)
        while i >= 0:
            m = _ASSIGNED.match(text, i + 1)
            if m is not None:
                name = text[max(0, i - 40) : i].rstrip(" \t").rstrip("\"'\\").lower()
                name = name.replace("_", "").replace("-", "")
                if name.endswith(_CRED_NAMES) and _looks_random(m["secret"]):
                    yield m.span("secret")
            i = text.find(sep, i + 1)


_TOKEN = r"[\w\-.~+/]"
_AUTH_REST = re.compile(
    r"(?:\\?[\"'])?\s{0,4}[:=]\s{0,4}(?:\\?[\"'])?(?:[Bb]earer|BEARER|[Bb]asic|BASIC|[Tt]oken|"
    r"TOKEN)\s+(?P<secret>" + _TOKEN + r"+=*)",
    re.ASCII,
)


def _find_auth_headers(text: str) -> Iterator[Span]:
    """The credentials of ``Authorization: <scheme> <credentials>`` (also in JSON and dicts)."""
    for name in ("uthorization", "UTHORIZATION"):
        i = text.find(name)
        while i >= 0:
            m = _AUTH_REST.match(text, i + len(name))
            if m is not None:
                yield m.span("secret")
            i = text.find(name, i + 1)


_EMAIL_DOMAIN = re.compile(r"@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}")
_EMAIL_LOCAL = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")


def _find_emails(text: str) -> Iterator[Span]:
    # Searching from the "@" (a literal) is far faster than from every possible start.
    for m in _EMAIL_DOMAIN.finditer(text):
        at = start = m.start()
        floor = max(0, at - 64)
        while start > floor and text[start - 1] in _EMAIL_LOCAL:
            start -= 1
        too_long = start == floor and start > 0 and text[start - 1] in _EMAIL_LOCAL
        if start < at and not too_long:
            yield start, m.end()


# 13+ characters of digits, spaces and dashes, from 3 digits in a row: hex ids fail in C.
_CARD_CANDIDATE = re.compile(r"[0-9]{3}[0-9 -]{9,}[0-9]")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = (ord(ch) - 48) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _find_cards(text: str) -> Iterator[Span]:
    """The longest valid card numbers among consecutive digit groups, left to right."""
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) - len(raw.translate(None, b"0123456789")) < 13:  # C-speed digit count
        return
    for m in _CARD_CANDIDATE.finditer(text):
        groups: list[tuple[int, str]] = []  # (offset in text, digits)
        pos = m.start()
        for g in re.split(r"[ -]", m.group()):
            groups.append((pos, g))
            pos += len(g) + 1
        i = 0
        while i < len(groups):
            found, digits = 0, ""
            for j in range(i, len(groups)):
                digits += groups[j][1]
                if len(groups[j][1]) < 3 or len(digits) > 19:
                    break
                if len(digits) >= 13 and digits[0] in "23456" and _luhn(digits):
                    found = j + 1
            if found:
                yield groups[i][0], groups[found - 1][0] + len(groups[found - 1][1])
            i = found or i + 1


# A pattern that starts with a literal is searched at substring speed; a leading
# lookbehind or alternation makes sre try every position, so boundaries are checked
# by a lookbehind placed after the literal.
_PEM_BODY = r"[A-Za-z0-9+/=\s\\:,.\-]"
_PEM_END = r"PRIVATE KEY(?: BLOCK)?-----"
_PEM = (
    rf"-----BEGIN[A-Z0-9 ]{{0,40}}{_PEM_END}"
    rf"(?:{_PEM_BODY}*?-----END[A-Z0-9 ]{{0,40}}{_PEM_END}|{_PEM_BODY}*)"
)
_STRIPE = r"(?<![\w-])[sr]k_(?:live|test)_[A-Za-z0-9]{16,}"
_GITHUB = r"g(?<![\w-]g)(?:h[pousr]_[A-Za-z0-9]{36,}|ithub_pat_\w{22,})"
_AWS = r"A(?<![A-Za-z0-9]A)(?:KIA|SIA)[A-Z0-9]{16}(?![A-Za-z0-9])"
_BEARER = rf"B(?<![\w-]B)(?:earer|EARER)\s+(?P<secret>{_TOKEN}{{16,}}=*)"
_BASIC = r"B(?<![\w-]B)(?:asic|ASIC)\s+(?P<secret>[A-Za-z0-9+/]{4,}={0,2})(?![\w\-+/=])"
_JWT = r"eyJ(?<![\w-]eyJ)[\w-]{8,}\.eyJ[\w-]{2,}\.[\w-]*"
_GITHUB_NEEDLES = ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_")
BUILTIN: Final[dict[str, tuple[Rule, ...]]] = {
    "private_key": (_rule("-", ("-----BEGIN",), 26, _PEM),),
    "api_key": (
        _rule("-", ("sk-",), 23, r"sk-(?<![\w-]sk-)[\w-]{20,}", _HAS_DIGIT.search),
        _rule("-", ("xox",), 15, r"xox(?<![\w-]xox)[abeprs]-[A-Za-z0-9-]{10,}"),
        _rule("_", ("k_live_", "k_test_"), 24, _STRIPE),
        _rule("_", _GITHUB_NEEDLES, 33, _GITHUB),
        _rule("A", ("AKIA", "ASIA"), 20, _AWS),
        _rule("A", ("AIza",), 39, r"AIza(?<![\w-]AIza)[\w-]{35,}"),
        _rule(":=", (), 23, _find_assignments),
    ),
    "bearer_token": (
        _rule(":=", ("uthorization", "UTHORIZATION"), 21, _find_auth_headers),
        _rule("B", ("Bearer", "BEARER"), 23, _BEARER, _letters_and_digits),
        _rule("B", ("Basic", "BASIC"), 10, _BASIC, _basic_credentials),
        _rule("J", ("eyJ",), 18, _JWT),
    ),
    "card_number": (_rule("23456", (), 13, _find_cards),),
    "email": (_rule("@", (), 6, _find_emails),),
}


def gate_table(rules: Iterable[Rule]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Merge the rules' gates: a gate with no needles (for some rule) suffices on its own."""
    table: dict[str, set[str] | None] = {}
    for rule in rules:
        for gate in rule.gates:
            if (known := table.setdefault(gate, set())) is not None:
                table[gate] = known | set(rule.needles) if rule.needles else None
    alone = tuple((g, ()) for g, n in table.items() if n is None)
    return alone + tuple((g, tuple(sorted(n))) for g, n in table.items() if n is not None)


def check_detectors(detectors: Iterable[str]) -> tuple[str, ...]:
    wanted = (detectors,) if isinstance(detectors, str) else tuple(detectors)  # one name
    for name in wanted:
        if name not in BUILTIN:
            raise ValueError(
                f"unknown redaction detector {name!r}; choose from {', '.join(ALL_DETECTORS)} "
                "(add your own with patterns= or callables=)"
            )
    return tuple(k for k in ALL_DETECTORS if k in wanted)
