"""The table of ledger event types: each built-in type declared once, with how it is treated.

Four consumers read a run's events and must each know what every type means to them:

* **resume** (:func:`codon_sdk.runtime._rebuild.rebuild`, also under replay and fork)
  folds the events into the run's live state: its queue, shared state, counters,
  recorded effects and status;
* **replay comparison** (:mod:`codon_sdk.runtime._compare`) reduces a run to what it
  decided, so a replay can be compared with its recording;
* **the report** (:class:`codon_sdk.runtime._report.ExecutionReport`, ``codon runs show``)
  renders the audit view, per-node results, LLM usage and waiting time;
* **the chain rules** (:mod:`codon_sdk.ledger._chain`, verification) say where in a run
  an event may stand.

Each consumer dispatches on the role a type declares for it (one enum per consumer),
never on the type's name, so a new built-in type is one :class:`EventType` row here,
and a consumer that does not handle one of its roles fails the tests
(``tests/ledger/test_event_types.py``). A name that is not declared (a custom event
from ``runtime.record_event``, or an integration's own type such as
``langgraph.invocation``) is treated by the explicit rule :data:`CUSTOM_EVENT`: replay
compares it as a decision of the activation that recorded it; resume, the report and
the chain rules take it as it is.

Run statuses live here too: :data:`RUN_STATUSES`, and :data:`TERMINAL_STATUSES`, the
ones ``run_finished`` records (a run in one of them is never executed again).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

__all__ = [
    "BUDGET_EXCEEDED",
    "BUILTIN_TYPES",
    "CACHE_HIT",
    "CUSTOM_EVENT",
    "EFFECT_RECORDED",
    "EVENT_TYPES",
    "NODE_COMPLETED",
    "NODE_FAILED",
    "NODE_RETRYING",
    "NODE_STARTED",
    "POLICY_DECIDED",
    "RATE_LIMIT_WAITED",
    "RUN_FINISHED",
    "RUN_INTERRUPTED",
    "RUN_RESUMED",
    "RUN_STARTED",
    "RUN_STATUSES",
    "RUNTIME_STOPPED",
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

# ---------------------------------------------------------------------------- run statuses

TERMINAL_STATUSES: Final = frozenset({"completed", "stopped", "failed"})
"""The statuses ``run_finished`` records: the run has ended and is not executed again."""

RUN_STATUSES: Final = ("running", "completed", "stopped", "failed", "interrupted")
"""Every status a run can have: running, one of :data:`TERMINAL_STATUSES`, or paused."""


# ---------------------------------------------------------------------------- roles


class ResumeRole(enum.Enum):
    """How rebuilding a run's live state (resume, replay, fork) treats an event."""

    START = "start"
    """The run's first event: its metadata is what the run started with."""
    TOKEN = "token"
    """A token joins the queue: a seed at once, an emitted one when its activation completes;
    a join's token (``join`` metadata) at once, and the tokens it lists leave the queue."""
    STEP = "step"
    """An activation starts: counted once toward ``max_steps``."""
    STATE = "state"
    """A change of the shared state: counts when its activation completes (at once without one)."""
    COMMIT = "commit"
    """An activation completed: its emitted tokens and state changes become real."""
    ATTEMPT = "attempt"
    """A failed attempt: the next attempt's number."""
    EFFECT = "effect"
    """A recorded effect: its value is served again, whether or not its activation completed."""
    PAUSE = "pause"
    """The run paused (status ``interrupted``) on the recorded interrupt."""
    RESUME = "resume"
    """The run continues (status ``running``); the input given to the paused activation."""
    FINISH = "finish"
    """The run ended: its status and reason."""
    IGNORE = "ignore"
    """Nothing to rebuild from it."""


