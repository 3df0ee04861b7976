"""Sealing inside runs: what the ledger, the spans and the nodes get; a failing key source."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import openai
import pytest
from tests.hostile._watch import forbidden, watched
from tests.instrumentation._openai_support import API_KEY as CLIENT_KEY
from tests.instrumentation._openai_support import FRANCE, instrumented

from codon_sdk import CodonWorkload, MemoryStore, check_chain, verify_run
from codon_sdk.errors import SealingKeyError
from codon_sdk.ledger._events import parse_entry
from codon_sdk.redaction import (
    MARKER_PATTERN,
    SEALED_MARKER_PATTERN,
    Redactor,
    StaticSealingKeys,
    set_default_redactor,
)
from codon_sdk.redaction._sealing_keys import key_id_of
from codon_sdk.testing import OpenAIProtocolServer, bundled_recordings, capture_spans, echo_fallback

SECRET = "sk-proj-Zx81Qw2Er3Ty4Ui5Op6As7Df8Gh9Jk0Lz1Xc2Vb3Nm4"
KEY = bytes(range(32))


class SwitchableKMS:
    """A key source that can be switched off, as a KMS behind a network goes down."""

    source = "test-kms"

    def __init__(self) -> None:
        self.up = True

    def current(self) -> tuple[str, bytes]:
        if not self.up:
            raise ConnectionError("unreachable")
        return "kms-1", KEY

    def get(self, key_id: str) -> bytes | None:
        return KEY if key_id == "kms-1" else None


def _policy(keys: Any = None) -> Redactor:
    return Redactor(key=b"runs-test", sealing_keys=keys or StaticSealingKeys(KEY))


def _text(store: MemoryStore, run_id: str) -> str:
    return "\n".join(e.decode() for e in store.read(run_id))


def test_the_ledger_seals_and_what_leaves_the_process_is_masked() -> None:
    seen: dict[str, Any] = {}

    def node(x: Any, *, runtime: Any, context: Any) -> Any:
        seen["hook"] = runtime.redact(f"log line {x}")  # what an integration puts on a span
        runtime.state["key"] = x
        return x

    workload = CodonWorkload(name="seal", version="1", org_namespace="t", redactor=_policy())
    workload.add_node(node, "node", "r")
    store = MemoryStore()
    report = workload.execute(SECRET, deployment_id="d", store=store, run_id="r1")
    assert report.node_results("node") == [SECRET]  # the live value
    ledger = _text(store, "r1")
    assert SECRET not in ledger
    sealed = {m["digest"] for m in SEALED_MARKER_PATTERN.finditer(ledger)}
    assert len(sealed) == 1
    assert "[SEALED:" not in seen["hook"]
    assert SECRET not in seen["hook"]
    assert {m["digest"] for m in MARKER_PATTERN.finditer(seen["hook"])} == sealed
    assert check_chain(store.read("r1"), run_id="r1", require_end=True).ok
    assert verify_run(store, "r1").status == "unanchored"  # verifies without the key


def test_llm_spans_get_the_mask_and_the_ledger_the_sealed_form(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    previous = set_default_redactor(_policy())
    try:
        messages = [*FRANCE[:1], {"role": "user", "content": f"{FRANCE[1]['content']} {SECRET}"}]
        with OpenAIProtocolServer(bundled_recordings(), fallback=echo_fallback) as server:
            client = openai.OpenAI(base_url=server.base_url, api_key=CLIENT_KEY, max_retries=0)

            def ask(message: Any, *, runtime: Any, context: Any) -> Any:
                answer = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
                return answer.choices[0].message.content

            store = MemoryStore()
            workload = CodonWorkload(
                name="seal-llm", version="1", org_namespace="t", enable_tracing=True
            )
            workload.add_node(ask, "ask", "llm")
            with instrumented(client), capture_spans() as captured:
                workload.execute("go", deployment_id="d", store=store, run_id="r2")
        ledger = _text(store, "r2")
        span_text = " ".join(str(v) for s in captured.spans for v in (s.attributes or {}).values())
        assert SECRET not in ledger
        assert SECRET not in span_text
        assert "[SEALED:" not in span_text
        in_ledger = {m["digest"] for m in SEALED_MARKER_PATTERN.finditer(ledger)}
        in_span = {m["digest"] for m in MARKER_PATTERN.finditer(span_text)}
        assert in_ledger
        assert in_ledger == in_span
    finally:
        set_default_redactor(previous)


def test_a_failing_key_source_stops_the_run_before_anything_is_written_unsealed(
    tmp_path: Path,
) -> None:
    kms = SwitchableKMS()
    calls: list[str] = []

    def first(x: Any, *, runtime: Any, context: Any) -> Any:
        calls.append("first")
        if len(calls) == 1:
            kms.up = False  # the KMS goes down while the node holds a secret
        runtime.state["token"] = SECRET
        runtime.emit("second", {"token": SECRET})
        return "first"

    def second(x: Any, *, runtime: Any, context: Any) -> Any:
        calls.append("second")
        assert x == {"token": SECRET}
        assert runtime.state["token"] == SECRET
        return "second"

    workload = CodonWorkload(name="kms", version="1", org_namespace="t", redactor=_policy(kms))
    workload.add_node(first, "first", "r")
    workload.add_node(second, "second", "r")
    workload.add_edge("first", "second")
    url = f"sqlite:///{tmp_path / 'kms.db'}"
    with pytest.raises(SealingKeyError, match="test-kms failed") as err:
        workload.execute({"n": 1}, deployment_id="d", store=url, run_id="r3")
    assert err.value.run_id == "r3"
    assert err.value.source == "test-kms"
    assert err.value.report is not None
    assert err.value.report.status == "interrupted"
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert SECRET.encode() not in raw
    events = [parse_entry(e) for e in err.value.report.entries]
    types = [e.type for e in events]
    assert "node_completed" not in types  # nothing of the activation was recorded
    assert types[-2:] == ["node_failed", "run_interrupted"]
    assert events[-1].metadata["kind"] == "sealing_key"
    assert "test-kms" in events[-2].metadata["exception"]
    # the key source is back: the run resumes and the activation runs again, sealed
    kms.up = True
    report = workload.resume("r3", store=url)
    assert report.status == "completed"
    assert calls == ["first", "first", "second"]
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert SECRET.encode() not in raw
    assert b"[SEALED:credential_key:" in raw  # under the key "token": sealed whole
    assert verify_run(url, "r3").ok


def test_a_failing_key_source_refuses_a_new_run_before_it_is_recorded() -> None:
    kms = SwitchableKMS()
    kms.up = False
    workload = CodonWorkload(name="kms2", version="1", org_namespace="t", redactor=_policy(kms))
    workload.add_node(lambda x, *, runtime, context: x, "n", "r")
    store = MemoryStore()
    with pytest.raises(SealingKeyError, match="test-kms failed"):
        workload.execute(SECRET, deployment_id="d", store=store, run_id="r4")
    assert not store.has_run("r4")


@pytest.mark.parametrize("sealed", [True, False])
def test_a_retried_attempt_gets_the_real_state_back_never_a_marker(sealed: bool) -> None:
    """A failed attempt's writes are rolled back to the recorded value: the value itself,
    not its ledger form (masked or sealed)."""
    attempts: list[Any] = []

    def put(x: Any, *, runtime: Any, context: Any) -> Any:
        runtime.state["cfg"] = {"key": SECRET}
        runtime.emit("use", 1)
        return "put"

    def use(x: Any, *, runtime: Any, context: Any) -> Any:
        cfg = runtime.state["cfg"]
        attempts.append(cfg["key"])
        cfg["key"] = "scribbled"
        if len(attempts) == 1:
            raise RuntimeError("first attempt fails")
        return "used"

    policy = _policy() if sealed else Redactor(key=b"runs-test")
    workload = CodonWorkload(name="retry", version="1", org_namespace="t", redactor=policy)
    workload.add_node(put, "put", "r")
    workload.add_node(use, "use", "r", retry=2)
    workload.add_edge("put", "use")
    report = workload.execute(None, deployment_id="d", store=MemoryStore(), run_id="r5")
    assert report.status == "completed"
    assert attempts == [SECRET, SECRET]


def test_resume_with_masked_values_logs_and_records_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def ask(x: Any, *, runtime: Any, context: Any) -> Any:
        runtime.state["key"] = x
        runtime.interrupt("go on?")
        return runtime.state["key"]

    workload = CodonWorkload(
        name="masked", version="1", org_namespace="t", redactor=Redactor(key=b"k")
    )
    workload.add_node(ask, "ask", "r")
    url = f"sqlite:///{tmp_path / 'm.db'}"
    paused = workload.execute(SECRET, deployment_id="d", store=url, run_id="r6")
    assert paused.status == "interrupted"
    with caplog.at_level(logging.WARNING, logger="codon_sdk.runtime"):
        report = workload.resume("r6", store=url, input="yes")
    assert "masked value(s) (api_key: 1)" in caplog.text
    assert "r6" in caplog.text
    assert report.node_results("ask")[0].startswith("[REDACTED:api_key:")
    resumed = next(parse_entry(e) for e in report.entries if b'"run_resumed"' in e)
    assert resumed.metadata["masked"] == {"values": 1, "kinds": [["api_key", 1]]}


def test_a_sealed_interrupt_input_is_given_back_on_replay(tmp_path: Path) -> None:
    """The input given to an interrupted node is sealed too, and opened when replayed."""
    got: list[Any] = []

    def ask(x: Any, *, runtime: Any, context: Any) -> Any:
        got.append(runtime.interrupt("your key?"))
        return "ok"

    workload = CodonWorkload(name="ask", version="1", org_namespace="t", redactor=_policy())
    workload.add_node(ask, "ask", "r")
    url = f"sqlite:///{tmp_path / 'i.db'}"
    workload.execute("start", deployment_id="d", store=url, run_id="r7")
    report = workload.resume("r7", store=url, input=SECRET)
    assert report.status == "completed"
    assert got == [SECRET]
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert SECRET.encode() not in raw
    assert b"[SEALED:api_key:" in raw
    replay = workload.replay("r7", store=url)
    assert replay.identical, replay.summary()
    assert got == [SECRET, SECRET]


def _rotating_workload(policy: Redactor, seen: list[Any]) -> CodonWorkload:
    def call(x: Any, *, runtime: Any, context: Any) -> Any:
        seen.append(x)
        answer = runtime.effect("lookup", lambda key: f"token for {key}", x)
        runtime.state["key"] = x
        return {"answer": answer, "key": x}

    workload = CodonWorkload(name="rotate", version="1", org_namespace="t", redactor=policy)
    workload.add_node(call, "call", "r")
    return workload


def test_a_replay_after_a_key_rotation_is_identical_on_the_real_values() -> None:
    other = bytes(range(64, 96))
    seen: list[Any] = []
    store = MemoryStore()
    first = _rotating_workload(_policy(StaticSealingKeys([KEY])), seen)
    first.execute(SECRET, deployment_id="d", store=store, run_id="r8")
    rotated = _rotating_workload(_policy(StaticSealingKeys([other, KEY])), seen)
    replay = rotated.replay("r8", store=store)
    assert replay.identical, replay.summary()
    assert seen == [SECRET, SECRET]
    replayed = "\n".join(e.decode() for e in replay.report.entries)
    assert SECRET not in replayed
    assert ":" + key_id_of(other) + ":" in replayed  # re-recorded under the new key


def test_a_forged_marker_in_the_input_makes_resume_refuse_not_decode(tmp_path: Path) -> None:
    """Text shaped like a sealed marker (pasted from elsewhere, or planted) is kept as it is
    when recorded; it does not open with this deployment's keys, so resume refuses, and
    nothing is imported or run while it tries."""
    forged = "[SEALED:api_key:0123456789ab:" + key_id_of(KEY) + ":" + "A" * 60 + "]"
    ran: list[Any] = []

    def node(x: Any, *, runtime: Any, context: Any) -> Any:
        ran.append(x)
        runtime.interrupt("pause")
        return x

    workload = CodonWorkload(name="forged", version="1", org_namespace="t", redactor=_policy())
    workload.add_node(node, "node", "r")
    url = f"sqlite:///{tmp_path / 'f.db'}"
    workload.execute({"text": forged}, deployment_id="d", store=url, run_id="r9")
    assert ran == [{"text": forged}]
    with watched() as events, pytest.raises(SealingKeyError, match="does not open") as err:
        workload.resume("r9", store=url, input="go")
    assert forbidden(events) == []
    assert err.value.run_id == "r9"
    assert len(ran) == 1


def test_an_interrupt_default_holding_a_secret_is_given_back_sealed_not_as_a_marker(
    tmp_path: Path,
) -> None:
    got: list[Any] = []

    def ask(x: Any, *, runtime: Any, context: Any) -> Any:
        got.append(runtime.interrupt("which key?", default=SECRET))
        return "ok"

    workload = CodonWorkload(name="dflt", version="1", org_namespace="t", redactor=_policy())
    workload.add_node(ask, "ask", "r")
    url = f"sqlite:///{tmp_path / 'd.db'}"
    workload.execute("start", deployment_id="d", store=url, run_id="r10")
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert SECRET.encode() not in raw
    report = workload.resume("r10", store=url)  # no input: the declared default
    assert report.status == "completed"
    assert got == [SECRET]
