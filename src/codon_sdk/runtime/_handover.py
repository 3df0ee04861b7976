"""A run started where it is submitted and handed to a driver elsewhere.

``workload.submit(...)`` first records the run's start in its store, in the caller
(:func:`start_submitted`: ``run_started`` and the seed tokens, under an owner id of the
caller's that nobody renews), and only then sends the run to its driver. The driver
takes the run over from exactly that owner (:meth:`SubmittedRun.take_over`), at once.
If the driver never starts, or dies before it takes over, the run is already in the
store as running: once the submitter's lease has gone unrenewed for its period (at
once, when the submitting process is gone from this host), it is stale, and
``codon worker`` (``workload.recover``) resumes it. Each claim is a compare-and-set on
the run's owner, so whichever of the two comes first runs it, and the other is refused
(``RunConflictError``): the run executes exactly once.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from codon_sdk.errors import StoreError
from codon_sdk.runtime._dispatch import Executor, InProcessExecutor
from codon_sdk.runtime._drive import run_coroutine
from codon_sdk.runtime._launch import RunOptions, resume_run
from codon_sdk.runtime._report import ExecutionReport
from codon_sdk.stores import open_store

if TYPE_CHECKING:  # pragma: no cover
    from codon_sdk.runtime._engine import Run
    from codon_sdk.runtime._workload import CodonWorkload

__all__ = ["SubmittedRun", "start_submitted"]

#: what the driver's resume takes of the options given to ``submit`` (the rest is recorded)
_DRIVER_OPTIONS = ("max_steps", "max_concurrency", "durability", "timeout", "lease_ttl")


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmittedRun:
    """A run whose start is in ``store``, left held by ``owner`` for its driver to take over."""

    run_id: str
    store: str
    #: the submitter's owner id: the driver claims the run from it
    owner: str
    #: the driver's run options (``max_steps``, ``max_concurrency``, ``durability``...)
    options: dict[str, Any] = field(default_factory=dict)

    def take_over(
        self, workload: CodonWorkload, *, executor: Executor | None
    ) -> Run | ExecutionReport:
        """Claim the run from its submitter, ready to drive here (its report, if it has ended).

        Raises :class:`~codon_sdk.errors.RunConflictError` when another process (a
        ``codon worker``, once the submitter's lease expired) took the run over first.
        """
        return resume_run(
            workload,
            self.run_id,
            store=self.store,
            input=None,
            actor=f"codon submit ({socket.gethostname()}:{os.getpid()})",
            allow_logic_change=False,
            options=RunOptions(executor=executor, **self.options),
            take_over=self.owner,
        )

    def drive(self, workload: CodonWorkload, *, executor: Executor | None) -> ExecutionReport:
        """Take the run over (see :meth:`take_over`) and run it to its end here."""
        run = self.take_over(workload, executor=executor)
        if isinstance(run, ExecutionReport):
            return run
        return run_coroutine(run.execute)


def start_submitted(
    workload: CodonWorkload,
    payload: Any,
    *,
    store: str,
    deployment_id: Any,
    **options: Any,
) -> SubmittedRun:
    """Record the start of a submitted run in ``store`` here, and let go of it unrun."""
    if options.get("executor") is not None:
        raise TypeError(
            "submit takes the executor as its own executor= argument, not among the run's options"
        )
    driver = {k: options[k] for k in _DRIVER_OPTIONS if k in options}
    if options.get("durability") == "exit":  # the start must be in the store when we let go
        options = {**options, "durability": "batch"}
    run = workload._begin(
        payload,
        deployment_id=deployment_id,
        store=store,
        executor=InProcessExecutor(),  # nothing runs here: no cluster to connect to
        **options,
    )
    run_id = run.run_id
    for close in run.on_close:  # commits what it holds; nobody renews the lease from here
        close()
    ledger = open_store(store)
    try:
        owner = ledger.get_run(run_id).owner
    finally:
        ledger.close()
    if owner is None:  # pragma: no cover - a store that lost the start's owner
        raise StoreError(f"the store {store!r} recorded run {run_id} without its owner")
    return SubmittedRun(run_id=run_id, store=store, owner=owner, options=driver)
