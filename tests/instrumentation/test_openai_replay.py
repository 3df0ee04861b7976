"""Replay compares each recorded OpenAI call's request with the one today's code sends.

The agent (``_prompted``: ``ask`` then ``review``, both calling the real ``openai``
client) runs durably on SQLite against the local OpenAI-protocol server. Replaying
after a prompt change in ``ask`` serves the recorded answers and reports
``request changed`` with both prompts; ``codon replay`` exits 1 for it. With
``live=["ask"]`` the replay sends ``ask``'s call to the server, and only that one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from codon_sdk.cli import main as codon
from codon_sdk.errors import ReplayError
from codon_sdk.ledger._events import EFFECT_RECORDED, LedgerEvent, parse_entry
from codon_sdk.stores import LedgerStore, open_store
from codon_sdk.testing import OpenAIProtocolServer, bundled_recordings, echo_fallback

from . import _prompted
from ._openai_support import API_KEY, instrumented
from ._prompted import ASK_V1, ASK_V2, REVIEW, URL_ENV, build_v1, build_v2

RUN = "ticket-1"
TICKET = "I was charged twice for my order"


@pytest.fixture(autouse=True)
def _instrumented(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("ORG_NAMESPACE", "test-org")
    with instrumented():
        yield


@pytest.fixture
def ledger_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def store(ledger_url: str) -> Iterator[LedgerStore]:
    opened = open_store(ledger_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIProtocolServer]:
    """The OpenAI-protocol server (echoing anything no recording matches), at ``URL_ENV``."""
    with OpenAIProtocolServer(bundled_recordings(), fallback=echo_fallback) as running:
        monkeypatch.setenv(URL_ENV, running.base_url)
        yield running


def _record(store: LedgerStore, server: OpenAIProtocolServer) -> None:
    report = build_v1().execute(TICKET, deployment_id="prod", store=store, run_id=RUN)
    assert report.node_results("ask") == [f"echo: {ASK_V1} {TICKET}"]
    assert len(server.requests) == 2


def _effects(store: LedgerStore) -> list[LedgerEvent]:
    events = [parse_entry(e) for e in store.read(RUN)]
    return [e for e in events if e.type == EFFECT_RECORDED]


def _prompts(server: OpenAIProtocolServer, since: int = 0) -> list[str]:
    """The user prompt of every request the server received (from request ``since`` on)."""
    return [r.body["messages"][-1]["content"] for r in server.requests[since:]]


def test_each_call_records_its_request_once_with_the_llm_metadata(
    store: LedgerStore, server: OpenAIProtocolServer
) -> None:
    """The request (model, messages, parameters) is the call's ``llm.request``; the effect's
    ``request`` points there instead of storing it twice, and holds no credential."""
    _record(store, server)
    effects = _effects(store)
    assert [e.metadata["request"] for e in effects] == [{"value_at": "llm.request"}] * 2
    assert effects[0].metadata["llm"]["request"] == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": f"{ASK_V1} {TICKET}"}],
        "temperature": 0,
    }
    assert all(API_KEY not in bytes(entry).decode() for entry in store.read(RUN))


def test_unchanged_code_replays_identically_with_the_server_stopped(
    store: LedgerStore, server: OpenAIProtocolServer
) -> None:
    _record(store, server)
    server.stop()
    outcome = build_v1().replay(RUN, store=store)
    assert outcome.identical, outcome.summary()
    assert len(server.requests) == 2


def test_a_changed_prompt_is_a_request_divergence_showing_both_prompts(
    store: LedgerStore, server: OpenAIProtocolServer
) -> None:
    """The recorded answer is still served (the server is stopped), so the rest of the run
    is compared: nothing else differs."""
    _record(store, server)
    server.stop()
    before = store.read(RUN)

    outcome = build_v2().replay(RUN, store=store)

    assert not outcome.identical
    assert [d.what for d in outcome.divergences] == ["request changed"]
    (changed,) = outcome.divergences
    assert changed.node == "ask"
    assert changed.effect == "openai.chat #0"
    recorded_effect = _effects(store)[0]
    assert changed.seq == recorded_effect.seq
    assert changed.expected["messages"][0]["content"] == f"{ASK_V1} {TICKET}"
    assert changed.actual["messages"][0]["content"] == f"{ASK_V2} {TICKET}"
    summary = outcome.summary()
    assert "request changed" in summary
    assert f"{ASK_V1} {TICKET}" in summary
    assert f"{ASK_V2} {TICKET}" in summary
    as_dict = outcome.to_dict()["divergences"][0]
    assert as_dict["what"] == "request changed"
    assert as_dict["differences"] == list(changed.differences)
    assert "['messages'][0]['content']" in changed.differences[0]
    # served from the ledger: the recorded answers, nothing sent, nothing written
    assert outcome.report is not None
    assert outcome.report.node_results("ask") == [f"echo: {ASK_V1} {TICKET}"]
    assert len(server.requests) == 2
    assert store.read(RUN) == before


def test_codon_replay_exits_1_for_a_changed_prompt_and_0_for_unchanged_code(
    ledger_url: str,
    store: LedgerStore,
    server: OpenAIProtocolServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _record(store, server)
    server.stop()
    spec = _prompted.__name__
    argv = ["replay", RUN, "--ledger", ledger_url, "--workload"]
    assert codon([*argv, f"{spec}:build_v1"]) == 0
    assert "IDENTICAL" in capsys.readouterr().out
    assert codon([*argv, f"{spec}:build_v2"]) == 1
    out = capsys.readouterr().out
    assert "request changed" in out
    assert ASK_V1 in out
    assert ASK_V2 in out
    assert codon([*argv, f"{spec}:build_v2", "--json"]) == 1
    shown = json.loads(capsys.readouterr().out)
    assert shown["divergences"][0]["what"] == "request changed"


def test_live_replay_calls_the_server_for_that_node_alone(
    store: LedgerStore, server: OpenAIProtocolServer
) -> None:
    """``live=["ask"]`` sends ask's new prompt to the server, exactly once; ``review`` is served
    from the ledger, and since today's ask answers differently, its request changed too."""
    _record(store, server)
    sent = len(server.requests)
    before = store.read(RUN)

    outcome = build_v2().replay(RUN, store=store, live=["ask"])

    assert _prompts(server, sent) == [f"{ASK_V2} {TICKET}"]
    assert outcome.live == ("ask",)
    assert "live nodes" in outcome.summary()
    assert outcome.to_dict()["live"] == ["ask"]
    assert outcome.report is not None
    assert outcome.report.node_results("ask") == [f"echo: {ASK_V2} {TICKET}"]
    assert outcome.report.node_results("review") == [
        f"echo: {REVIEW} echo: {ASK_V1} {TICKET}"  # the recorded answer, served
    ]
    changed = {(d.node, d.what) for d in outcome.divergences}
    assert ("ask", "request changed") in changed
    assert ("review", "request changed") in changed
    assert ("ask", "the node returned a different result") in changed
    assert store.read(RUN) == before  # replay writes nothing


