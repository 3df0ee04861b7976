"""Child process of the durable-execution tests: execute or resume a workload, print the outcome.

Usage: ``python _child.py SPEC`` where SPEC is JSON with ``path`` and ``module`` (a module
defining ``workload``), ``op`` (``execute`` or ``resume``), ``kwargs`` for the call,
``payload`` (execute), ``run_id`` (resume), and optionally ``ready`` and ``gate``: the child
touches ``ready``, then waits for ``gate`` to exist before starting (a start barrier), and
``sqlite_pragmas``: the ``store`` URL is then opened as ``SQLiteStore(path, pragmas=...)``
(for example ``{"max_page_count": 40}`` to make the disk "full").

Prints one JSON line: the report (status, state, results, event count, pid) or the error
(type and message); exits 0, or 3 after an error.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any


def _wait_for_gate(spec: dict[str, Any]) -> None:
    if spec.get("ready"):
        Path(spec["ready"]).touch()
    if spec.get("gate"):
        deadline = time.monotonic() + 60
        while not os.path.exists(spec["gate"]):
            if time.monotonic() > deadline:
                raise SystemExit(4)
            time.sleep(0.002)


def main() -> int:
    spec = json.loads(sys.argv[1])
    sys.path.insert(0, spec["path"])
    workload = importlib.import_module(spec["module"]).workload
    kwargs = spec.get("kwargs", {})
    if spec.get("sqlite_pragmas"):
        from codon_sdk.stores import SQLiteStore

        path = kwargs["store"][len("sqlite:///") :]
        kwargs["store"] = SQLiteStore(path, pragmas=spec["sqlite_pragmas"])
    _wait_for_gate(spec)
    try:
        if spec["op"] == "execute":
            report = workload.execute(
                spec.get("payload"), deployment_id=spec.get("deployment_id", "durable"), **kwargs
            )
        else:
            report = workload.resume(spec["run_id"], **kwargs)
    except Exception as exc:
        cause = exc.__cause__
        error = {
            "error": type(exc).__name__,
            "message": str(exc),
            "cause": None if cause is None else type(cause).__name__,
            "cause_message": None if cause is None else str(cause),
            "sqlite_error": getattr(cause, "sqlite_errorname", None),
            "pid": os.getpid(),
        }
        print(json.dumps(error))
        return 3
    result = {
        "status": report.status,
        "state": report.state,
        "event_count": report.event_count,
        "results": {node: report.node_results(node) for node in report.results},
        "pid": os.getpid(),
    }
    print(json.dumps(result, default=repr))
    return 0


if __name__ == "__main__":
    sys.exit(main())