class ReplayRole(enum.Enum):
    """How replay comparison treats an event: what it says about the run's decisions."""

    ATTEMPT = "attempt"
    """An attempt of an activation starts (clean: an earlier, cut-off attempt is dropped)."""
    EMIT = "emit"
    """A token emitted by the running activation: target and payload compared."""
    STATE = "state"
    """A change of the shared state by the running activation: compared."""
    RETRY = "retry"
    """A failed attempt: its exception compared, its emissions dropped."""
    COMMIT = "commit"
    """The activation completed: its result compared, the activation closed."""
    DECISION = "decision"
    """A decision of the running activation (custom events): type and metadata compared."""
    FINISH = "finish"
    """How the run ended: its status is compared."""
    PAUSE = "pause"
    """The run paused: status ``interrupted``, at the node that paused."""
    FAILURE = "failure"
    """A node failed for good: named as the failing node of the outcome."""
    SKIP = "skip"
    """Process, not decision (served effects, resumes, timing): not compared."""


class ReportRole(enum.Enum):
    """How the report (audit view, results, usage, timings) treats an event."""

    EMIT = "emit"
    """A token sent: the payload is shown, and the emitter remembered as the token's source."""
    TAKE = "take"
    """A token taken: shown from its source to the receiving node; an activation starts."""
    RESULT = "result"
    """An activation's result: shown, and listed under the node's results."""
    USAGE = "usage"
    """May carry LLM usage and cost (``llm`` metadata), totalled per run, node and model."""
    WAIT = "wait"
    """The end of a wait: the time since the event before it counts as waiting."""
    PLAIN = "plain"
    """Shown as recorded."""


class ChainRole(enum.Enum):
    """Where in a run's hash chain an event may stand."""

    OPEN = "open"
    """The first event (seq 0), and only there."""
    CLOSE = "close"
    """The last event: nothing may follow, and it counts the events before it."""
    PAUSE = "pause"
    """Anywhere after the first; verification lists it as a pause of the run."""
    LINK = "link"
    """Anywhere after the first."""


# ---------------------------------------------------------------------------- the table


@dataclass(frozen=True, slots=True, kw_only=True)
class EventType:
    """One ledger event type and how each consumer treats it."""

    name: str
    resume: ResumeRole
    replay: ReplayRole
    report: ReportRole
    chain: ChainRole
    #: False for a name that is reserved but never written to the ledger
    written: bool = True


RUN_STARTED: Final = "run_started"
TOKEN_ENQUEUED: Final = "token_enqueued"
TOKEN_DEQUEUED: Final = "token_dequeued"
NODE_STARTED: Final = "node_started"
NODE_COMPLETED: Final = "node_completed"
NODE_FAILED: Final = "node_failed"
NODE_RETRYING: Final = "node_retrying"
EFFECT_RECORDED: Final = "effect_recorded"
STATE_UPDATED: Final = "state_updated"
RUN_INTERRUPTED: Final = "run_interrupted"
RUN_RESUMED: Final = "run_resumed"
RUNTIME_STOPPED: Final = "runtime_stopped"
RUN_FINISHED: Final = "run_finished"
CACHE_HIT: Final = "cache_hit"
POLICY_DECIDED: Final = "policy_decided"
BUDGET_EXCEEDED: Final = "budget_exceeded"
RATE_LIMIT_WAITED: Final = "rate_limit_waited"

_R, _P, _A, _C = ResumeRole, ReplayRole, ReportRole, ChainRole

