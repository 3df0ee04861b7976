"""Warnings said once per process: a script that builds five nodes without an org
namespace, or pauses a hundred runs without a store, hears about it once."""

from __future__ import annotations

import logging
import threading
from typing import Any

__all__ = ["forget_warnings", "warn_once"]

_said: set[str] = set()
_lock = threading.Lock()


def warn_once(logger: logging.Logger, key: str, message: str, *args: Any) -> bool:
    """Log ``message % args`` at WARNING the first time ``key`` is seen in this process;
    return whether it was logged."""
    with _lock:
        if key in _said:
            return False
        _said.add(key)
    logger.warning(message, *args)
    return True


def forget_warnings() -> None:
    """Let every warning be said again (for tests that check one is said)."""
    with _lock:
        _said.clear()
