"""The hash chain of a run: ``check_chain`` accepts a real run and names the first broken event.

Every seq of a real run's ledger is changed, dropped and swapped in turn; the
check must fail at that event. Tampered entries are re-encoded with the
reference ``rfc8785`` package, so each tampered entry is itself well-formed JCS:
only the chain can catch it.

A content edit of the *final* event cannot be seen by an unanchored chain (nothing
links to it); it only changes the head hash, which is what a checkpoint anchors.
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any

import pytest
import rfc8785

from codon_sdk import ChainCheck, CodonWorkload, ExecutionReport, check_chain


@functools.lru_cache(maxsize=1)
def _real_run() -> ExecutionReport:
    """A finished run with seeds, emits, custom events, state changes, a loop and a stop."""

    def plan(message: Any, *, runtime: Any, context: Any) -> Any:
        runtime.state["plan"] = ["a", "b"]
        runtime.record_event("planned", metadata={"steps": 2})
        runtime.emit("work", {"step": 0, "text": "héllo \U0001f600"})
        return {"plan": ["a", "b"], "score": 0.25}

    def work(message: Any, *, runtime: Any, context: Any) -> Any:
        runtime.state["done"] = runtime.state.get("done", 0) + 1
        if message["step"] < 2:
            runtime.emit("work", {**message, "step": message["step"] + 1})
        else:
            runtime.stop("enough")
        return message["step"]

    workload = CodonWorkload(name="Chain", version="1")
    workload.add_node(plan, "plan", "planner", org_namespace="acme")
    workload.add_node(work, "work", "worker", org_namespace="acme")
    workload.add_edge("plan", "work")
    workload.add_edge("work", "work")
    return workload.execute({"goal": "x"}, deployment_id="chain-test", run_id="chain-run")


def _entries() -> list[bytes]:
    return list(_real_run().entries)


N = len(_entries())
RUN_ID = "chain-run"


def _leaf(entry: bytes) -> str:
    return hashlib.sha256(b"\x00" + entry).hexdigest()


def _reencode(obj: dict[str, Any]) -> bytes:
    return rfc8785.dumps(obj)


def _edit(entries: list[bytes], position: int, /, **changes: Any) -> list[bytes]:
    obj = json.loads(entries[position])
    obj.update(changes)
    out = list(entries)
    out[position] = _reencode(obj)
    return out


def _check(entries: list[bytes], **kwargs: Any) -> ChainCheck:
    return check_chain(entries, run_id=RUN_ID, **kwargs)


def _assert_broken_at(check: ChainCheck, seq: int) -> None:
    assert not check.ok
    assert not check
    assert check.bad_seq == seq, f"expected the break at seq {seq}, got {check}"
    assert check.problem


def _assert_broken_at_final_link(check: ChainCheck, seq: int) -> None:
    """Only the final link is broken: edited event ``seq`` and edited ``prev`` of ``seq + 1``
    look the same to a checker, so either position is a fair answer."""
    assert not check.ok
    assert check.bad_seq in (seq, seq + 1), f"expected the break at seq {seq} or {seq + 1}: {check}"


# ----------------------------------------------------------------- an untouched run


def test_the_real_run_is_big_enough_to_be_interesting() -> None:
    """The fixture run has every kind of event the chain tests rely on."""
    types = [json.loads(e)["type"] for e in _entries()]
    assert types[0] == "run_started"
    assert types[-1] == "run_finished"
    for needed in ("token_enqueued", "token_dequeued", "node_completed", "planned"):
        assert needed in types
    assert "state_updated" in types
    assert "runtime_stopped" in types
    assert N >= 15


def test_a_finished_run_passes_the_chain_check() -> None:
    """check_chain accepts the entries of a real run, with and without require_end."""
    entries = _entries()
    for kwargs in ({}, {"require_end": True}):
        check = _check(entries, **kwargs)
        assert check.ok, str(check)
        assert check
        assert check.count == N
        assert check.bad_seq is None
        assert check.head == _leaf(entries[-1])
    assert check_chain(entries).ok


def test_report_check_chain_passes() -> None:
    """report.check_chain() re-checks the report's own entries and passes."""
    check = _real_run().check_chain()
    assert check.ok, str(check)
    assert check.count == N