EVENT_TYPES: Final[tuple[EventType, ...]] = (
    EventType(name=RUN_STARTED, resume=_R.START, replay=_P.SKIP, report=_A.PLAIN, chain=_C.OPEN),
    EventType(name=TOKEN_ENQUEUED, resume=_R.TOKEN, replay=_P.EMIT, report=_A.EMIT, chain=_C.LINK),
    EventType(
        name=TOKEN_DEQUEUED, resume=_R.STEP, replay=_P.ATTEMPT, report=_A.TAKE, chain=_C.LINK
    ),
    EventType(
        name=NODE_STARTED,
        resume=_R.IGNORE,
        replay=_P.SKIP,
        report=_A.PLAIN,
        chain=_C.LINK,
        written=False,
    ),
    EventType(
        name=EFFECT_RECORDED, resume=_R.EFFECT, replay=_P.SKIP, report=_A.USAGE, chain=_C.LINK
    ),
    EventType(name=STATE_UPDATED, resume=_R.STATE, replay=_P.STATE, report=_A.PLAIN, chain=_C.LINK),
    EventType(
        name=NODE_COMPLETED, resume=_R.COMMIT, replay=_P.COMMIT, report=_A.RESULT, chain=_C.LINK
    ),
    # an activation served from the cache: names its source (run, seq, leaf hash); the
    # emitted tokens and node_completed that follow are what resume and the report read
    EventType(name=CACHE_HIT, resume=_R.IGNORE, replay=_P.SKIP, report=_A.PLAIN, chain=_C.LINK),
    # governance (codon_sdk.governance): a policy's decision other than a plain allow, a
    # budget that stopped the run, a wait for room under a rate limit; records, not decisions
    # a replay compares (the acts they allowed or refused are compared as they happen)
    EventType(
        name=POLICY_DECIDED, resume=_R.IGNORE, replay=_P.SKIP, report=_A.PLAIN, chain=_C.LINK
    ),
    EventType(
        name=BUDGET_EXCEEDED, resume=_R.IGNORE, replay=_P.SKIP, report=_A.PLAIN, chain=_C.LINK
    ),
    EventType(
        name=RATE_LIMIT_WAITED, resume=_R.IGNORE, replay=_P.SKIP, report=_A.PLAIN, chain=_C.LINK
    ),
    EventType(
        name=NODE_RETRYING, resume=_R.ATTEMPT, replay=_P.RETRY, report=_A.PLAIN, chain=_C.LINK
    ),
    EventType(
        name=NODE_FAILED, resume=_R.IGNORE, replay=_P.FAILURE, report=_A.PLAIN, chain=_C.LINK
    ),
    EventType(
        name=RUN_INTERRUPTED, resume=_R.PAUSE, replay=_P.PAUSE, report=_A.PLAIN, chain=_C.PAUSE
    ),
    EventType(name=RUN_RESUMED, resume=_R.RESUME, replay=_P.SKIP, report=_A.WAIT, chain=_C.LINK),
    EventType(
        name=RUNTIME_STOPPED, resume=_R.IGNORE, replay=_P.SKIP, report=_A.PLAIN, chain=_C.LINK
    ),
    EventType(
        name=RUN_FINISHED, resume=_R.FINISH, replay=_P.FINISH, report=_A.PLAIN, chain=_C.CLOSE
    ),
)
"""Every built-in ledger event type, in the order a run typically writes them."""

CUSTOM_EVENT: Final = EventType(
    name="*custom*", resume=_R.IGNORE, replay=_P.DECISION, report=_A.PLAIN, chain=_C.LINK
)
"""The rule for every name not in :data:`EVENT_TYPES` (custom and integration events):
a decision of the activation that recorded it, for replay; taken as it is otherwise."""

_BY_NAME: Final[Mapping[str, EventType]] = {t.name: t for t in EVENT_TYPES}

BUILTIN_TYPES: Final = frozenset(_BY_NAME)
"""The names of the built-in types; custom events may not use them."""


def event_type(name: str) -> EventType:
    """The declared type called ``name``, or :data:`CUSTOM_EVENT` for any other name."""
    return _BY_NAME.get(name, CUSTOM_EVENT)


def types_with(role: ResumeRole | ReplayRole | ReportRole | ChainRole) -> frozenset[str]:
    """The names of the built-in types that declare ``role`` for its consumer."""
    field = {
        ResumeRole: "resume",
        ReplayRole: "replay",
        ReportRole: "report",
        ChainRole: "chain",
    }[type(role)]
    return frozenset(t.name for t in EVENT_TYPES if getattr(t, field) is role)
