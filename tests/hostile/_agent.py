"""A small workload the hostile-ledger tests record, then forge (importable by the CLI as
``tests.hostile._agent:workload``)."""

from __future__ import annotations

from typing import Any

from codon_sdk import CodonWorkload
from codon_sdk.redaction import Redactor


def _quote(item: str) -> dict[str, Any]:
    return {"item": item, "price": 12}


def plan(message: Any, *, runtime: Any, context: Any) -> str:
    runtime.state["items"] = [message]
    runtime.emit("price", message)
    return "planned"


def price(message: Any, *, runtime: Any, context: Any) -> Any:
    quote = runtime.effect("quote", _quote, message)
    runtime.state["quote"] = quote
    runtime.record_event("priced", metadata={"item": message})
    return quote


def build() -> CodonWorkload:
    wl = CodonWorkload(
        name="hostile-agent", version="1", org_namespace="tests", redactor=Redactor.disabled()
    )
    wl.add_node(plan, "plan", "planner")
    wl.add_node(price, "price", "pricer")
    wl.add_edge("plan", "price")
    return wl


workload = build()
