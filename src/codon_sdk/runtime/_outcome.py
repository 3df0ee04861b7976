"""How a run ends: driving it to completion, a pause or a failure, and the report of each.

:func:`run_to_end` is the body of ``Run.execute``: it drives the run and turns
what stopped it into the run's last ledger events and its report. A node that
raised reaches it as :class:`NodeFailed`, a pause as ``Interrupt``; a failure
is recorded (``run_finished(failed)``) before ``WorkloadRuntimeError`` (or the
subclass the cause calls for) is raised with the report of the ledger so far.
A lost lease (``LeaseLostError``) is raised as it is: another process holds the
run now, so nothing more is recorded here and there is no failure to report.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from codon_sdk.errors import (
    BudgetExceededError,
    LeaseLostError,
    RunTimeoutError,
    SealingKeyError,
    StepLimitExceededError,
    StoreError,
    WorkloadRuntimeError,
)
from codon_sdk.runtime._handle import Interrupt
from codon_sdk.runtime._report import ExecutionReport

if TYPE_CHECKING:  # pragma: no cover
    from codon_sdk.runtime._engine import Run

__all__ = ["NodeFailed", "run_to_end"]


class NodeFailed(Exception):
    """Internal: a node raised; carries what the caller needs to build the error."""

    wraps_node_error = True  # spans report ``error``, what the node raised (see _NodeSpan)

    def __init__(self, node: str, token_id: str, error: BaseException, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.token_id = token_id
        self.error = error


async def run_to_end(run: Run) -> ExecutionReport:
    """Drive ``run`` and record how it ended; the report, or raise the failure."""
    reason = None
    try:
        await run.drive()
    except Interrupt as intr:
        return _paused(run, intr)
    except NodeFailed as failure:
        if isinstance(failure.error, BudgetExceededError) and run.stop_request is not None:
            reason = run.stop_request[1]  # a budget stopped the run before its next act
            return _ended(run, "stopped", reason)
        kind = type(failure.error)
        error_type = kind if issubclass(kind, WorkloadRuntimeError) else WorkloadRuntimeError
        raise _failed(run, str(failure), error_type) from failure.error
    except (StepLimitExceededError, RunTimeoutError) as exc:
        reason = (
            f"max_steps={run.max_steps} exceeded"
            if isinstance(exc, StepLimitExceededError)
            else f"timeout of {run.timeout}s exceeded"
        )
        raise _failed(run, reason, type(exc), str(exc)) from None
    except LeaseLostError:
        raise
    except SealingKeyError as exc:
        raise _key_failed(run, exc) from None
    except StoreError as exc:
        raise WorkloadRuntimeError(
            f"the ledger store failed during run {run.run_id}; the run cannot go on "
            f"without its audit trail: {exc}",
            report=run.report("failed", str(exc)),
        ) from exc
    except BaseException as exc:
        with contextlib.suppress(Exception):
            run.pause(None, f"cancelled: {type(exc).__name__}", "cancelled")
        raise
    return _ended(run, "stopped" if run.stop_request is not None else "completed", reason)


def _ended(run: Run, status: str, reason: str | None) -> ExecutionReport:
    try:
        run.finish(status, reason)
    except LeaseLostError:
        raise
    except StoreError as exc:
        raise WorkloadRuntimeError(
            f"the ledger store failed while ending run {run.run_id}; its last events "
            f"may not be durable: {exc}",
            report=run.report("failed", str(exc)),
        ) from exc
    report = run.report(status, reason)
    run.observe("workflow_finished", {"report": report, "status": status})
    return report


def _key_failed(run: Run, exc: SealingKeyError) -> SealingKeyError:
    """The run stops where its sealing key source failed: recorded as paused (nothing of
    the activation that could not be sealed was written), resumable once the source works."""
    reason = f"stopped: {exc}"
    with contextlib.suppress(Exception):
        run.pause(None, reason, "sealing_key")
    return SealingKeyError(
        f"run {run.run_id} stopped: {exc}",
        source=exc.source,
        run_id=run.run_id,
        report=run.report("interrupted", reason),
    )


def _failed(
    run: Run, reason: str, error_type: type[WorkloadRuntimeError], message: str | None = None
) -> WorkloadRuntimeError:
    try:
        run.finish("failed", reason)
    except StoreError as exc:
        reason = f"{reason}; and the ledger store failed while recording it: {exc}"
    return error_type(message or reason, report=run.report("failed", reason))


def _paused(run: Run, intr: Interrupt) -> ExecutionReport:
    run.pause(intr, intr.reason, "interrupt")
    from codon_sdk.runtime._blobs import resolved_with
    from codon_sdk.runtime._rebuild import rebuild

    report = run.report("interrupted", intr.reason)
    # the interrupted activation runs again on resume: report the state as recorded
    report.state = rebuild(resolved_with(run.rec.entries(), report.blobs)).state
    run.observe(
        "run_interrupted",
        {
            "node": intr.node,
            "token_id": intr.token_id,
            "reason": intr.reason,
            "payload": intr.payload,
        },
    )
    run.observe("workflow_finished", {"report": report, "status": "interrupted"})
    return report
