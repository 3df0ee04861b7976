"""The workloads the audit suite records, tampers with, replays and forks.

``build_v1()`` is a small agent with a loop: ``plan`` reads the clock (``runtime.now``)
and seeds ``work``; ``work`` runs once per step, draws ``runtime.random()``, fetches a
quote over real HTTP from a loopback :class:`QuoteService` as a recorded effect,
decides ``approve``/``review``, records a custom audit event, updates the shared
state and loops to itself ``limit`` times before handing over to ``finish``.

``build_v2()`` is the same graph after a code change that alters a decision: the
``work`` node approves every third step instead of every second, so the first
decision that differs is the one at step ``i == 2``. ``build_v1_refactored()``
changes the code of ``work`` (a new logic id) without changing any decision.
``build_v3_extra_effect()`` asks for an effect the recorded run never made.
"""

from __future__ import annotations

import json
import random
import threading
import urllib.request
from typing import Any

from codon_sdk import CodonWorkload
from codon_sdk.testing._loopback import LoopbackHTTPServer, QuietHandler

__all__ = [
    "WORKLOAD_NAME",
    "QuoteService",
    "build_pausing",
    "build_v1",
    "build_v1_refactored",
    "build_v2",
    "build_v3_extra_effect",
    "fetch_quote",
]

WORKLOAD_NAME = "audit-demo"


# --------------------------------------------------------------------------- the outside world


class _QuoteHandler(QuietHandler):
    def do_GET(self) -> None:
        server: Any = self.server
        with server.lock:
            server.hits += 1
        step = int(self.path.rsplit("=", 1)[-1])
        body = json.dumps({"step": step, "quote": round(random.random() * 100, 6)}).encode()
        self.send_bytes(200, body, {"Content-Type": "application/json"})


class QuoteService:
    """A real HTTP server on 127.0.0.1 answering ``GET /quote?step=N`` with a random quote.

    ``hits`` counts the requests it served: the outside world a run touched.
    """

    def __init__(self) -> None:
        self._server: Any = LoopbackHTTPServer(_QuoteHandler)
        self._server.hits = 0
        self._server.lock = threading.Lock()
        self._server.start("audit-quote-service")
        self.url = f"http://127.0.0.1:{self._server.port}"

    @property
    def hits(self) -> int:
        return int(self._server.hits)

    def stop(self) -> None:
        self._server.stop()


def fetch_quote(url: str, step: int) -> dict[str, Any]:
    """One HTTP request to the quote service (the non-deterministic call a node records)."""
    with urllib.request.urlopen(f"{url}/quote?step={step}", timeout=10) as response:
        data: dict[str, Any] = json.loads(response.read())
    return data


# --------------------------------------------------------------------------- node functions


def plan(message: Any, *, runtime: Any, context: Any) -> str:
    runtime.state["topic"] = message["topic"]
    runtime.state["started"] = runtime.now().isoformat()
    runtime.emit("work", {"i": 0, "limit": message["limit"]})
    return "planned"


def work(message: Any, *, runtime: Any, context: Any) -> Any:
    i = message["i"]
    roll = runtime.random()
    quote = runtime.effect("fetch", fetch_quote, context["quote_url"], i)
    decision = "approve" if i % 2 == 0 else "review"
    runtime.record_event("audit.decision", metadata={"i": i, "decision": decision})
    runtime.state["last"] = {"i": i, "decision": decision}
    if i + 1 < message["limit"]:
        runtime.emit("work", {"i": i + 1, "limit": message["limit"]})
    else:
        runtime.emit("finish", {"steps": message["limit"]})
    return {"i": i, "roll": roll, "quote": quote["quote"], "decision": decision}


