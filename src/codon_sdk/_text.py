"""Showing untrusted text safely: ledger strings on an operator's terminal or page.

Ledger strings (actors, node names, event types, reasons, messages) are data an
attacker with write access to the database, or a node copying untrusted input,
may have chosen. Printed raw, a newline forges an extra ledger line and an ANSI
escape sequence rewrites the screen. :func:`printable` shows every character that
is not printable (control characters, ANSI escapes, bidirectional overrides, line
separators, lone surrogates) as a visible escape, ``\\x1b``, ``\\n``, ``\\u202e``,
and leaves everything else, non-ASCII letters included, as it is.
"""

from __future__ import annotations

from typing import Final

__all__ = ["exception_message", "exception_text", "printable", "valid_unicode"]

_NAMED: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: object) -> str:
    """``text`` (made a string with ``str``) with every non-printable character escaped."""
    s = text if type(text) is str else str(text)
    if s.isprintable():
        return s
    return "".join(c if c.isprintable() else _escape(c) for c in s)


def _escape(c: str) -> str:
    named = _NAMED.get(c)
    if named is not None:
        return named
    n = ord(c)
    if n < 0x100:
        return f"\\x{n:02x}"
    if n < 0x10000:
        return f"\\u{n:04x}"
    return f"\\U{n:08x}"


def valid_unicode(text: str) -> str:
    """``text`` with any lone surrogate (not valid Unicode, so it cannot be recorded) written
    as a visible ``\\udXXX`` escape; valid text is returned as it is."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def exception_message(exc: BaseException) -> str:
    """``str(exc)`` for the ledger: never raises (an exception whose ``__str__`` fails is
    described as such) and is always valid Unicode."""
    try:
        message = str(exc)
    except Exception as failure:
        message = f"<the exception's __str__ raised {type(failure).__name__}>"
    return valid_unicode(message)


def exception_text(exc: BaseException) -> str:
    """``"<type name>: <message>"`` of an exception (see :func:`exception_message`)."""
    return f"{type(exc).__name__}: {exception_message(exc)}"
