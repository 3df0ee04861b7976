"""Replay compares what each ``runtime.effect`` was asked for with what today's code asks.

The ``_priced`` agent makes real HTTP calls as recorded effects, durably on SQLite.
Its arguments are recorded with each effect; replaying code that passes another
argument serves the recorded answer (the service is stopped and counts requests)
and reports ``request changed`` with both requests; ``live=["price"]`` calls the
service for that node alone. A request too large to keep whole is compared by
digest; a recording without a request (an older SDK) has nothing to compare; a
malformed one is reported, never trusted, never a crash.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from codon_sdk import CodonWorkload
from codon_sdk.ledger._events import EFFECT_RECORDED, LedgerEvent, parse_entry
from codon_sdk.ledger._merkle import leaf_hash
from codon_sdk.redaction import Redactor
from codon_sdk.runtime._request import REQUEST_VALUE_CAP, Request, ask, compare_request
from codon_sdk.stores import LedgerStore, open_store

from . import _priced
from ._checks import codon
from ._priced import PriceService, build_v1, build_v2
from ._tamper import Database, edit, rechain

RUN = "order-1"
OPENER_TYPE = "urllib.request.OpenerDirector"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[LedgerStore]:
    opened = open_store(f"sqlite:///{db_path}")
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def shop() -> Iterator[PriceService]:
    service = PriceService()
    try:
        yield service
    finally:
        service.stop()


def _record(store: LedgerStore, shop: PriceService, workload: CodonWorkload | None = None) -> None:
    (workload or build_v1()).execute(
        None, deployment_id="prod", store=store, run_id=RUN, shop=shop.url
    )
    assert len(shop.paths) == 2


def _effects(store: LedgerStore) -> list[LedgerEvent]:
    return [e for e in map(parse_entry, store.read(RUN)) if e.type == EFFECT_RECORDED]


def _rewrite_effects(db_path: Path, store: LedgerStore, change: Any) -> None:
    """Rewrite every recorded effect's metadata with ``change`` and re-link the chain (a store
    without a notary: what an older SDK, or an attacker, leaves behind)."""
    entries = store.read(RUN)
    changed = [
        edit(e, lambda obj: change(obj["metadata"])) if b'"effect_recorded"' in e else e
        for e in entries
    ]
    forged = rechain(changed)
    db = Database("sqlite", db_path)
    try:
        db.rewrite_run(RUN, forged)
        db.update_run(RUN, head=leaf_hash(forged[-1]).hex())
    finally:
        db.close()


def test_an_effect_records_its_arguments_and_names_what_has_no_encoding(
    store: LedgerStore, shop: PriceService
) -> None:
    """The opener passed as an argument cannot be encoded: the effect still runs and records,
    the opener as its type name, listed under ``unrecorded``."""
    _record(store, shop)
    price, stock = _effects(store)
    assert price.metadata["request"] == {
        "value": {
            "args": [f"<unrecorded: {OPENER_TYPE}>", f"{shop.url}/price", "sku-1"],
            "kwargs": {"qty": 2},
        },
        "unrecorded": [f"$['args'][0]: {OPENER_TYPE}"],
    }
    assert stock.metadata["request"]["value"]["kwargs"] == {"qty": 0}


def test_unchanged_code_replays_identically_with_the_service_stopped(
    store: LedgerStore, shop: PriceService
) -> None:
    _record(store, shop)
    shop.stop()
    outcome = build_v1().replay(RUN, store=store)
    assert outcome.identical, outcome.summary()
    assert len(shop.paths) == 2


def test_a_changed_argument_is_request_changed_and_the_recording_is_still_served(
    store: LedgerStore, shop: PriceService
) -> None:
    _record(store, shop)
    shop.stop()
    before = store.read(RUN)

    outcome = build_v2().replay(RUN, store=store)

    assert [d.what for d in outcome.divergences] == ["request changed"]
    (changed,) = outcome.divergences
    assert (changed.node, changed.effect, changed.seq) == (
        "price",
        "price #0",
        _effects(store)[0].seq,
    )
    assert changed.expected["kwargs"] == {"qty": 2}
    assert changed.actual["kwargs"] == {"qty": 3}
    assert changed.differences == ("$['kwargs']['qty']: recorded 2, replay 3",)
    assert "request changed (effect price #0): $['kwargs']['qty']: recorded 2, replay 3" in (
        outcome.summary()
    )
    assert outcome.report is not None
    assert outcome.report.node_results("price") == [_effects(store)[0].payload["cents"]]
    assert len(shop.paths) == 2
    assert store.read(RUN) == before


def test_codon_replay_exits_1_for_a_changed_argument(
    db_path: Path, store: LedgerStore, shop: PriceService
) -> None:
    _record(store, shop)
    shop.stop()
    argv = ["replay", RUN, "--ledger", f"sqlite:///{db_path}", "--workload"]
    code, out, err = codon(*argv, f"{_priced.__name__}:build_v1")
    assert code == 0, out + err
    code, out, _ = codon(*argv, f"{_priced.__name__}:build_v2")
    assert code == 1
    assert "recorded 2, replay 3" in out


def test_live_replay_calls_the_service_for_that_node_alone(
    store: LedgerStore, shop: PriceService
) -> None:
    """``live=["price"]`` makes price's call with today's argument, once; check's is served."""
    _record(store, shop)
    outcome = build_v2().replay(RUN, store=store, live=["price"])
    assert shop.paths[2:] == ["/price?sku=sku-1&qty=3"]
    assert ("price", "request changed") in {(d.node, d.what) for d in outcome.divergences}
    assert outcome.live == ("price",)


