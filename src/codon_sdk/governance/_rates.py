"""Rate limits per model and provider: calls wait for room instead of failing on a 429.

A :class:`RateLimit` caps requests and/or tokens per window (a minute by default) for the
LLM calls it matches (``model=`` and/or ``provider=``; neither: every call). Its window
is shared by every run of the process that uses an equal limit (same match, caps and
window), whichever workload runs them. A call that finds no room waits until the oldest
call in the window leaves it; a wait longer than ``max_wait`` seconds raises
``RateLimitWaitError`` before anything is sent. A call counts by its token estimate (the
text's tokens plus the output limit it asks for), corrected to the provider's reported
usage once it returns. One call larger than the whole token cap goes alone, into an empty
window, rather than never.

With a PostgreSQL store, a limit on the system clock is shared across processes too:
its window lives in the store (``TakeRateSlot``), counted by estimate.

``clock=`` takes any object with ``monotonic()`` and ``sleep(seconds)`` (default: the
``time`` module), so a test or a simulation can run the window on its own time.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from codon_sdk.errors import ConfigurationError, RateLimitWaitError

__all__ = ["Clock", "RateLimit", "Slot", "limiter_for", "wait_error"]


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


_SYSTEM: Final[Any] = time


def _cap(label: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or type(value) is not int or value < 1:
        raise ConfigurationError(
            f"RateLimit {label} must be a positive whole number, got {value!r}"
        )
    return value


def _seconds(label: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"RateLimit {label} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value < 0 or (label == "window" and value == 0):
        kind = "positive" if label == "window" else "non-negative"
        raise ConfigurationError(
            f"RateLimit {label} must be a finite, {kind} number of seconds, got {value!r}"
        )
    return float(value)


@dataclass(frozen=True, slots=True, init=False)
class RateLimit:
    """At most ``requests_per_minute`` calls and ``tokens_per_minute`` tokens per ``window``
    seconds (60 by default, whatever the names say) for the calls of ``model``/``provider``."""

    model: str | None
    provider: str | None
    requests_per_minute: int | None
    tokens_per_minute: int | None
    max_wait: float
    window: float
    clock: Any = field(compare=False, hash=False)

    def __init__(
        self,
        *,
        model: str | None = None,
        provider: str | None = None,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        max_wait: float = 60.0,
        window: float = 60.0,
        clock: Clock | None = None,
    ) -> None:
        for label, value in (("model", model), ("provider", provider)):
            if value is not None and (not isinstance(value, str) or not value):
                raise ConfigurationError(f"RateLimit {label} must be a non-empty string or None")
        rpm = _cap("requests_per_minute", requests_per_minute)
        tpm = _cap("tokens_per_minute", tokens_per_minute)
        if rpm is None and tpm is None:
            raise ConfigurationError(
                "a RateLimit needs requests_per_minute and/or tokens_per_minute"
            )
        clock = _SYSTEM if clock is None else clock
        if not callable(getattr(clock, "monotonic", None)) or not callable(
            getattr(clock, "sleep", None)
        ):
            raise ConfigurationError("RateLimit clock must have monotonic() and sleep(seconds)")
        set_ = object.__setattr__
        set_(self, "model", model)
        set_(self, "provider", provider)
        set_(self, "requests_per_minute", rpm)
        set_(self, "tokens_per_minute", tpm)
        set_(self, "max_wait", _seconds("max_wait", max_wait))
        set_(self, "window", _seconds("window", window))
        set_(self, "clock", clock)

    @property
    def system_clock(self) -> bool:
        """Whether the limit runs on the system's time (then a PostgreSQL store shares its
        window across processes)."""
        return self.clock is _SYSTEM

    def matches(self, provider: str | None, model: str | None) -> bool:
        return (self.model is None or self.model == model) and (
            self.provider is None or self.provider == provider
        )

    @property
    def label(self) -> str:
        parts = [
            f"{k}={v!r}"
            for k, v in (("model", self.model), ("provider", self.provider))
            if v is not None
        ]
        caps = [
            f"{v} {k}"
            for k, v in (("requests", self.requests_per_minute), ("tokens", self.tokens_per_minute))
            if v is not None
        ]
        matched = ", ".join(parts) or "all calls"
        return f"rate limit ({matched}: {' and '.join(caps)} per {self.window:g}s)"


class Slot:
    """One call's place in a window; :meth:`settle` corrects its tokens once usage is known."""

    __slots__ = ("_limiter", "tokens", "when")

    def __init__(self, limiter: _Limiter, when: float, tokens: int) -> None:
        self._limiter = limiter
        self.when = when
        self.tokens = tokens

    def settle(self, tokens: int) -> None:
        with self._limiter.lock:
            self._limiter.used += tokens - self.tokens
            self.tokens = tokens


class _Limiter:
    """The sliding window of one limit: the calls made in the last ``window`` seconds."""

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self.lock = threading.Lock()
        self.calls: deque[Slot] = deque()
        self.used = 0

    def _room(self, now: float, tokens: int) -> float:
        """0 when a call of ``tokens`` fits now, else the seconds until the oldest call leaves."""
        limit = self.limit
        calls = self.calls
        while calls and calls[0].when <= now - limit.window:
            self.used -= calls.popleft().tokens
        if not calls:
            return 0.0
        rpm, tpm = limit.requests_per_minute, limit.tokens_per_minute
        if (rpm is None or len(calls) < rpm) and (tpm is None or self.used + tokens <= tpm):
            return 0.0
        return max(calls[0].when + limit.window - now, 1e-6)

    def try_acquire(self, tokens: int, start: float) -> tuple[Slot | None, float]:
        """A slot for a call of ``tokens`` if one fits now, else (None, seconds to wait).

        ``start`` is when the call began waiting (on the limit's clock): a wait that would
        run past ``max_wait`` from it raises ``RateLimitWaitError``. The one step both
        drivers share: :meth:`acquire` sleeps between steps, an async caller awaits.
        """
        with self.lock:
            now = self.limit.clock.monotonic()
            wait = self._room(now, tokens)
            if wait == 0.0:
                slot = Slot(self, now, tokens)
                self.calls.append(slot)
                self.used += tokens
                return slot, now - start
        if now - start + wait > self.limit.max_wait:
            raise wait_error(self.limit, tokens, now - start + wait)
        return None, wait

    def acquire(self, tokens: int) -> tuple[Slot, float]:
        """A slot for a call of ``tokens``, waiting for room; (slot, seconds waited)."""
        clock = self.limit.clock
        start = clock.monotonic()
        while True:
            slot, waited = self.try_acquire(tokens, start)
            if slot is not None:
                return slot, waited
            clock.sleep(waited)


def wait_error(limit: RateLimit, tokens: int, would: float) -> RateLimitWaitError:
    """The error of a call that would wait ``would`` seconds, past the limit's ``max_wait``."""
    return RateLimitWaitError(
        f"an LLM call of about {tokens} tokens would wait {would:.3f}s for room under the "
        f"{limit.label}, longer than its max_wait={limit.max_wait:g}s; nothing was sent. "
        "Raise max_wait or the limit, or make fewer calls",
        rule=limit.label,
    )


_lock = threading.Lock()
_limiters: dict[RateLimit, _Limiter] = {}


def limiter_for(limit: RateLimit) -> _Limiter:
    """The process's window for ``limit`` (equal limits share one)."""
    with _lock:
        found = _limiters.get(limit)
        if found is None or found.limit.clock is not limit.clock:
            found = _limiters[limit] = _Limiter(limit)
        return found
