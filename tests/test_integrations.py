"""The integrations door: a plug-in records its calls inside nodes through
``codon_sdk.integrations`` alone, resume serves them from the ledger, and misuse is a
clear IntegrationError naming the plug-in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from codon_sdk import CodonWorkload
from codon_sdk.errors import IntegrationError
from codon_sdk.integrations import integration, integrations

calls: list[str] = []
DOOR = integration("acme-llm")  # when the plug-in is installed, before any run starts


def _send(request: dict[str, Any]) -> str:
    """The plug-in's network call (counted, so a served call shows as not made)."""
    calls.append(request["q"])
    return f"answer to {request['q']}"


def _recorded_call(request: dict[str, Any]) -> str:
    """How a plug-in wraps a call: unrecorded outside a node, a recorded effect inside."""
    if DOOR.activation() is None:
        return _send(request)
    slot = DOOR.effect("llm.acme", request=request)
    if slot.recorded is not None:
        return str(slot.served())
    reply = _send(request)
    slot.record(reply)
    return reply


def _workload() -> CodonWorkload:
    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        reply = _recorded_call({"q": message})
        approved = runtime.interrupt("approve the answer?", payload=reply)
        return f"{reply} ({approved})"

    workload = CodonWorkload(name="door", version="1", org_namespace="tests")
    workload.add_node(ask, "ask", "llm")
    return workload


def test_a_plugin_records_its_call_and_resume_serves_it_from_the_ledger(tmp_path: Path) -> None:
    calls.clear()
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    first = _workload().execute("capital of France?", deployment_id="d", store=url)
    assert first.status == "interrupted"
    assert calls == ["capital of France?"]
    effects = [e for e in first.events() if e.type == "effect_recorded"]
    assert len(effects) == 1
    assert "llm.acme" in str(effects[0].metadata)

    resumed = _workload().resume(first.run_id, store=url, input="yes")
    assert resumed.node_results("ask") == ["answer to capital of France? (yes)"]
    assert calls == ["capital of France?"]  # served from the ledger, not sent again
    assert "acme-llm" in integrations()


def test_outside_a_node_the_call_is_made_unrecorded() -> None:
    calls.clear()
    assert _recorded_call({"q": "plain"}) == "answer to plain"
    assert calls == ["plain"]


def test_an_effect_asked_for_outside_a_node_names_the_plugin_and_what_to_do() -> None:
    with pytest.raises(IntegrationError) as caught:
        integration("acme-llm").effect("llm.acme", request={"q": "x"})
    message = str(caught.value)
    assert "'acme-llm'" in message
    assert "'llm.acme'" in message
    assert "outside a running Codon node" in message
    assert "activation()" in message


@pytest.mark.parametrize("name", ["", "   ", "bad\nname", 42, None])
def test_an_integration_needs_a_printable_name(name: Any) -> None:
    with pytest.raises(IntegrationError, match="printable, non-empty string"):
        integration(name)


def test_the_door_for_a_name_is_one_object() -> None:
    assert integration("acme-llm") is integration("acme-llm")
    assert repr(integration("acme-llm")) == "Integration('acme-llm')"