def work_refactored(message: Any, *, runtime: Any, context: Any) -> Any:
    step = message["i"]
    roll = runtime.random()
    quote = runtime.effect("fetch", fetch_quote, context["quote_url"], step)
    decision = "review" if step % 2 else "approve"
    runtime.record_event("audit.decision", metadata={"i": step, "decision": decision})
    runtime.state["last"] = {"i": step, "decision": decision}
    nxt = step + 1
    if nxt < message["limit"]:
        runtime.emit("work", {"i": nxt, "limit": message["limit"]})
    else:
        runtime.emit("finish", {"steps": message["limit"]})
    return {"i": step, "roll": roll, "quote": quote["quote"], "decision": decision}


def work_v2(message: Any, *, runtime: Any, context: Any) -> Any:
    i = message["i"]
    roll = runtime.random()
    quote = runtime.effect("fetch", fetch_quote, context["quote_url"], i)
    decision = "approve" if i % 3 == 0 else "review"  # the code change: every third step
    runtime.record_event("audit.decision", metadata={"i": i, "decision": decision})
    runtime.state["last"] = {"i": i, "decision": decision}
    if i + 1 < message["limit"]:
        runtime.emit("work", {"i": i + 1, "limit": message["limit"]})
    else:
        runtime.emit("finish", {"steps": message["limit"]})
    return {"i": i, "roll": roll, "quote": quote["quote"], "decision": decision}


def work_v3(message: Any, *, runtime: Any, context: Any) -> Any:
    i = message["i"]
    roll = runtime.random()
    quote = runtime.effect("fetch", fetch_quote, context["quote_url"], i)
    if i == 1:  # the code change: a second call the recorded run never made
        quote = runtime.effect("fetch_again", fetch_quote, context["quote_url"], i)
    decision = "approve" if i % 2 == 0 else "review"
    runtime.record_event("audit.decision", metadata={"i": i, "decision": decision})
    runtime.state["last"] = {"i": i, "decision": decision}
    if i + 1 < message["limit"]:
        runtime.emit("work", {"i": i + 1, "limit": message["limit"]})
    else:
        runtime.emit("finish", {"steps": message["limit"]})
    return {"i": i, "roll": roll, "quote": quote["quote"], "decision": decision}


def finish(message: Any, *, runtime: Any, context: Any) -> str:
    last = runtime.state["last"]
    return f"{runtime.state['topic']}: {message['steps']} steps, last {last['decision']}"


# --------------------------------------------------------------------------- workloads


def _build(work_fn: Any) -> CodonWorkload:
    workload = CodonWorkload(name=WORKLOAD_NAME, version="1.0", org_namespace="audit-tests")
    workload.add_node(plan, "plan", "planner")
    workload.add_node(work_fn, "work", "worker")
    workload.add_node(finish, "finish", "reporter")
    workload.add_edge("plan", "work")
    workload.add_edge("work", "work")
    workload.add_edge("work", "finish")
    return workload


def build_v1() -> CodonWorkload:
    return _build(work)


def build_v1_refactored() -> CodonWorkload:
    return _build(work_refactored)


def build_v2() -> CodonWorkload:
    return _build(work_v2)


def build_v3_extra_effect() -> CodonWorkload:
    return _build(work_v3)


# --------------------------------------------------------------------------- a run that pauses


def intake(message: Any, *, runtime: Any, context: Any) -> str:
    runtime.state["requested"] = message["n"]
    for k in range(message["n"]):
        runtime.record_event("audit.line", metadata={"line": k})
    runtime.emit("approve", {"amount": message["n"] * 100})
    return "queued"


def approve(message: Any, *, runtime: Any, context: Any) -> dict[str, Any]:
    stamp = runtime.now()
    answer = runtime.interrupt("approval needed", payload={"amount": message["amount"]})
    runtime.state["approved_by"] = answer
    return {"approved_by": answer, "asked_at": stamp.isoformat()}


def build_pausing() -> CodonWorkload:
    """``intake`` records ``n`` audit lines, then ``approve`` pauses for a human."""
    workload = CodonWorkload(name="audit-approval", version="1.0", org_namespace="audit-tests")
    workload.add_node(intake, "intake", "intake")
    workload.add_node(approve, "approve", "approver")
    workload.add_edge("intake", "approve")
    return workload
