"""A fuzzed corpus over the entry format: whatever the bytes, every reader gives a verdict.

Hypothesis builds runs from entries that are sometimes well formed and sometimes not (any
JSON in any field, rechained or not, bytes cut or flipped) and feeds them to verification,
the chain check, the rebuild that resume starts from, and the report a reader builds: each
returns a verdict or raises a CodonError naming the problem, never anything else.
"""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.audit._tamper import rechain

from codon_sdk import CodonError
from codon_sdk.identity._canonical import json_canonical
from codon_sdk.ledger._chain import check_chain
from codon_sdk.ledger._merkle import leaf_hash
from codon_sdk.ledger._verify import verify_entries
from codon_sdk.runtime._launch import report_from_trust
from codon_sdk.runtime._trust import check_trust
from codon_sdk.stores._base import RunInfo
from codon_sdk.stores._memory import MemoryStore

TYPES = [
    "run_started",
    "token_enqueued",
    "token_dequeued",
    "node_completed",
    "node_failed",
    "node_retrying",
    "effect_recorded",
    "state_updated",
    "run_interrupted",
    "run_resumed",
    "runtime_stopped",
    "run_finished",
    "custom",
]
_KEYS = ["$codon", "type", "v", "set", "del", "x"]
_json = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=6),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(["$codon", "type", "v", "set", "del", "x"]), inner, max_size=3
        ),
    ),
    max_leaves=10,
)
_field = st.one_of(_json, st.text(max_size=4))
_entry = st.fixed_dictionaries(
    {"v": st.one_of(st.just(1), _json), "type": st.one_of(st.sampled_from(TYPES), _json)},
    optional={
        "run_id": st.one_of(st.just("fuzz"), _field),
        "seq": st.one_of(st.integers(0, 5), _json),
        "ts": st.one_of(st.integers(0, 2**60), _json),
        "node": _field,
        "target": _field,
        "token_id": st.one_of(st.sampled_from(["t1", "t2", "t9"]), _field),
        "parent_token_id": _field,
        "payload": _json,
        "metadata": st.one_of(st.dictionaries(st.text(max_size=8), _json, max_size=4), _json),
        "actor": _field,
        "prev": _field,
    },
)


def _mutate(data: st.DataObject, entries: list[bytes]) -> list[bytes]:
    out = []
    for entry in entries:
        how = data.draw(st.sampled_from(["keep", "keep", "cut", "flip", "junk"]))
        if how == "cut" and entry:
            entry = entry[: data.draw(st.integers(0, len(entry) - 1))]
        elif how == "flip" and entry:
            at = data.draw(st.integers(0, len(entry) - 1))
            entry = (
                entry[:at] + bytes([entry[at] ^ data.draw(st.integers(1, 255))]) + entry[at + 1 :]
            )
        elif how == "junk":
            entry = data.draw(st.binary(max_size=40))
        out.append(entry)
    return out


@settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_every_reader_gives_a_verdict_on_any_entries(data: st.DataObject) -> None:
    """Any run of fuzzed entries: verify, the chain check, the trust check, the rebuild and the
    report each give a verdict or a CodonError, never another exception."""
    objs: list[dict[str, Any]] = data.draw(st.lists(_entry, min_size=1, max_size=6))
    if data.draw(st.booleans()):
        objs[0] = {
            "v": 1,
            "type": "run_started",
            "run_id": "fuzz",
            "seq": 0,
            "ts": 1,
            **{k: v for k, v in objs[0].items() if k in ("metadata", "payload")},
        }
    entries = [json_canonical(obj) for obj in objs]
    if data.draw(st.booleans()):
        # a fuzzed entry too broken for the attacker's tool is used as it is
        with contextlib.suppress(CodonError, KeyError, TypeError, AttributeError):
            entries = rechain(entries, run_id="fuzz")
    if data.draw(st.booleans()):
        entries = _mutate(data, entries)
    report = verify_entries("fuzz", entries, index_says_ended=data.draw(st.booleans()))
    assert report.status in ("verified", "unanchored", "incomplete", "tampered")
    check_chain(entries, run_id="fuzz")
    store = MemoryStore()
    store.begin_run(
        RunInfo(
            run_id="fuzz",
            workload_name="w",
            workload_version="1",
            logic_id="l",
            deployment_id="d",
            status="running",
            started_us=0,
        ),
        [(seq, entry, leaf_hash(entry)) for seq, entry in enumerate(entries)],
    )
    trust = check_trust(store, "fuzz")
    try:
        built = report_from_trust(trust)
    except CodonError:
        return
    built.summary()
    built.to_dict()
    _ = (built.ledger, built.results, built.usage, built.state)


def _recorded() -> list[bytes]:
    from tests.hostile._agent import build

    report = build().execute("widget", deployment_id="dev")
    return list(report.entries)[:-1]  # no run_finished: a resume carries it on


_RECORDED: list[bytes] = []
_FIELDS = ["payload", "metadata", "node", "target", "token_id", "parent_token_id", "actor", "type"]


@settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_a_consistent_chain_with_a_hostile_field_is_a_verdict_for_resume_too(
    data: st.DataObject,
) -> None:
    """A real run with one field of one event replaced by arbitrary JSON, rechained as an
    attacker without the signing key would: the report, the rebuild and resume itself end
    with a report or a CodonError naming the problem, never another exception."""
    from tests.hostile._agent import build

    from codon_sdk.ledger._events import parse_entry
    from codon_sdk.runtime._rebuild import rebuild

    if not _RECORDED:
        _RECORDED.extend(_recorded())
    objs = [orjson.loads(e) for e in _RECORDED]
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(1, len(objs) - 1))
        name = data.draw(st.sampled_from(_FIELDS))
        value = data.draw(_field if name not in ("payload", "metadata") else _json)
        if name in ("metadata",) and not isinstance(value, dict):
            value = {"x": value}
        if name != "metadata" and name != "payload" and not isinstance(value, str):
            value = str(value)
        objs[at][name] = value
    entries = rechain([json_canonical(o) for o in objs])
    store = MemoryStore()
    store.begin_run(
        RunInfo(
            run_id=objs[0]["run_id"],
            workload_name="hostile-agent",
            workload_version="1",
            logic_id="l",
            deployment_id="dev",
            status="running",
            started_us=0,
        ),
        [(seq, entry, leaf_hash(entry)) for seq, entry in enumerate(entries)],
    )
    run_id = objs[0]["run_id"]
    with contextlib.suppress(CodonError):
        report_from_trust(check_trust(store, run_id)).to_dict()
    with contextlib.suppress(CodonError):
        rebuild(parse_entry(e) for e in entries)
    with contextlib.suppress(CodonError):
        build().resume(run_id, store=store, allow_logic_change=True)
