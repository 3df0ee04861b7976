"""Replay and fork of recorded runs, and upgrades of runs in flight.

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

__all__ = [
    "LogicVersion",
    "StrandedRun",
    "UpgradeCheck",
    "check_upgrade",
    "stranded_runs",
    "versions",
]
