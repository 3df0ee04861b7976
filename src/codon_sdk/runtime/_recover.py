"""Recovery after a restart: resume every run whose owner died.

A run is *stale* when the ledger says it is still ``running`` but its lease expired (the
owner's process is gone, or its heartbeat is older than the lease it declared): a crash.
Listings show such runs as ``stale`` (the stored status stays what the ledger says).
:func:`recover` resumes each stale run of a workload once; several processes may recover
at the same time: each run is claimed by exactly one of them (the others see it held and
skip it).
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from codon_sdk._text import exception_message
from codon_sdk.errors import (
    CodonError,
    LogicChangedError,
    RunConflictError,
    WorkloadRuntimeError,
)
from codon_sdk.ledger import RUN_RESUMED
from codon_sdk.stores import LedgerStore, RunInfo, lease_is_stale

if TYPE_CHECKING:  # pragma: no cover
    from codon_sdk.runtime._workload import CodonWorkload

__all__ = ["Recovered", "display_status", "is_stale", "recover_runs"]


def is_stale(info: RunInfo, now_us: int | None = None) -> bool:
    """True when the run is recorded as running but nobody holds a live lease on it."""
    now = time.time_ns() // 1000 if now_us is None else now_us
    return info.status == "running" and lease_is_stale(info, now_us=now)


def display_status(info: RunInfo, now_us: int | None = None) -> str:
    """The status a listing shows: the stored one, or ``stale`` for a crashed run."""
    return "stale" if is_stale(info, now_us) else info.status


@dataclass(frozen=True, slots=True, kw_only=True)
class Recovered:
    """What recovering one stale run did: its new status, or why it was left alone."""

    run_id: str
    status: str
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "status": self.status, "error": self.error}


def recover_runs(workload: CodonWorkload, store: LedgerStore, **options: Any) -> list[Recovered]:
    """Resume every stale run of ``workload``'s name in ``store``, oldest first, each once."""
    now = time.time_ns() // 1000
    stale = [r for r in store.runs(workload_name=workload.name) if is_stale(r, now)]
    # who recovered is recorded as the resume's actor: a run another process recovered
    # first (finished by the time we read it) is told apart from one this call ran
    actor = f"codon recover ({socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]})"
    done: list[Recovered] = []
    for info in sorted(stale, key=lambda r: (r.started_us, r.run_id)):
        try:
            report = workload.resume(info.run_id, store=store, actor=actor, **options)
        except RunConflictError:
            done.append(Recovered(run_id=info.run_id, status="skipped", error="held elsewhere"))
        except LogicChangedError as exc:
            done.append(
                Recovered(run_id=info.run_id, status="refused", error=exception_message(exc))
            )
        except WorkloadRuntimeError as exc:  # the run went on and failed: recorded as such
            partial = getattr(exc, "report", None)
            status = partial.status if partial is not None else "failed"
            done.append(Recovered(run_id=info.run_id, status=status, error=exception_message(exc)))
        except CodonError as exc:
            done.append(
                Recovered(run_id=info.run_id, status="refused", error=exception_message(exc))
            )
        else:
            ours = any(e.event_type == RUN_RESUMED and e.actor == actor for e in report.ledger)
            if ours:
                done.append(Recovered(run_id=info.run_id, status=report.status))
            else:
                done.append(
                    Recovered(run_id=info.run_id, status="skipped", error="recovered elsewhere")
                )
    return done