def test_prev_links_are_rfc6962_leaf_hashes() -> None:
    """Each event's prev is SHA-256(0x00 || previous entry bytes); seq 0 has none."""
    entries = _entries()
    objs = [json.loads(e) for e in entries]
    assert "prev" not in objs[0]
    for seq in range(1, N):
        assert objs[seq]["prev"] == _leaf(entries[seq - 1])
    for event in _real_run().events():
        assert event.leaf == bytes.fromhex(_leaf(event.entry))


def test_entries_are_canonical_jcs() -> None:
    """Each stored entry is exactly the RFC 8785 encoding of its own content."""
    for entry in _entries():
        assert _reencode(json.loads(entry)) == entry


# ----------------------------------------------------------------- tampering, every seq


@pytest.mark.parametrize("seq", range(N - 1))
@pytest.mark.parametrize("field", ["ts", "metadata"])
def test_changing_an_event_breaks_the_chain_at_that_event(seq: int, field: str) -> None:
    """Editing event ``seq`` (re-encoded as valid JCS) makes the check fail at ``seq``."""
    entries = _entries()
    obj = json.loads(entries[seq])
    value = obj["ts"] + 1 if field == "ts" else {**obj.get("metadata", {}), "forged": True}
    _assert_broken_at(_check(_edit(entries, seq, **{field: value})), seq)


def test_changing_the_last_event_changes_the_head() -> None:
    """Editing the final event gives a different head hash, so an anchored head exposes it."""
    entries = _entries()
    forged = _edit(entries, N - 1, ts=json.loads(entries[-1])["ts"] + 1)
    assert _check(entries).head != _check(forged).head


@pytest.mark.parametrize("seq", range(N))
def test_dropping_an_event_breaks_the_chain_at_that_event(seq: int) -> None:
    """Removing event ``seq`` makes the check fail at ``seq`` (the last one needs require_end)."""
    entries = _entries()
    del entries[seq]
    _assert_broken_at(_check(entries, require_end=True), seq)
    if seq < N - 1:
        _assert_broken_at(_check(entries), seq)


@pytest.mark.parametrize("seq", range(N - 1))
def test_dropping_and_renumbering_breaks_the_chain_at_that_event(seq: int) -> None:
    """Removing event ``seq`` and renumbering the rest is still caught at ``seq`` (prev links)."""
    entries = _entries()
    del entries[seq]
    for later in range(seq, len(entries)):
        entries = _edit(entries, later, seq=later)
    check = _check(entries, require_end=True)
    if seq < N - 2:
        _assert_broken_at(check, seq)
    else:
        _assert_broken_at_final_link(check, seq - 1)


@pytest.mark.parametrize("seq", range(N - 1))
def test_swapping_an_event_with_the_next_breaks_the_chain_there(seq: int) -> None:
    """Exchanging events ``seq`` and ``seq + 1`` makes the check fail at ``seq``."""
    entries = _entries()
    entries[seq], entries[seq + 1] = entries[seq + 1], entries[seq]
    _assert_broken_at(_check(entries), seq)


@pytest.mark.parametrize("seq", range(1, N))
def test_a_forged_prev_link_breaks_the_chain_at_that_event(seq: int) -> None:
    """Pointing event ``seq``'s prev at another hash is caught at ``seq``."""
    check = _check(_edit(_entries(), seq, prev="0" * 64))
    if seq < N - 1:
        _assert_broken_at(check, seq)
    else:
        _assert_broken_at_final_link(check, seq - 1)


