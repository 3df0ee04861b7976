"""Per-node retry policy."""

from __future__ import annotations

from dataclasses import dataclass

from codon_sdk.errors import GovernanceError, LeaseLostError

__all__ = ["RetryPolicy"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How often and how soon a failing node is tried again.

    ``max_attempts`` counts the first try (3 = one try and two retries). The delay
    before retry *n* (1-based) is ``min(initial_delay * backoff ** (n - 1), max_delay)``.
    Only exceptions that are instances of ``retry_on`` are retried; node timeouts
    (``NodeTimeoutError``) are retried when ``retry_on`` covers them (the default,
    ``(Exception,)``, does). Every failed attempt is a ``node_retrying`` event in
    the ledger, with the error and the delay. A failed attempt leaves nothing
    behind: its emitted tokens are dropped and, in a sequential run
    (``max_concurrency=1``), its writes to ``runtime.state`` are rolled back.
    ``LeaseLostError`` is never retried: another process holds the run now; nor is a
    ``GovernanceError`` (a denial, a budget stop or a rate-limit wait past its bound).
    """

    max_attempts: int = 3
    initial_delay: float = 0.5
    backoff: float = 2.0
    max_delay: float = 30.0
    retry_on: tuple[type[BaseException], ...] = (Exception,)

    def __post_init__(self) -> None:
        if type(self.max_attempts) is not int or self.max_attempts < 1:
            raise ValueError(f"max_attempts must be a positive integer, got {self.max_attempts!r}")
        for label in ("initial_delay", "backoff", "max_delay"):
            value = getattr(self, label)
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{label} must be a non-negative number, got {value!r}")
        if not self.retry_on or not all(
            isinstance(t, type) and issubclass(t, BaseException) for t in self.retry_on
        ):
            raise ValueError(f"retry_on must be a tuple of exception types, got {self.retry_on!r}")

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        return float(min(self.initial_delay * self.backoff ** (retry - 1), self.max_delay))

    def retries(self, exc: BaseException, attempt: int) -> bool:
        """Whether attempt ``attempt`` (0-based) that raised ``exc`` is tried again."""
        if isinstance(exc, (LeaseLostError, GovernanceError)):
            return False
        return attempt + 1 < self.max_attempts and isinstance(exc, self.retry_on)
