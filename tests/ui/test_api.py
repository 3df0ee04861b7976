"""The explorer's JSON API over a real uvicorn server: pages, filters, error bodies, token."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.audit._tamper import Database, edit

from codon_sdk import open_store
from codon_sdk.errors import ExplorerError
from codon_sdk.ui import ExplorerServer

from . import _runs

SMALL = 120
TOKEN = "test-token-0123456789abcdef"


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("ui-api") / "ledger.db"
    url = f"sqlite:///{path}"
    before = time.time_ns() // 1000
    _runs.record_small(url, SMALL)
    middle = time.time_ns() // 1000
    _runs.record_paused(url)
    _runs.record_big_payload(url)
    _runs.record_corrupt(url, path)
    _runs.record_stale(url, path)
    _runs.record_fork(url)
    return {"url": url, "path": path, "before": before, "middle": middle}


@pytest.fixture(scope="module")
def client(ledger: dict[str, Any]) -> Iterator[httpx.Client]:
    store = open_store(ledger["url"])
    try:
        with (
            ExplorerServer(store, port=0) as server,
            httpx.Client(base_url=server.base_url, timeout=30) as http,
        ):
            yield http
    finally:
        store.close()


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()["error"]
    assert body["status"] == status
    assert body["code"] == code
    assert body["message"]
    return str(body["message"])


# ---------------------------------------------------------------- pagination


def test_runs_are_paged_newest_first_without_gaps_or_repeats(client: httpx.Client) -> None:
    seen: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = client.get("/api/runs", params={"offset": offset, "limit": 50}).json()
        assert page["limit"] == 50
        assert page["offset"] == offset
        assert len(page["items"]) <= 50
        seen += [r["run_id"] for r in page["items"]]
        offset = page["next_offset"]
    total = SMALL + 5
    assert len(seen) == len(set(seen)) == total
    assert seen[:5] == [_runs.FORKED, _runs.STALE, _runs.CORRUPT, _runs.BIG, _runs.PAUSED]
    assert seen[5:] == [f"small-{i:03d}" for i in reversed(range(SMALL))]
    last = client.get("/api/runs", params={"offset": 100, "limit": 50}).json()
    assert len(last["items"]) == total - 100
    assert last["next_offset"] is None
    assert last["total"] == total


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"limit": 0}, "limit between 1 and 500"),
        ({"limit": 501}, "limit between 1 and 500"),
        ({"offset": -1}, "offset must be >= 0"),
        ({"offset": "ten"}, "must be integers"),
        ({"status": "exploded"}, "status must be one of"),
        ({"since": "yesterday"}, "since must be an ISO 8601 time"),
    ],
)
def test_bad_query_values_get_400_with_a_json_body(
    client: httpx.Client, params: dict[str, Any], fragment: str
) -> None:
    message = _error(client.get("/api/runs", params=params), 400, "bad_request")
    assert fragment in message


def test_a_run_summary_carries_counts_cost_and_the_verdict(client: httpx.Client) -> None:
    (run,) = client.get("/api/runs", params={"q": "small-007"}).json()["items"]
    assert run["status"] == "completed"
    assert run["activations"] == 2
    assert run["verification"] == "unanchored"
    assert run["tampered"] is False
    assert run["event_count"] > 0
    assert run["duration_ms"] >= 0


# ---------------------------------------------------------------- filters


def _ids(client: httpx.Client, **params: Any) -> list[str]:
    page = client.get("/api/runs", params={"limit": 500, **params}).json()
    return [r["run_id"] for r in page["items"]]


def test_filters_by_status_workload_deployment_logic_search_and_time(
    client: httpx.Client, ledger: dict[str, Any]
) -> None:
    assert _ids(client, status="interrupted") == [_runs.PAUSED]
    assert _ids(client, status="pending_approval") == [_runs.PAUSED]
    assert _ids(client, status="stale") == [_runs.STALE]
    assert _ids(client, workload="big") == [_runs.BIG]
    staging = _ids(client, deployment="staging", workload="counter")
    odd = [f"small-{i:03d}" for i in reversed(range(SMALL)) if i % 2]
    assert staging == [_runs.FORKED, *odd]  # the fork keeps small-001's deployment
    assert _ids(client, q="SMALL-11") == [f"small-{i}" for i in range(119, 109, -1)]
    logic = client.get("/api/runs", params={"q": _runs.BIG}).json()["items"][0]["logic_id"]
    assert _ids(client, logic_id=logic[:12]) == [_runs.BIG]
    after = _ids(client, since=str(ledger["middle"]))
    assert after == [_runs.FORKED, _runs.STALE, _runs.CORRUPT, _runs.BIG, _runs.PAUSED]
    assert len(_ids(client, until=str(ledger["middle"]))) == SMALL
    assert _ids(client, since="2999-01-01T00:00:00Z") == []


def test_fork_parents_and_children_are_linked(client: httpx.Client) -> None:
    (parent,) = client.get("/api/runs", params={"q": "small-001"}).json()["items"]
    assert parent["children"] == [_runs.FORKED]
    (child,) = client.get("/api/runs", params={"q": _runs.FORKED}).json()["items"]
    assert child["parent_run_id"] == "small-001"
    assert client.get(f"/api/runs/{_runs.FORKED}").json()["run"]["parent_run_id"] == "small-001"
    assert client.get("/api/runs/small-001").json()["run"]["children"] == [_runs.FORKED]


# ---------------------------------------------------------------- one run


def test_activations_and_events_are_paged(client: httpx.Client) -> None:
    first = client.get("/api/runs/small-000/events", params={"limit": 3}).json()
    assert [e["seq"] for e in first["items"]] == [0, 1, 2]
    assert first["items"][0]["type"] == "run_started"
    rest = client.get("/api/runs/small-000/events", params={"offset": 3, "limit": 500}).json()
    assert rest["items"][0]["seq"] == 3
    assert first["total"] == rest["total"] == 3 + len(rest["items"])
    acts = client.get("/api/runs/small-000/activations", params={"limit": 1}).json()
    assert [a["node"] for a in acts["items"]] == ["count"]
    assert acts["next_offset"] == 1
    only = client.get("/api/runs/small-000/activations", params={"node": "double"}).json()
    assert [a["node"] for a in only["items"]] == ["double"]
    detail = client.get("/api/runs/small-000/activations/1").json()
    assert detail["input"]["payload"] == 1
    assert detail["result"] == 2


def test_a_huge_value_is_clipped_in_pages_and_whole_in_its_event(client: httpx.Client) -> None:
    acts = client.get(f"/api/runs/{_runs.BIG}/activations/0").json()
    clipped = acts["result"]
    assert clipped["$clipped"] is True
    assert clipped["bytes"] == len(_runs.BIG_TEXT) + 2
    assert len(clipped["preview"]) < 5000
    seq = acts["end_seq"]
    whole = client.get(f"/api/runs/{_runs.BIG}/events/{seq}").json()
    assert whole["payload"] == _runs.BIG_TEXT


def test_a_corrupt_entry_gives_a_tampered_verdict_and_the_rest_of_the_run(
    client: httpx.Client,
) -> None:
    detail = client.get(f"/api/runs/{_runs.CORRUPT}")
    assert detail.status_code == 200
    body = detail.json()
    assert body["verification"]["status"] == "tampered"
    assert body["run"]["tampered"] is True
    assert body["unreadable"] == [3]
    assert any(f["seq"] == 3 for f in body["verification"]["findings"])
    event = client.get(f"/api/runs/{_runs.CORRUPT}/events/3").json()
    assert "not valid JSON" in event["unreadable"]
    assert client.get("/api/runs/small-001").status_code == 200  # the others still serve


def test_unknown_things_get_404_with_a_json_body(client: httpx.Client) -> None:
    assert "no run 'nope'" in _error(client.get("/api/runs/nope"), 404, "run_not_found")
    _error(client.get("/api/runs/nope/events"), 404, "run_not_found")
    _error(client.get("/api/runs/small-000/activations/99"), 404, "activation_not_found")
    _error(client.get("/api/runs/small-000/events/9999"), 404, "event_not_found")
    _error(client.get("/api/runs/small-000/tokens/t999"), 404, "token_not_found")
    _error(client.get("/api/nothing/here"), 404, "not_found")
    _error(client.get("/api/runs/small-000/activations/one"), 400, "bad_request")
    _error(client.get("/api/runs/small-000/graph", params={"format": "png"}), 400, "bad_request")
    _error(client.get("/api/compare", params={"left": "small-000"}), 400, "bad_request")
    _error(client.get("/api/runs/small-000/replay"), 409, "workload_not_loaded")
    _error(client.post("/api/runs"), 405, "method_not_allowed")


def test_token_lineage_graph_and_compare(client: httpx.Client) -> None:
    token = client.get("/api/runs/small-003/tokens/t2").json()
    assert token["emitted_by"]["node"] == "count"
    assert [a["node"] for a in token["consumed_by"]] == ["double"]
    mermaid = client.get("/api/runs/small-003/graph", params={"format": "mermaid"}).text
    assert mermaid.startswith("flowchart LR")
    assert "count x1" in mermaid
    dot = client.get("/api/runs/small-003/graph", params={"format": "dot"}).text
    assert dot.startswith("digraph codon {")
    compared = client.get("/api/compare", params={"left": "small-003", "right": "small-005"})
    first = compared.json()["first_divergence"]
    assert (first["index"], first["what"], first["left"], first["right"]) == (0, "input", 3, 5)
    same = client.get("/api/compare", params={"left": "small-003", "right": "small-003"}).json()
    assert same["first_divergence"] is None


def test_the_openapi_document_names_every_route(client: httpx.Client) -> None:
    doc = client.get("/api/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    assert {"/api/runs", "/api/runs/{run_id}", "/api/runs/{run_id}/events"} <= set(doc["paths"])
    params = {p["name"] for p in doc["paths"]["/api/runs"]["get"]["parameters"]}
    assert {"offset", "limit", "status", "workload", "deployment", "logic_id", "q"} <= params


def test_pages_forbid_scripts_and_requests_from_elsewhere(client: httpx.Client) -> None:
    page = client.get("/")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'self'" in csp
    assert "http" not in page.text.replace("http-equiv", "")  # every asset from this server
    assert client.get("/assets/app.js").headers["content-type"].startswith("text/javascript")
    _error(client.get("/assets/other.js"), 404, "not_found")


def test_a_request_for_another_host_name_is_refused_without_a_token(
    client: httpx.Client,
) -> None:
    """A web page elsewhere cannot read the ledger through DNS rebinding."""
    response = client.get("/api/runs", headers={"host": "attacker.example"})
    assert response.status_code == 400


# ---------------------------------------------------------------- token


def test_listening_beyond_loopback_needs_a_token(ledger: dict[str, Any]) -> None:
    with open_store(ledger["url"]) as store, pytest.raises(ExplorerError, match="needs a token"):
        ExplorerServer(store, host="0.0.0.0", port=0)
    with open_store(ledger["url"]) as store, pytest.raises(ExplorerError, match="at least 16"):
        ExplorerServer(store, port=0, token="short")


def test_beyond_loopback_every_request_without_the_token_gets_401(
    ledger: dict[str, Any],
) -> None:
    with (
        open_store(ledger["url"]) as store,
        ExplorerServer(store, host="0.0.0.0", port=0, token=TOKEN) as server,
    ):
        assert server.url.endswith(f"?token={TOKEN}")
        base = f"http://127.0.0.1:{server.port}"
        with httpx.Client(base_url=base, timeout=30) as http:
            for path in ("/api/runs", "/", "/assets/app.js", "/api/runs/small-000"):
                _error(http.get(path), 401, "unauthorized")
            _error(
                http.get("/api/runs", headers={"authorization": "Bearer wrong"}),
                401,
                "unauthorized",
            )
            _error(http.get("/api/runs", params={"token": TOKEN[:-1]}), 401, "unauthorized")
            ok = http.get("/api/runs", headers={"authorization": f"Bearer {TOKEN}"})
            assert ok.status_code == 200
            assert ok.json()["total"] == SMALL + 5
            first = http.get("/", params={"token": TOKEN})  # the URL codon ui prints
            assert first.status_code == 200
            assert "codon_ui_token" in first.headers["set-cookie"]
            assert "HttpOnly" in first.headers["set-cookie"]
            assert http.get("/api/runs").status_code == 200  # the cookie carries it now


def test_an_edit_made_after_a_run_was_shown_turns_it_tampered_within_the_recheck(
    tmp_path: Path,
) -> None:
    """The cache never hides an edit: a due verdict is checked again (aside), and the next
    look after that says tampered."""
    from codon_sdk.ui._explorer import Explorer

    path = tmp_path / "ledger.db"
    url = f"sqlite:///{path}"
    _runs.counter_workload(1).execute(1, deployment_id="prod", store=url, run_id="later")
    with open_store(url) as store:
        explorer = Explorer(store, recheck_s=0.05)
        assert explorer.view("later").verification.status == "unanchored"  # type: ignore[union-attr]
        db = Database("sqlite", path)
        try:
            db.set_entry("later", 3, edit(db.entries("later")[3], _runs._forge))
        finally:
            db.close()
        deadline = time.monotonic() + 10
        status = None
        while time.monotonic() < deadline:
            time.sleep(0.06)
            view = explorer.view("later")
            status = view.verification.status  # type: ignore[union-attr]
            if status == "tampered":
                break
        assert status == "tampered"
        assert 999 in [e.get("payload") for e in view.events(range(view.event_count))]