@pytest.mark.parametrize("seq", range(N))
def test_non_canonical_bytes_break_the_chain_at_that_event(seq: int) -> None:
    """The same content serialised with spaces (not JCS) is rejected at that event."""
    entries = _entries()
    entries[seq] = json.dumps(json.loads(entries[seq]), sort_keys=True).encode()
    check = _check(entries)
    _assert_broken_at(check, seq)
    assert "canonical" in str(check.problem)


@pytest.mark.parametrize("seq", [0, N // 2, N - 1])
def test_garbage_bytes_break_the_chain_at_that_event(seq: int) -> None:
    """Unparseable bytes are reported at their position, not raised."""
    entries = _entries()
    entries[seq] = b"{not json"
    _assert_broken_at(_check(entries), seq)


@pytest.mark.parametrize("seq", [1, N // 2, N - 1])
def test_an_inserted_duplicate_breaks_the_chain_where_it_was_inserted(seq: int) -> None:
    """A copy of event ``seq - 1`` inserted at ``seq`` is caught at ``seq``."""
    entries = _entries()
    entries.insert(seq, entries[seq - 1])
    _assert_broken_at(_check(entries), seq)


def test_appending_after_run_finished_breaks_the_chain() -> None:
    """An event chained after run_finished is rejected: nothing may follow the end."""
    entries = _entries()
    extra = json.loads(entries[-2])
    extra.update(seq=N, prev=_leaf(entries[-1]))
    entries.append(_reencode(extra))
    _assert_broken_at(_check(entries), N)


def test_an_event_from_another_run_breaks_the_chain() -> None:
    """An event claiming another run id is rejected at its position."""
    _assert_broken_at(_check(_edit(_entries(), 3, run_id="other-run")), 3)


def test_the_expected_run_id_is_enforced_from_the_first_event() -> None:
    """Checking a run's entries against a different run id fails at seq 0."""
    _assert_broken_at(check_chain(_entries(), run_id="someone-else"), 0)


def test_a_truncated_tail_is_accepted_only_without_require_end() -> None:
    """A prefix is a consistent chain (a run in progress) but not a finished run."""
    prefix = _entries()[: N // 2]
    assert _check(prefix).ok
    _assert_broken_at(_check(prefix, require_end=True), N // 2)


def test_an_empty_ledger_is_not_a_valid_chain() -> None:
    """No events at all (not even run_started) fails the check."""
    check = check_chain([])
    assert not check.ok
    assert check.bad_seq == 0


def test_chain_check_describes_itself() -> None:
    """str(ChainCheck) says ok with the count, or names the broken seq and the problem."""
    entries = _entries()
    assert str(N) in str(_check(entries))
    broken = _check(_edit(entries, 2, prev="0" * 64))
    assert "2" in str(broken)
    assert str(broken.problem) in str(broken)


# ----------------------------------------------------------------- numbers past 2^53


@pytest.mark.parametrize("value", [2.0**53, 1e17, 2.0**70, -(2.0**60), 1e300])
def test_whole_floats_past_2_to_the_53_verify(value: float) -> None:
    """JCS writes 2^53 or 1e17 without a fraction, so the stored entry parses back as an
    integer; the check must read that integer as the double it is, not as a big int."""
    workload = CodonWorkload(name="floats", version="1", org_namespace="tests")
    workload.add_node(lambda p, *, runtime, context: value, "n", "r")
    report = workload.execute(0, deployment_id="d", run_id="floats")
    assert report.check_chain().ok, str(report.check_chain())
    assert report.node_results("n") == [value]


def test_an_integer_no_double_can_hold_is_not_canonical() -> None:
    """``9007199254740993`` is not what JCS writes for any value (the double is ...992)."""
    entries = _entries()
    for number, canonical in ((b"9007199254740993", False), (b"9007199254740992", True)):
        edited = entries[1].replace(b'{"seed":true}', b'{"n":' + number + b',"seed":true}', 1)
        check = _check([entries[0], edited])
        assert check.ok is canonical, str(check)
        if not canonical:
            assert check.bad_seq == 1
            assert "canonical" in str(check.problem)
