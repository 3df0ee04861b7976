"""``printable``: ledger strings shown on a terminal can never forge lines or escape sequences."""

from __future__ import annotations

import pytest

from codon_sdk._text import printable


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("alice", "alice"),
        ("Zoë 中文", "Zoë 中文"),
        ("alice\n    99  forged", "alice\\n    99  forged"),
        ("\x1b[2J\x1b[31mred", "\\x1b[2J\\x1b[31mred"),
        ("tab\there\r", "tab\\there\\r"),
        ("\x7f\x85", "\\x7f\\x85"),
        ("abc\u202edcba", "abc\\u202edcba"),
        ("line\u2028sep", "line\\u2028sep"),
        ("lone \ud800", "lone \\ud800"),
        ("\U000e0041tag", "\\U000e0041tag"),
    ],
)
def test_non_printable_characters_are_shown_escaped(raw: str, shown: str) -> None:
    """Control characters, ANSI escapes, bidi overrides, separators and surrogates are escaped."""
    assert printable(raw) == shown


def test_printable_text_is_returned_as_is() -> None:
    """Text with nothing to escape is the very same object (no copy on the common path)."""
    text = "run 42 approved by alice"
    assert printable(text) is text


def test_non_strings_are_shown_through_str() -> None:
    """Whatever is given is shown as its ``str``, escaped."""
    assert printable(7) == "7"
    assert printable(None) == "None"
