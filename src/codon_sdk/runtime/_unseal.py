"""Giving code its recorded values back: sealed secrets opened, masked ones reported.

Resume, replay and fork feed nodes what the ledger recorded: queued token payloads,
the shared state, recorded effect results and errors, resume inputs, an interrupt's
declared default input, the context.
A sealed secret in any of them is opened with the policy's sealing keys before
anything runs; when it does not open (no key, a key the source does not hold, a
marker that does not authenticate) the run is refused with
:class:`~codon_sdk.errors.SealingKeyError`, never fed the marker.

A masked secret (``[REDACTED:...]``) was dropped for good: there is nothing to give
back. Those runs still continue (a resume must not depend on a secret the policy
chose to lose), but never silently: :func:`masked_summary` counts them by kind, the
resume records that in ``run_resumed`` metadata under ``masked`` (a fork in its
``fork`` record) and a warning is logged. Policies that need the values seal them.

The walk is paid only by runs that hold markers: the raw entry bytes are searched
for the marker prefixes first (C-speed substring search).
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from typing import Any

from codon_sdk.redaction import MARKER_PATTERN, SEALED_PREFIX, Redactor
from codon_sdk.runtime._rebuild import RebuiltRun

__all__ = ["has_markers", "masked_summary", "open_rebuilt"]

_log = logging.getLogger("codon_sdk.runtime")
_SEALED = SEALED_PREFIX.encode("ascii")
_MASKED = b"[REDACTED:"


def has_markers(entries: list[bytes]) -> tuple[bool, bool]:
    """(some entry holds a sealed marker, some entry holds a mask marker)."""
    sealed = masked = False
    for e in entries:
        sealed = sealed or _SEALED in e
        masked = masked or _MASKED in e
        if sealed and masked:
            break
    return sealed, masked


def open_rebuilt(
    rebuilt: RebuiltRun, entries: list[bytes], policy: Redactor, *, action: str
) -> dict[str, Any] | None:
    """Open every sealed value code will receive from ``rebuilt`` (in place); return the
    masked values it will receive as ``{"values": n, "kinds": [[kind, n], ...]}``, or None
    (pairs, not a mapping: a kind such as ``api_key`` used as a key would itself be
    judged a credential name and its count masked)."""
    sealed, masked = has_markers(entries)
    if not sealed and not masked:
        return None
    where = f"run {rebuilt.run_id} (to be {action})"

    def open_(value: Any) -> Any:
        return policy.unseal_value(value, where=where, run_id=rebuilt.run_id) if sealed else value

    rebuilt.queue = [(t, n, open_(p), o, pa, c) for t, n, p, o, pa, c in rebuilt.queue]
    rebuilt.state = open_(rebuilt.state)
    rebuilt.effects = {
        k: dataclasses.replace(e, value=open_(e.value), error=open_(e.error))
        for k, e in rebuilt.effects.items()
    }
    rebuilt.resume_inputs = {k: open_(v) for k, v in rebuilt.resume_inputs.items()}
    if rebuilt.interrupt is not None:  # its declared default is what a resume may hand over
        rebuilt.interrupt = open_(rebuilt.interrupt)
    if "context" in rebuilt.started:
        rebuilt.started = {**rebuilt.started, "context": open_(rebuilt.started["context"])}
    if not masked:
        return None
    kinds: Counter[str] = Counter()
    values: list[Any] = [p for _, _, p, *_ in rebuilt.queue]
    values += [rebuilt.state, list(rebuilt.resume_inputs.values())]
    values += [[e.value, e.error] for e in rebuilt.effects.values()]
    for value in values:
        _count(value, kinds, 0)
    return masked_summary(kinds, rebuilt.run_id, action)


def masked_summary(kinds: Counter[str], run_id: str, action: str) -> dict[str, Any] | None:
    """The record of masked values code receives, logged as a warning (None if none)."""
    if not kinds:
        return None
    total = sum(kinds.values())
    _log.warning(
        "run %s is %s with %d masked value(s) (%s) where code had real values: the policy "
        "masked them for good. Seal those kinds (Redactor(actions=...)) to resume with them",
        run_id,
        action,
        total,
        ", ".join(f"{k}: {n}" for k, n in sorted(kinds.items())),
    )
    return {"values": total, "kinds": [[k, n] for k, n in sorted(kinds.items())]}


def _count(v: Any, kinds: Counter[str], depth: int) -> None:
    if type(v) is str:
        if "[REDACTED:" in v:
            kinds.update(m["kind"] for m in MARKER_PATTERN.finditer(v))
        return
    if depth > 200:
        return
    if isinstance(v, dict):
        for k, x in v.items():
            _count(k, kinds, depth + 1)
            _count(x, kinds, depth + 1)
    elif isinstance(v, (list, tuple, set, frozenset)):
        for x in v:
            _count(x, kinds, depth + 1)
