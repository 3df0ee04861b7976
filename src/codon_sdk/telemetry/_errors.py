"""Exceptions on spans, through the redaction policy.

OpenTelemetry's ``span.record_exception(exc)`` writes the raw message and stack, and
``start_as_current_span`` does it by default: an exception whose message holds a
credential (a database URL, an API key echoed by a server) would leave the process
unmasked. Every Codon span records exceptions here instead: the OpenTelemetry
``exception`` event (``exception.type``, ``exception.message``,
``exception.stacktrace``) and the ERROR status description, each text redacted.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from codon_sdk._text import exception_message, valid_unicode

__all__ = ["record_error", "redacted_error"]

_MAX_STACK = 16384  # characters of the formatted stack kept (its end: the raising frame)


def redacted_error(exc: BaseException, redact: Callable[[str], str] | None) -> tuple[str, str, str]:
    """``(type name, message, stack)`` of ``exc``, message and stack through ``redact``."""
    kind = type(exc)
    name = (
        f"{kind.__module__}.{kind.__qualname__}"
        if kind.__module__ != "builtins"
        else kind.__qualname__
    )
    message = exception_message(exc)
    try:
        stack = "".join(traceback.format_exception(kind, exc, exc.__traceback__))
    except Exception:  # a broken __str__ or traceback: the type is still worth keeping
        stack = f"{name}: {message}\n"
    stack = valid_unicode(stack[-_MAX_STACK:])
    if redact is not None:
        message, stack = redact(message), redact(stack)
    return name, message, stack


def record_error(span: trace.Span, exc: BaseException, redact: Callable[[str], str] | None) -> None:
    """Record ``exc`` on ``span`` (an ``exception`` event and an ERROR status), redacted.

    Never raises: a span that cannot take the event keeps going without it.
    """
    if not span.is_recording():
        return
    try:
        name, message, stack = redacted_error(exc, redact)
        span.add_event(
            "exception",
            {
                "exception.type": name,
                "exception.message": message,
                "exception.stacktrace": stack,
            },
        )
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {message}"))
    except Exception:  # telemetry never fails a run
        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
