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

ALL_DETECTORS: Final = (
    "private_key",
    "api_key",
    "bearer_token",
    "password",
    "credential_key",
    "card_number",
    "email",
)
"""Every built-in detector, in priority order (the first wins when two find the same span)."""
DEFAULT_DETECTORS: Final = ("private_key", "api_key", "bearer_token", "password", "credential_key")
"""The detectors a plain ``Redactor()`` runs: credentials, never personal data."""
KEY_DETECTOR: Final = "credential_key"
"""The detector that masks whole every value under a credential-named key (no text rule)."""
DEFAULT_CREDENTIAL_KEYS: Final = frozenset(
    {
        *("apikey", "apisecret", "apitoken", "accesskey", "secretkey", "privatekey"),
        *("password", "passwd", "pwd", "passphrase", "secret", "token", "credential"),
        *("credentials", "authorization", "auth", "cookie", "setcookie", "accountkey"),
        *("sharedaccesskey", "connectionstring", "dsn", "sessionid"),
    }
)
"""Credential key names, compared with case and ``_ - . `` (space) removed: a key matches
when it equals one or ends with one (``X-API-Key``, ``db_password``, ``client_secret``)."""

MARKER_PATTERN: Final = re.compile(
    r"\[REDACTED:(?P<kind>[A-Za-z][A-Za-z0-9_.-]{0,63}):(?P<digest>[0-9a-f]{12})\]"
)
"""Matches a redaction marker; ``kind`` and ``digest`` name its parts."""

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
    *("accesstoken", "authtoken", "refreshtoken", "sessiontoken", "accountkey"),
    *("sharedaccesskey", "secret", "privatekey", "credential"),
)
# "=" only as trailing padding: runs between separators stay disjoint, so the scan is linear.
_ASSIGNED = re.compile(r"\s{0,4}(?:\\?[\"'])?(?P<secret>[\w\-+/.~]{16,}=*)", re.ASCII)


_CRED_STEMS = ("key", "secret", "token", "credential")  # every credential name holds one
# the same stems as literal needles (lower, capitalised or upper case; "ecret" for both)
_CRED_NEEDLES = (
    *("key", "Key", "KEY", "ecret", "ECRET", "oken", "OKEN", "redential", "REDENTIAL"),
)


def _find_assignments(text: str) -> Iterator[Span]:
    """High-entropy values after ``<credential name>`` ``:`` or ``=`` (quotes allowed)."""
    low = text.lower()  # the needles are case-sensitive: this catches mixed case too
    for stem in _CRED_STEMS:
        if stem in low:
            break
    else:
        return
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


_PASSWORD_NAMES = ("password", "passwd", "pwd", "passphrase")
_PASSWORD_NEEDLES = ("ass", "ASS", "wd", "WD", "Wd")  # every case of the names above
_NOT_A_PASSWORD = frozenset({"", "null", "none", "true", "false", "nil", "undefined"})
_QUOTED = {  # (opening quote, escaped context): the value up to its closing quote
    ('"', False): re.compile(r'(?:[^"\\]|\\.){1,512}'),
    ("'", False): re.compile(r"(?:[^'\\]|\\.){1,512}"),
    ('"', True): re.compile(r'(?:[^"\\]|\\[^"]){1,512}'),
    ("'", True): re.compile(r"(?:[^'\\]|\\[^']){1,512}"),
}
_BARE_VALUE = re.compile(r"[^\s,;&\"'<>(){}\[\]\\]{1,512}")


def _password_value(text: str, j: int) -> Span | None:
    """The value starting at ``text[j]`` (after the separator): quoted or bare."""
    n = len(text)
    while j < n and text[j] in " \t":
        j += 1
    escaped = j < n and text[j] == "\\"
    j += escaped
    if j < n and text[j] in "\"'":
        m = _QUOTED[text[j], escaped].match(text, j + 1)
    else:
        m = _BARE_VALUE.match(text, j)
    if m is None:
        return None
    value = m.group()
    if value.lower() in _NOT_A_PASSWORD or not value.strip("*") or value.startswith("[REDACTED:"):
        return None
    return m.span()


def _find_passwords(text: str) -> Iterator[Span]:
    """The value of ``password=``/``passwd:``/``pwd =``/``"password": "..."`` (any case,
    any prefix such as ``db_`` or ``PG``), also as a URL query parameter."""
    for sep in ":=":
        i = text.find(sep)
        while i >= 0:
            name = text[max(0, i - 40) : i].rstrip(" \t").rstrip("\"'\\").lower()
            if name.replace("_", "").replace("-", "").endswith(_PASSWORD_NAMES):
                span = _password_value(text, i + 1)
                if span is not None:
                    yield span
            i = text.find(sep, i + 1)


# scheme://user:password@host: the password, up to the last "@" before the host part.
_USERINFO = re.compile(r"://(?P<user>[^\s/:@?#]{0,256}):(?P<secret>[^\s/?#]{1,512})@", re.ASCII)


def _find_url_passwords(text: str) -> Iterator[Span]:
    if "@" not in text:
        return
    for m in _USERINFO.finditer(text):
        if m["secret"].strip("*") and not m["secret"].startswith("[REDACTED:"):  # masked
            yield m.span("secret")


_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
_AWS_ID = re.compile(r"A(?<![A-Za-z0-9]A)(?:KIA|SIA)[A-Z0-9]{16}(?![A-Za-z0-9])")
_AWS_NEAR = 300  # characters around an access key id searched for its secret


def _find_aws_secrets(text: str) -> Iterator[Span]:
    """40-character AWS secret access keys within 300 characters of an access key id."""
    for ident in _AWS_ID.finditer(text):
        lo, hi = max(0, ident.start() - _AWS_NEAR), ident.end() + _AWS_NEAR
        for m in _AWS_SECRET.finditer(text, lo, hi):
            if _looks_random(m.group()):
                yield m.span()


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
        _rule(":=", _CRED_NEEDLES, 23, _find_assignments),
        _rule("A", ("AKIA", "ASIA"), 60, _find_aws_secrets),
        _rule("Q", ("Q~",), 37, r"(?<![\w~.-])[\w.-]{3}[0-9]Q~[\w~.-]{31,34}(?![\w~.-])"),  # Azure
        _rule("=", ("sig=",), 24, r"[?&;]sig=(?P<secret>[A-Za-z0-9%+/=]{20,})"),  # Azure SAS
        _rule(".", ("ya29.",), 25, r"y(?<![\w-]y)a29\.[\w-]{20,}"),  # Google OAuth
        _rule("-", ("GOCSPX-",), 35, r"G(?<![\w-]G)OCSPX-[\w-]{20,}"),  # Google client secret
    ),
    "bearer_token": (
        _rule(":=", ("uthorization", "UTHORIZATION"), 21, _find_auth_headers),
        _rule("B", ("Bearer", "BEARER"), 23, _BEARER, _letters_and_digits),
        _rule("B", ("Basic", "BASIC"), 10, _BASIC, _basic_credentials),
        _rule("J", ("eyJ",), 18, _JWT),
    ),
    "password": (
        _rule(":=", _PASSWORD_NEEDLES, 5, _find_passwords),
        _rule("@", ("://",), 8, _find_url_passwords),
    ),
    "credential_key": (),  # values under credential-named keys: the Redactor's key check
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
