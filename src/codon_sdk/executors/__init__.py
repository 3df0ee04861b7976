"""Where activations run: in this process (the default) or on a Ray cluster.

- :class:`Executor` is the seam: a small base whose :meth:`~Executor.run` runs one
  activation; :class:`InProcessExecutor` is the default. The conformance suite every
  executor must pass is :class:`codon_sdk.testing.ExecutorConformance`.
- :class:`RayExecutor` (``pip install "codon-sdk[ray]"``) runs each activation on a
  Ray cluster; the run's ledger is still written by this process alone.

- ``workload.submit(input, store=URL, executor=RayExecutor(...))`` runs a whole run on
  the cluster and returns a :class:`Submission`; :func:`work` (``codon worker``)
  resumes runs whose driver never started or died.

Pass one to ``workload.execute(..., executor=...)`` or ``resume``, or set
``workload.executor`` once (docs: guides/ray.md).
"""

from __future__ import annotations

from codon_sdk.executors._ray import RayExecutor
from codon_sdk.executors._submit import Submission, work
from codon_sdk.runtime import (
    ActivationCall,
    ActivationOutcome,
    ActivationTicket,
    Executor,
    InProcessExecutor,
)

__all__ = [
    "ActivationCall",
    "ActivationOutcome",
    "ActivationTicket",
    "Executor",
    "InProcessExecutor",
    "RayExecutor",
    "Submission",
    "work",
]
