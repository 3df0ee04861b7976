"""Whole runs on a Ray cluster: ``workload.submit(...)`` and what ``codon worker`` does.

A submitted run's start is recorded in its store by the caller (``run_started`` and the
seed tokens: ``runtime/_handover.py``); its driver (its scheduler and recorder) is then a
Ray task, with ``num_cpus=0`` by default so it never holds a CPU its activations need,
which takes the run over from the caller; its ledger is in the store named by URL
(PostgreSQL for a cluster: every worker must reach it). The run holds a lease in the
store, renewed by its driver's heartbeat; when the driver never starts, or the process
driving it dies, the lease goes stale, and ``codon worker`` (:func:`work`) resumes it
from the ledger, on the cluster, within about one lease period.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from codon_sdk._text import exception_text
from codon_sdk.errors import (
    LeaseLostError,
    RunNotFoundError,
    WorkerLostError,
    WorkloadRuntimeError,
)
from codon_sdk.runtime import (
    ExecutionReport,
    Recovered,
    SubmittedRun,
    display_status,
    load_report,
)
from codon_sdk.stores import lease_seconds, open_store

if TYPE_CHECKING:  # pragma: no cover
    from codon_sdk.executors._ray import RayExecutor
    from codon_sdk.runtime import CodonWorkload

__all__ = ["Submission", "work"]

_FOLLOW_S = 0.2  # how often result() looks at a run another worker took over


class Submission:
    """A run submitted to the cluster: :attr:`run_id`, :meth:`status`, :meth:`result`."""

    def __init__(
        self, submitted: SubmittedRun, ref: Any, lost: tuple[type[BaseException], ...]
    ) -> None:
        self.run_id = submitted.run_id
        self.store = submitted.store
        self._submitted = submitted
        self._ref = ref
        self._lost = lost

    def __repr__(self) -> str:
        return f"Submission(run_id={self.run_id!r})"

    def status(self) -> str:
        """The run's status as its store records it: ``submitted`` until its driver has
        taken it over, ``running``, ``stale`` (nobody drives it: a worker will resume it),
        ``completed``..."""
        ledger = open_store(self.store)
        try:
            info = ledger.get_run(self.run_id)
        except RunNotFoundError:  # pragma: no cover - submit records the start first
            return "submitted"
        finally:
            ledger.close()
        if info.status == "running" and info.owner == self._submitted.owner:
            # still the submitter's: waiting for its driver, until the lease it left expires
            age_us = time.time_ns() // 1000 - (info.heartbeat_us or info.started_us)
            return "submitted" if age_us <= lease_seconds(info) * 1_000_000 else "stale"
        return display_status(info)

    def result(self, timeout: float | None = None) -> ExecutionReport:
        """Wait for the run to end (at most ``timeout`` seconds); its report.

        A run that failed has a report too (status ``failed``). If the process driving it
        died, :class:`~codon_sdk.errors.WorkerLostError` says so: ``codon worker`` resumes
        it, and :meth:`status` and ``load_report`` follow it from the store. If the driver
        was suspended past its lease and another worker took the run over, it is fenced:
        :class:`~codon_sdk.errors.LeaseLostError`, and it appended nothing after that. If
        a worker took the run over before its driver started, this follows the run in the
        store until it ends (or ``timeout`` passes: ``TimeoutError``).
        """
        import ray

        started = time.monotonic()
        try:
            outcome = ray.get(self._ref, timeout=timeout)
        except self._lost as exc:
            raise WorkerLostError(
                f"the process driving run {self.run_id} died ({type(exc).__name__}); its "
                "ledger is intact: `codon worker` resumes it once its lease expires"
            ) from exc
        except LeaseLostError as exc:  # Ray's wrapper of the driver's error: say it plainly
            raise LeaseLostError(
                f"the process driving run {self.run_id} lost its lease (it was suspended or "
                "stalled past it) and another worker took the run over; it appended nothing "
                "more. load_report(store, run_id) shows the run as its new owner left it"
            ) from exc
        if outcome == "taken":
            left = None if timeout is None else max(timeout - (time.monotonic() - started), 0)
            self._follow(left)
        return load_report(self.store, self.run_id)

    def _follow(self, timeout: float | None) -> None:
        """Wait until another process has driven the run to a resting status."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.status() in ("running", "stale", "submitted"):
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(
                    f"run {self.run_id} was taken over by another worker and is still running "
                    f"after {timeout:g}s; call result() again, or follow it with "
                    "load_report(store, run_id)"
                )
            time.sleep(_FOLLOW_S)


def work(
    workload: CodonWorkload,
    store: str,
    executor: RayExecutor,
    *,
    interval: float = 5.0,
    once: bool = False,
    report: Callable[[Recovered], None] | None = None,
) -> list[Recovered]:
    """Resume, on the cluster, every run of ``workload`` whose driver never started or died, every
    ``interval`` seconds (once, with ``once``); several workers may run at once (each
    stale run is claimed by one of them)."""
    done: list[Recovered] = []
    while True:
        try:
            batch = workload.recover(store=store, executor=executor)
        except WorkloadRuntimeError as exc:  # pragma: no cover - reported, the loop goes on
            batch = [Recovered(run_id="?", status="error", error=exception_text(exc))]
        for item in batch:
            if report is not None:
                report(item)
        done.extend(batch)
        if once:
            return done
        time.sleep(interval)
