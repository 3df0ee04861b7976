"""Runs recorded for the explorer's tests, through the real runtime, the real ``openai``
client against the local OpenAI-protocol server, and a real SQLite ledger file."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

import openai
from tests.audit._tamper import Database, edit

from codon.instrumentation.openai import instrument_openai, uninstrument_openai
from codon_sdk import CodonWorkload
from codon_sdk.testing import OpenAIProtocolServer, bundled_recordings

FRANCE: Any = [
    {"role": "system", "content": "You are a concise geography assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]
ANSWER = "The capital of France is Paris."
APPROVER = "alice@example.com"
FANOUT = "fanout-1"
TAMPERED = "tampered-1"
REPLAYED = "replayed-1"
TAMPERED_SEQ = 4


def research_workload(client: Any) -> CodonWorkload:
    """plan fans out three parts to research (part 0 asks the model), review asks a human
    about the model's answer only."""

    def plan(topic: Any, *, runtime: Any, context: Any) -> Any:
        for part in range(3):
            runtime.emit("research", {"topic": topic, "part": part})
        runtime.state["planned"] = 3
        return "planned"

    def research(item: Any, *, runtime: Any, context: Any) -> Any:
        runtime.record_event("note.found", metadata={"part": item["part"]})
        if item["part"] == 0:
            reply = client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
            answer = reply.choices[0].message.content
        else:
            answer = f"part {item['part']} done"
        runtime.emit("review", answer)
        return answer

    def review(text: Any, *, runtime: Any, context: Any) -> Any:
        if "Paris" in text:
            return runtime.interrupt("approve the finding", payload={"finding": text})
        return "auto-approved"

    wl = CodonWorkload(name="research", version="1", org_namespace="ui-tests")
    wl.add_node(plan, "plan", "planner")
    wl.add_node(research, "research", "researcher")
    wl.add_node(review, "review", "human")
    wl.add_edge("plan", "research")
    wl.add_edge("research", "review")
    return wl


def record_fanout(url: str) -> None:
    """The fan-out run: an LLM call, an interrupt, and a resume approved by APPROVER."""
    with OpenAIProtocolServer(bundled_recordings()) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        instrument_openai()
        try:
            wl = research_workload(client)
            report = wl.execute("otters", deployment_id="prod", store=url, run_id=FANOUT)
            assert report.status == "interrupted"
            report = wl.resume(FANOUT, store=url, input={"approved": True}, actor=APPROVER)
            assert report.status == "completed"
        finally:
            uninstrument_openai()
            client.close()


def counter_workload(step: int) -> CodonWorkload:
    """count -> double; ``step`` is the code that changes between recording and replay."""

    def count(n: Any, *, runtime: Any, context: Any) -> Any:
        runtime.emit("double", n + step)
        return n + step

    def double(n: Any, *, runtime: Any, context: Any) -> Any:
        return n * 2

    wl = CodonWorkload(name="counter", version="1", org_namespace="ui-tests")
    wl.add_node(count, "count", "counter")
    wl.add_node(double, "double", "doubler")
    wl.add_edge("count", "double")
    return wl


def record_small(url: str, total: int) -> list[str]:
    """``total`` short runs over two deployments (run ids small-000...), newest last."""
    wl = counter_workload(1)
    ids = []
    for i in range(total):
        run_id = f"small-{i:03d}"
        wl.execute(i, deployment_id="staging" if i % 2 else "prod", store=url, run_id=run_id)
        ids.append(run_id)
    return ids


def record_replayed(url: str) -> CodonWorkload:
    """A run recorded with step 1; returns today's workload (step 2), whose replay diverges."""
    counter_workload(1).execute(10, deployment_id="prod", store=url, run_id=REPLAYED)
    return counter_workload(2)


def record_tampered(url: str, path: Path) -> None:
    """A run whose event TAMPERED_SEQ is edited in the database underneath the store."""
    counter_workload(1).execute(5, deployment_id="prod", store=url, run_id=TAMPERED)
    db = Database("sqlite", path)
    try:
        entries = db.entries(TAMPERED)
        db.set_entry(TAMPERED, TAMPERED_SEQ, edit(entries[TAMPERED_SEQ], _forge))
    finally:
        db.close()


def _forge(obj: dict[str, Any]) -> None:
    obj["payload"] = 999


