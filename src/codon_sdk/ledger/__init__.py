"""The ledger: entry format, hash chain, checkpoints, and the table of event types.

:data:`EVENT_TYPES` declares every built-in event type once, with how resume, replay
comparison, the report and the chain rules treat it; :func:`event_type` gives the
declared type for a name, or :data:`CUSTOM_EVENT`, the rule for every other name.
"""

from codon_sdk.ledger._event_types import (
    BUILTIN_TYPES,
    CUSTOM_EVENT,
    EFFECT_RECORDED,
    EVENT_TYPES,
    NODE_COMPLETED,
    NODE_FAILED,
    NODE_RETRYING,
    NODE_STARTED,
    RUN_FINISHED,
    RUN_INTERRUPTED,
    RUN_RESUMED,
    RUN_STARTED,
    RUN_STATUSES,
    RUNTIME_STOPPED,
    STATE_UPDATED,
    TERMINAL_STATUSES,
    TOKEN_DEQUEUED,
    TOKEN_ENQUEUED,
    ChainRole,
    EventType,
    ReplayRole,
    ReportRole,
    ResumeRole,
    event_type,
    types_with,
)

__all__ = [
    "BUILTIN_TYPES",
    "CUSTOM_EVENT",
    "EFFECT_RECORDED",
    "EVENT_TYPES",
    "NODE_COMPLETED",
    "NODE_FAILED",
    "NODE_RETRYING",
    "NODE_STARTED",
    "RUNTIME_STOPPED",
    "RUN_FINISHED",
    "RUN_INTERRUPTED",
    "RUN_RESUMED",
    "RUN_STARTED",
    "RUN_STATUSES",
    "STATE_UPDATED",
    "TERMINAL_STATUSES",
    "TOKEN_DEQUEUED",
    "TOKEN_ENQUEUED",
    "ChainRole",
    "EventType",
    "ReplayRole",
    "ReportRole",
    "ResumeRole",
    "event_type",
    "types_with",
]
