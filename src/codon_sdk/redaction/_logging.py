"""Codon's loggers pass the redaction policy: a log line never carries a raw secret.

Codon's own messages do not quote recorded values, but some name a URL, a driver's
error or an exception raised while describing an LLM response (with its traceback).
Every Codon logger gets :class:`RedactingFilter`, which formats the record once and
hands the handlers the redacted message, exception text and stack.
"""

from __future__ import annotations

import logging
import traceback

from codon_sdk.redaction._redactor import default_redactor

__all__ = ["RedactingFilter", "get_logger"]


class RedactingFilter(logging.Filter):
    """Redacts a record's message, exception and stack through the default policy."""

    def filter(self, record: logging.LogRecord) -> bool:
        policy = default_redactor()
        if not policy.enabled:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format: logging reports it, without the arguments
            message = str(record.msg)
        record.msg, record.args = policy.redact_text(message), ()
        if record.exc_info and not record.exc_text:
            kind, value, tb = record.exc_info
            text = "".join(traceback.format_exception(kind, value, tb)).rstrip("\n")
            record.exc_text = policy.redact_text(text)
        if record.stack_info:
            record.stack_info = policy.redact_text(record.stack_info)
        return True


_FILTER = RedactingFilter()


def get_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` with the redacting filter (added once)."""
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger
