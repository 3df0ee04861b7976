"""Watching a test for imports and process starts (``sys.addaudithook``), and forged payloads."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

EVIL = "tests.hostile.evil_payload"
_WATCHED = ("import", "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn")
_recording: list[tuple[str, str]] | None = None


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if _recording is not None and event in _WATCHED:
        _recording.append((event, str(args[0]) if args else ""))


sys.addaudithook(_hook)


@contextmanager
def watched() -> Iterator[list[tuple[str, str]]]:
    """Record the imports and process starts that happen inside the block."""
    global _recording
    events: list[tuple[str, str]] = []
    _recording = events
    try:
        yield events
    finally:
        _recording = None


_NAMED_MODULES = (EVIL, "subprocess", "pty", "ctypes", "webbrowser")


def forbidden(events: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The events a hostile read must never cause: starting a process, or importing a module
    a payload named (the "import" audit event fires for modules not imported yet)."""
    return [
        (event, what)
        for event, what in events
        if event != "import" or what.startswith(_NAMED_MODULES)
    ]


def forged_payloads() -> list[dict[str, Any]]:
    """Tagged objects that would run code if a decoder trusted the names in them."""
    return [
        {"$codon": "enum", "type": "subprocess:Popen", "v": ["sh", "-c", "touch /tmp/pwned"]},
        {"$codon": "enum", "type": "os:system", "v": "touch /tmp/pwned"},
        {"$codon": "dataclass", "type": "subprocess:Popen", "v": {"args": ["true"]}},
        {"$codon": "pydantic", "type": "subprocess:Popen", "v": {"args": ["true"]}},
        {"$codon": "enum", "type": f"{EVIL}:Boom", "v": "zzz"},
        {"$codon": "dataclass", "type": f"{EVIL}:Blast", "v": {"x": 1}},
        {"$codon": "pydantic", "type": f"{EVIL}:Blast", "v": {"x": 1}},
        {"$codon": "enum", "type": "builtins:eval", "v": "__import__('os').system('true')"},
        {"$codon": "unknown-tag", "v": 1},
    ]
