"""One redaction policy for the ledger and the spans (issue acceptance).

A secret that reaches a node (in its input, its state, its result, an LLM prompt)
is masked before it is hashed into the ledger and before it reaches a span, with
the same keyed marker in both; the masked ledger still verifies.
"""

from __future__ import annotations

import re
from typing import Any

import openai
from tests.instrumentation._openai_support import API_KEY, FRANCE, instrumented

from codon_sdk import CodonWorkload, MemoryStore, check_chain, verify_run
from codon_sdk.redaction import Redactor, set_default_redactor
from codon_sdk.testing import (
    OpenAIProtocolServer,
    bundled_recordings,
    capture_spans,
    echo_fallback,
)

LEAKED = "sk-proj-Zx81Qw2Er3Ty4Ui5Op6As7Df8Gh9Jk0Lz1Xc2Vb3Nm4"  # a user pasted their key
MARKER = re.compile(r"\[REDACTED:api_key:[0-9a-f]{12}\]")


def _entries_text(store: MemoryStore, run_id: str) -> str:
    return "\n".join(e.decode() for e in store.read(run_id))


def test_a_secret_in_payload_state_and_result_is_masked_and_the_ledger_verifies() -> None:
    """The ledger holds a marker where the secret was, everywhere, and verifies."""

    def node(message: Any, *, runtime: Any, context: Any) -> Any:
        runtime.state["note"] = f"customer said: {message['text']}"
        runtime.record_event("support_note", metadata={"text": message["text"]})
        return {"echo": message["text"]}

    store = MemoryStore()
    workload = CodonWorkload(name="redact", version="1", org_namespace="t")
    workload.add_node(node, "node", "r")
    report = workload.execute(
        {"text": f"my key is {LEAKED}"}, deployment_id="d", store=store, run_id="r1"
    )
    text = _entries_text(store, "r1")
    assert LEAKED not in text
    markers = set(MARKER.findall(text))
    assert len(markers) == 1  # the same secret gives the same marker everywhere
    assert text.count(next(iter(markers))) >= 4  # input, state, custom event, result
    assert check_chain(store.read("r1"), run_id="r1", require_end=True).ok
    assert verify_run(store, "r1").status == "unanchored"
    assert report.node_results("node") == [{"echo": f"my key is {LEAKED}"}]  # live value


def test_the_same_secret_has_the_same_marker_in_the_ledger_and_the_llm_span(
    monkeypatch: Any,
) -> None:
    """A prompt carrying a secret: the recorded request and the chat span's captured
    message content show one and the same marker, never the secret."""
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    previous = set_default_redactor(Redactor(key=b"test-redaction-key"))
    try:
        messages = [*FRANCE[:1], {"role": "user", "content": f"{FRANCE[1]['content']} {LEAKED}"}]
        with OpenAIProtocolServer(bundled_recordings(), fallback=echo_fallback) as server:
            client = openai.OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0)

            def ask(message: Any, *, runtime: Any, context: Any) -> Any:
                answer = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
                return answer.choices[0].message.content

            store = MemoryStore()
            workload = CodonWorkload(
                name="redact-llm", version="1", org_namespace="t", enable_tracing=True
            )
            workload.add_node(ask, "ask", "llm")
            with instrumented(client), capture_spans() as captured:
                workload.execute("go", deployment_id="d", store=store, run_id="r2")
        ledger = _entries_text(store, "r2")
        chat = next(s for s in captured.spans if s.name.startswith("chat "))
        span_text = " ".join(str(v) for v in (chat.attributes or {}).values())
        assert LEAKED not in ledger
        assert LEAKED not in span_text
        assert API_KEY not in ledger
        assert API_KEY not in span_text
        in_ledger = set(MARKER.findall(ledger))
        in_span = set(MARKER.findall(span_text))
        assert in_ledger
        assert in_ledger == in_span
        assert check_chain(store.read("r2"), run_id="r2", require_end=True).ok
    finally:
        set_default_redactor(previous)
