"""Workloads the executor tests run: defined in an importable module, so Ray workers
load the node functions by reference, as they would a user's package."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import Any

from codon_sdk import CodonWorkload


def pid_node(message: Any, *, runtime: Any, context: Any) -> int:
    return os.getpid()


async def apid_node(message: Any, *, runtime: Any, context: Any) -> int:
    await asyncio.sleep(0)
    return os.getpid()


def pids() -> CodonWorkload:
    wl = CodonWorkload(name="Pids", version="1.0")
    wl.add_node(pid_node, "sync_pid", "worker")
    wl.add_node(apid_node, "async_pid", "worker")
    return wl


def plan(topic: str, *, runtime: Any, context: Any) -> str:
    runtime.record_event("planned", metadata={"topic": topic, "parts": 3})
    for part in ("a", "b", "c"):
        runtime.emit("research", f"{topic}/{part}", audit_metadata={"part": part})
    runtime.state["topic"] = topic
    return f"plan:{topic}"


def research(query: str, *, runtime: Any, context: Any) -> dict[str, Any]:
    found = runtime.effect("search", lambda q: f"found {q}", query)
    runtime.state.update_with("searches", lambda n: n + 1, default=0)
    runtime.emit("write", found)
    return {"query": query, "found": found}


async def write(found: str, *, runtime: Any, context: Any) -> str:
    stamp = await runtime.effect("stamp", _astamp, found)
    notes = runtime.state.get("notes", [])
    runtime.state["notes"] = [*notes, stamp]
    return stamp.upper()


async def _astamp(text: str) -> str:
    await asyncio.sleep(0)
    return f"[{text}]"


def research_flow() -> CodonWorkload:
    """The guide's fan-out: plan emits three queries, each is researched, then written."""
    wl = CodonWorkload(name="Research", version="1.0")
    wl.add_node(plan, "plan", "planner")
    wl.add_node(research, "research", "worker", resources={"num_cpus": 1})
    wl.add_node(write, "write", "writer")
    wl.add_edge("plan", "research")
    wl.add_edge("research", "write")
    return wl


def fan(n: int, *, runtime: Any, context: Any) -> None:
    for i in range(n):
        runtime.emit("nap", i)


async def nap(i: int, *, runtime: Any, context: Any) -> int:
    await asyncio.sleep(0.05)
    return i


def fan_out() -> CodonWorkload:
    wl = CodonWorkload(name="FanOut", version="1.0")
    wl.add_node(fan, "fan", "planner")
    wl.add_node(nap, "nap", "worker")
    wl.add_edge("fan", "nap")
    return wl


def slow_once(marker: str, *, runtime: Any, context: Any) -> dict[str, Any]:
    """Writes its pid to ``marker`` (a file) and, on the first attempt, waits to be killed."""
    Path(marker).write_text(f"{os.getpid()} {runtime.attempt}")
    if runtime.attempt == 0:
        time.sleep(30)
    return {"pid": os.getpid(), "attempt": runtime.attempt}


def killable() -> CodonWorkload:
    wl = CodonWorkload(name="Killable", version="1.0")
    wl.add_node(slow_once, "slow", "worker")
    return wl


def unpicklable_result(message: Any, *, runtime: Any, context: Any) -> Any:
    return threading.Lock()


def bad_result() -> CodonWorkload:
    wl = CodonWorkload(name="BadResult", version="1.0")
    wl.add_node(unpicklable_result, "locker", "worker")
    return wl


def echo(message: Any, *, runtime: Any, context: Any) -> Any:
    return message


def echo_flow() -> CodonWorkload:
    wl = CodonWorkload(name="Echo", version="1.0")
    wl.add_node(echo, "echo", "worker")
    return wl


def ask(question: str, *, runtime: Any, context: Any) -> str:
    answer = runtime.interrupt("approve?", payload={"q": question})
    return f"{question}: {answer}"


def approval() -> CodonWorkload:
    wl = CodonWorkload(name="Approval", version="1.0")
    wl.add_node(ask, "ask", "human")
    return wl


def flaky(message: Any, *, runtime: Any, context: Any) -> str:
    if runtime.attempt == 0:
        raise ValueError("first attempt fails")
    return f"ok on attempt {runtime.attempt}"


def flaky_flow() -> CodonWorkload:
    wl = CodonWorkload(name="Flaky", version="1.0")
    wl.add_node(flaky, "flaky", "worker", retry=2)
    return wl


def nap_once(marker: str, *, runtime: Any, context: Any) -> dict[str, Any]:
    """Marks that it started; on the first attempt sleeps long enough to be killed."""
    Path(marker).write_text(f"{os.getpid()} {runtime.attempt}")
    if runtime.attempt == 0 and not Path(marker + ".resumed").exists():
        time.sleep(20)
    return {"pid": os.getpid()}


def submitted() -> CodonWorkload:
    wl = CodonWorkload(name="Submitted", version="1.0", org_namespace="codon-tests")
    wl.add_node(nap_once, "nap", "worker")
    return wl


SUBMITTED = submitted()


def stamp(path: str, *, runtime: Any, context: Any) -> int:
    """Appends its pid to the file ``path``: one line per time the node ran."""
    with open(path, "a", encoding="utf-8") as out:
        out.write(f"{os.getpid()}\n")
    return os.getpid()


def stamped() -> CodonWorkload:
    wl = CodonWorkload(name="Stamped", version="1.0", org_namespace="codon-tests")
    wl.add_node(stamp, "stamp", "worker")
    return wl


def stamp_twice(path: str, *, runtime: Any, context: Any) -> int:
    """Another version of ``stamp`` (another logic id for the same workload name)."""
    stamp(path, runtime=runtime, context=context)
    return stamp(path, runtime=runtime, context=context)


def stamped_changed() -> CodonWorkload:
    wl = CodonWorkload(name="Stamped", version="1.0", org_namespace="codon-tests")
    wl.add_node(stamp_twice, "stamp", "worker")
    return wl


STAMPED = stamped()
STAMPED_CHANGED = stamped_changed()


def wait_for_file(*, path: str) -> None:
    """A carried set-up that holds a process until the file ``path`` exists (at most 60 s)."""
    deadline = time.monotonic() + 60
    while not Path(path).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
