"""Replay and fork of recorded runs, and upgrades of runs in flight.

``workload.replay(run_id, store=...)`` and ``workload.fork(...)`` run in the engine
(``codon_sdk.runtime``) and return a :class:`ReplayReport`, whose :class:`Divergence`
list says where today's code decided differently; both are re-exported here.

``versions(store)`` lists the logic ids runs were recorded with; ``stranded_runs(store,
workload)`` the paused and crashed runs a workload's code does not accept;
``check_upgrade(store, run_id, workload)`` replays one with today's code to show whether
it would decide the same.
"""

from codon_sdk.replay._upgrade import (
    LogicVersion,
    StrandedRun,
    UpgradeCheck,
    check_upgrade,
    stranded_runs,
    versions,
)
from codon_sdk.runtime import Divergence, ReplayReport

__all__ = [
    "Divergence",
    "ReplayReport",
    "LogicVersion",
    "StrandedRun",
    "UpgradeCheck",
    "check_upgrade",
    "stranded_runs",
    "versions",
]