def test_live_replay_of_unchanged_code_is_identical(store: LedgerStore, shop: PriceService) -> None:
    _record(store, shop)
    outcome = build_v1().replay(RUN, store=store, live=["check"])
    assert outcome.identical, outcome.summary()
    assert shop.paths[2:] == ["/stock?sku=sku-1&qty=0"]


def test_a_recording_without_requests_replays_as_before(
    db_path: Path, store: LedgerStore, shop: PriceService
) -> None:
    """A ledger of an SDK that recorded no requests: nothing to compare, answers served."""
    _record(store, shop)
    _rewrite_effects(db_path, store, lambda meta: meta.pop("request"))
    shop.stop()
    assert all("request" not in e.metadata for e in _effects(store))
    outcome = build_v2().replay(RUN, store=store)
    assert outcome.identical, outcome.summary()


@pytest.mark.parametrize(
    "forged",
    [
        "not an object",
        {},
        {"value_at": "llm.request"},
        {"value_at": 7},
        {"sha256": "zz", "size": 3},
        {"sha256": "ab" * 32, "size": -1},
        {"sha256": "ab" * 32, "size": True},
        {"value": 1, "unrecorded": "args"},
        {"value": [[[[1]]]], "unrecorded": [3]},
    ],
)
def test_a_malformed_recorded_request_is_reported_not_trusted(
    db_path: Path, store: LedgerStore, shop: PriceService, forged: Any
) -> None:
    """Every byte read back is hostile: a recorded request that cannot be read is a
    ``request changed`` saying so, and the replay goes on."""
    _record(store, shop)

    def plant(meta: dict[str, Any]) -> None:
        meta["request"] = forged

    _rewrite_effects(db_path, store, plant)
    shop.stop()
    outcome = build_v1().replay(RUN, store=store)
    assert [d.what for d in outcome.divergences] == ["request changed"] * 2
    assert all("unreadable" in d.differences[0] for d in outcome.divergences)
    assert outcome.report is not None
    assert outcome.report.status == "completed"


def test_a_deeply_nested_recorded_request_is_reported_not_a_crash() -> None:
    """Nesting past what the canonical encoder takes is a finding, as verify's would be."""
    deep: Any = 1
    for _ in range(400):
        deep = [deep]
    changed = compare_request({"request": {"value": deep}}, ask({}, None))
    assert changed is not None
    assert "unreadable" in changed[2][0]


def _big_request_workload(size: int) -> CodonWorkload:
    def echo(text: str) -> int:
        return len(text)

    def node(message: Any, *, runtime: Any, context: Any) -> int:
        return int(runtime.effect("measure", echo, "x" * size))

    workload = CodonWorkload(name="big", version="1", org_namespace="audit-tests")
    workload.add_node(node, "measure", "r")
    return workload


def test_a_request_over_the_cap_is_recorded_by_digest_and_still_compared(
    store: LedgerStore,
) -> None:
    size = REQUEST_VALUE_CAP + 1
    _big_request_workload(size).execute(None, deployment_id="d", store=store, run_id=RUN)
    (effect,) = _effects(store)
    recorded = effect.metadata["request"]
    assert set(recorded) == {"sha256", "size"}
    assert recorded["size"] == len(orjson.dumps({"args": ["x" * size]}))
    assert len(effect.metadata["request"]["sha256"]) == 64
    assert _big_request_workload(size).replay(RUN, store=store).identical
    outcome = _big_request_workload(size + 1).replay(RUN, store=store)
    (changed,) = outcome.divergences
    assert changed.what == "request changed"
    assert changed.expected == recorded
    assert changed.actual["size"] == recorded["size"] + 1
    assert "only its digest was kept" in changed.differences[0]


def test_a_request_at_the_cap_is_recorded_whole() -> None:
    canonical = orjson.dumps({"args": ["x" * (REQUEST_VALUE_CAP - 13)]})
    assert len(canonical) == REQUEST_VALUE_CAP
    assert "value" in Request(canonical).record({}, None)


def _secret_workload(key: str) -> CodonWorkload:
    def call(token: str) -> str:
        return "ok"

    def node(message: Any, *, runtime: Any, context: Any) -> str:
        return str(runtime.effect("call", call, "key sk-proj-Abc123Def456Ghi789Jkl012Mno345"))

    workload = CodonWorkload(name="secret", version="1", org_namespace="audit-tests")
    workload.redactor = Redactor(key=key)
    workload.add_node(node, "call", "r")
    return workload


def test_a_redacted_secret_compares_equal_under_another_redaction_key(
    store: LedgerStore,
) -> None:
    """Without a shared redaction key each process masks with its own: the markers' hashes
    differ, the requests do not."""
    _secret_workload("a" * 32).execute(None, deployment_id="d", store=store, run_id=RUN)
    (effect,) = _effects(store)
    recorded = effect.metadata["request"]["value"]["args"][0]
    assert recorded.startswith("key [REDACTED:api_key:")
    assert "sk-proj" not in bytes(store.read(RUN)[effect.seq]).decode()
    outcome = _secret_workload("b" * 32).replay(RUN, store=store)
    assert outcome.identical, outcome.summary()
