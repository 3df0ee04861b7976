"""Keyword checks that catch typos before a run starts.

``execute`` takes extra keywords as context values (the documented API), so a misspelt
option (``max_concurency=3``, ``timout=5``, ``stor=...``) would silently become context.
A keyword that is a near miss of an option is refused, naming the option meant; a context
value that really has such a name goes in the explicit ``context=`` mapping. ``resume``
and ``fork`` take only their options, and say which one was meant.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["EXECUTE_OPTIONS", "check_extras", "check_options"]

EXECUTE_OPTIONS = frozenset(
    {
        "deployment_id",
        "entry_nodes",
        "max_steps",
        "run_id",
        "max_concurrency",
        "max_event_bytes",
        "store",
        "durability",
        "timeout",
        "lease_ttl",
        "audit_sink",
        "context",
        "executor",
        "token_queue",
        "subject",
    }
)


def _meant(key: str, options: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(key, sorted(o for o in options if not o.startswith("_")),
                                      n=1, cutoff=0.8)  # fmt: skip
    return close[0] if close else None


def check_extras(extras: Mapping[str, Any], call: str = "execute") -> None:
    """Refuse context keywords that look like misspelt options of ``call``."""
    for key in extras:
        if key.startswith("_"):
            continue
        meant = _meant(key, EXECUTE_OPTIONS)
        if meant is not None:
            raise TypeError(
                f"{call}() got {key}=..., which looks like a misspelling of the option "
                f"{meant!r}; a context value that really is named {key!r} goes in "
                f"context={{{key!r}: ...}}"
            )


def check_options(given: Iterable[str], allowed: Iterable[str], call: str) -> None:
    """Refuse keywords ``call`` does not take, naming the option each one probably meant."""
    known = set(allowed)
    unknown = sorted(set(given) - known)
    if not unknown:
        return
    hints = []
    for key in unknown:
        meant = _meant(key, known)
        hints.append(f"{key!r} (did you mean {meant!r}?)" if meant else repr(key))
    options = ", ".join(sorted(o for o in known if not o.startswith("_")))
    raise TypeError(f"{call}() got unexpected options {', '.join(hints)}; it takes {options}")