def test_live_replay_of_unchanged_code_is_identical(
    store: LedgerStore, server: OpenAIProtocolServer
) -> None:
    """The same prompt sent again gets the same answer: one request, nothing differs."""
    _record(store, server)
    sent = len(server.requests)
    outcome = build_v1().replay(RUN, store=store, live=["ask"])
    assert outcome.identical, outcome.summary()
    assert _prompts(server, sent) == [f"{ASK_V1} {TICKET}"]


def test_codon_replay_live_option_is_repeatable(
    ledger_url: str,
    store: LedgerStore,
    server: OpenAIProtocolServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _record(store, server)
    sent = len(server.requests)
    spec = f"{_prompted.__name__}:build_v1"
    argv = ["replay", RUN, "--ledger", ledger_url, "--workload", spec]
    assert codon([*argv, "--live", "ask", "--live", "review"]) == 0, capsys.readouterr()
    assert "live nodes (effects and LLM calls made for real): ask, review" in (
        capsys.readouterr().out
    )
    assert _prompts(server, sent) == [
        f"{ASK_V1} {TICKET}",
        f"{REVIEW} echo: {ASK_V1} {TICKET}",
    ]


def test_an_unknown_live_node_is_an_error_naming_the_known_nodes(
    ledger_url: str,
    store: LedgerStore,
    server: OpenAIProtocolServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _record(store, server)
    with pytest.raises(ReplayError, match=r"'asks'.*nodes are: ask, review"):
        build_v1().replay(RUN, store=store, live=["asks"])
    with pytest.raises(ReplayError, match=r"list of node names.*\['ask'\]"):
        build_v1().replay(RUN, store=store, live="ask")
    spec = f"{_prompted.__name__}:build_v1"
    code = codon(["replay", RUN, "--ledger", ledger_url, "--workload", spec, "--live", "x"])
    assert code == 2
    err = capsys.readouterr().err
    assert "ask, review" in err
    assert "Traceback" not in err
    assert len(server.requests) == 2


def test_areplay_takes_live_too(store: LedgerStore, server: OpenAIProtocolServer) -> None:
    import asyncio

    _record(store, server)
    sent = len(server.requests)
    outcome: Any = asyncio.run(build_v1().areplay(RUN, store=store, live=["review"]))
    assert outcome.identical, outcome.summary()
    assert _prompts(server, sent) == [f"{REVIEW} echo: {ASK_V1} {TICKET}"]