class LiveRun:
    """A run kept going in a thread: ``a`` then ``b``, which waits for :meth:`go`."""

    run_id = "live-1"

    def __init__(self, url: str) -> None:
        self._go = threading.Event()
        self.url = url

        def a(x: Any, *, runtime: Any, context: Any) -> Any:
            runtime.emit("b", x)
            return x

        def b(x: Any, *, runtime: Any, context: Any) -> Any:
            self._go.wait(60)
            runtime.emit("c", x + 1)
            return x + 1

        def c(x: Any, *, runtime: Any, context: Any) -> Any:
            return x * 10

        self.workload = CodonWorkload(name="live", version="1", org_namespace="ui-tests")
        self.workload.add_node(a, "a", "r")
        self.workload.add_node(b, "b", "r")
        self.workload.add_node(c, "c", "r")
        self.workload.add_edge("a", "b")
        self.workload.add_edge("b", "c")
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.workload.execute(1, deployment_id="prod", store=self.url, run_id=self.run_id)

    def start(self) -> None:
        self._thread.start()

    def go(self) -> None:
        self._go.set()

    def join(self) -> None:
        self._go.set()
        self._thread.join(30)


PAUSED = "paused-1"
BIG = "big-payload-1"
CORRUPT = "corrupt-1"
STALE = "stale-1"
BIG_TEXT = "x" * 100_000


def record_paused(url: str) -> None:
    """A run waiting for approval (status interrupted)."""

    def ask(item: Any, *, runtime: Any, context: Any) -> Any:
        return runtime.interrupt("ship it?", payload={"item": item})

    wl = CodonWorkload(name="approval", version="1", org_namespace="ui-tests")
    wl.add_node(ask, "ask", "human")
    wl.execute("release 1.2", deployment_id="prod", store=url, run_id=PAUSED)


def record_big_payload(url: str) -> None:
    """A run whose node returns a 100 kB value."""

    def big(item: Any, *, runtime: Any, context: Any) -> Any:
        return BIG_TEXT

    wl = CodonWorkload(name="big", version="1", org_namespace="ui-tests")
    wl.add_node(big, "big", "writer")
    wl.execute(1, deployment_id="prod", store=url, run_id=BIG)


def record_corrupt(url: str, path: Path) -> None:
    """A run one of whose entries is replaced by bytes that are not JSON."""
    counter_workload(1).execute(7, deployment_id="prod", store=url, run_id=CORRUPT)
    db = Database("sqlite", path)
    try:
        db.set_entry(CORRUPT, 3, b"\x00not json{")
    finally:
        db.close()


def record_stale(url: str, path: Path) -> None:
    """A run left 'running' by a holder on another host that stopped renewing its lease."""
    wl = counter_workload(1)
    wl.execute(3, deployment_id="prod", store=url, run_id=STALE)
    db = Database("sqlite", path)
    try:
        db.update_run(
            STALE, status="running", owner="gone-host:4242:abc", heartbeat_us=1, finished_us=None
        )
    finally:
        db.close()


CONCURRENT = "concurrent-1"
FLAKY = "flaky-1"
FORKED = "forked-1"


def record_concurrent(url: str) -> None:
    """Three async activations at once (max_concurrency=3), each sleeping 50 ms."""
    import asyncio

    async def split(item: Any, *, runtime: Any, context: Any) -> Any:
        for i in range(3):
            runtime.emit("work", i)
        return "split"

    async def work(item: Any, *, runtime: Any, context: Any) -> Any:
        await asyncio.sleep(0.05)
        return item

    wl = CodonWorkload(name="parallel", version="1", org_namespace="ui-tests")
    wl.add_node(split, "split", "splitter")
    wl.add_node(work, "work", "worker")
    wl.add_edge("split", "work")
    wl.execute(0, deployment_id="prod", store=url, run_id=CONCURRENT, max_concurrency=3)


def record_flaky(url: str) -> None:
    """A node that fails once (retried), then fails for good: retries and an error."""
    from codon_sdk import RetryPolicy
    from codon_sdk.errors import WorkloadRuntimeError

    def flaky(item: Any, *, runtime: Any, context: Any) -> Any:
        raise ValueError(f"upstream said no to {item}")

    wl = CodonWorkload(name="flaky", version="1", org_namespace="ui-tests")
    wl.add_node(flaky, "flaky", "caller", retry=RetryPolicy(max_attempts=2, initial_delay=0.0))
    with contextlib.suppress(WorkloadRuntimeError):  # the failure is what is recorded
        wl.execute("job-7", deployment_id="prod", store=url, run_id=FLAKY)


def record_fork(url: str) -> None:
    """small-001 forked at its third event into FORKED."""
    counter_workload(1).fork("small-001", store=url, at_seq=3, new_run_id=FORKED)
