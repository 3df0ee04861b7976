"""Helpers shared by the durable-execution tests: child processes, ledgers read back, modules."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from codon_sdk import LedgerEvent, check_chain
from codon_sdk.ledger._events import parse_entry
from codon_sdk.stores import LedgerStore, open_store

CHILD = Path(__file__).with_name("_child.py")
CHILD_TIMEOUT = 90.0


# --------------------------------------------------------------------------- PostgreSQL schemas


@contextmanager
def pg_schema_url(pg_url: str) -> Iterator[str]:
    """A URL of ``pg_url``'s database whose ``search_path`` is a new, empty schema."""
    import psycopg

    name = f"durable_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield f"{pg_url}?options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{name}" CASCADE')


# --------------------------------------------------------------------------- workload modules


def write_module(directory: Path, name: str, source: str) -> Path:
    """Write a workload module ``name`` into ``directory`` (importable by the child processes)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.py"
    path.write_text(source)
    return path


def load_module(path: Path) -> ModuleType:
    """Import the module at ``path`` in this process under a name no other test uses."""
    name = f"durable_ref_{path.stem}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- child processes


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CRASH_AT", "STEP_DELAY")}
    env.update(extra or {})
    return env


def child_command(module_path: Path, op: str, **spec: Any) -> list[str]:
    """``python _child.py SPEC``: run (``op="execute"``) or resume (``op="resume"``) a workload.

    ``spec`` holds ``kwargs`` for ``execute``/``resume`` (JSON values only), ``payload``,
    ``run_id`` (resume), and optionally ``ready``/``gate`` file paths for a start barrier.
    """
    body = {"path": str(module_path.parent), "module": module_path.stem, "op": op, **spec}
    return [sys.executable, str(CHILD), json.dumps(body)]


def run_child(
    module_path: Path, op: str, *, env: Mapping[str, str] | None = None, **spec: Any
) -> subprocess.CompletedProcess[str]:
    """Run the child to its end and return it (stdout holds one JSON line unless it was killed)."""
    return subprocess.run(
        child_command(module_path, op, **spec),
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        check=False,
    )


def start_child(
    module_path: Path, op: str, *, env: Mapping[str, str] | None = None, **spec: Any
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        child_command(module_path, op, **spec),
        env=child_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def outcome(proc: subprocess.CompletedProcess[str] | tuple[int, str, str]) -> dict[str, Any]:
    """The child's JSON outcome; fails with its stderr when it printed none."""
    if isinstance(proc, tuple):
        code, out, err = proc
    else:
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    lines = [line for line in out.splitlines() if line.startswith("{")]
    assert lines, f"child exited {code} without an outcome; stderr:\n{err}"
    result: dict[str, Any] = json.loads(lines[-1])
    result["exit_code"] = code
    return result


def open_gate(ready: list[Path], gate: Path, *, timeout: float = 60.0) -> None:
    """Wait until every child touched its ``ready`` file, then let them all go at once."""
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in ready):
        assert time.monotonic() < deadline, "children did not get ready in time"
        time.sleep(0.005)
    gate.touch()


# --------------------------------------------------------------------------- ledgers read back


@contextmanager
def opened(url: str) -> Iterator[LedgerStore]:
    store = open_store(url)
    try:
        yield store
    finally:
        store.close()


def stored_entries(url: str, run_id: str) -> list[bytes]:
    with opened(url) as store:
        return store.read(run_id)


def parse(entries: list[bytes]) -> list[LedgerEvent]:
    return [parse_entry(e) for e in entries]


def types(events: list[LedgerEvent]) -> list[str]:
    return [e.type for e in events]


def completed_tokens(events: list[LedgerEvent]) -> Counter[str]:
    """How many ``node_completed`` events each token has."""
    return Counter(e.token_id for e in events if e.type == "node_completed" and e.token_id)


def dequeued_tokens(events: list[LedgerEvent]) -> Counter[str]:
    return Counter(e.token_id for e in events if e.type == "token_dequeued" and e.token_id)


def token_targets(events: list[LedgerEvent]) -> dict[str, tuple[str, Any]]:
    """token id -> (receiving node, payload), from the recorded ``token_enqueued`` events."""
    return {
        e.token_id: (e.target, e.value())
        for e in events
        if e.type == "token_enqueued" and e.token_id and e.target
    }


def assert_chain(entries: list[bytes], run_id: str, *, require_end: bool) -> None:
    check = check_chain(entries, run_id=run_id, require_end=require_end)
    assert check.ok, str(check)
