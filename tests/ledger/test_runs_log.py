"""``verify_runs_log``: the log of runs checked against its runs and checkpoints (pure values).

Each test builds a log as a store would hold it, edits it the way an attacker
(or a crash) would, and pins down the finding: its code, whether it is a tamper
finding, and what it names.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from codon_sdk.ledger._checkpoint import Checkpoint, run_leaf, sign_checkpoint
from codon_sdk.ledger._merkle import leaf_hash, root
from codon_sdk.ledger._note import Ed25519Signer
from codon_sdk.ledger._runs_log import LoggedRun, verify_runs_log

SIGNER = Ed25519Signer.generate("test/ledger")
VKEYS = [SIGNER.vkey]


def h(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def run(name: str, events: int = 5, *, ended: bool = True) -> LoggedRun:
    return LoggedRun(
        event_count=events, root=h(f"root-{name}"), first_leaf=h(f"first-{name}"), ended=ended
    )


def start(idx: int, name: str) -> tuple[int, str, int, bytes]:
    return (idx, name, 1, h(f"first-{name}"))


def finish(idx: int, name: str, events: int = 5) -> tuple[int, str, int, bytes]:
    return (idx, name, events, h(f"root-{name}"))


def standard() -> tuple[list[tuple[int, str, int, bytes]], dict[str, LoggedRun]]:
    """Run a finished, run b paused, run c finished: five lines."""
    lines = [start(0, "a"), start(1, "b"), finish(2, "a"), start(3, "c"), finish(4, "c")]
    return lines, {"a": run("a"), "b": run("b", 3, ended=False), "c": run("c")}


def note(
    lines: list[tuple[int, str, int, bytes]], size: int, origin: str = "test/ledger/runs"
) -> bytes:
    leaves = [leaf_hash(run_leaf(r, s, x)) for _, r, s, x in lines[:size]]
    return sign_checkpoint(Checkpoint(origin=origin, size=size, root=root(leaves)), [SIGNER])


def codes(outcome: Any) -> list[tuple[str, bool]]:
    return [(f.code, f.tamper) for f in outcome.findings]


def test_an_intact_log_has_no_findings_and_counts_every_line() -> None:
    lines, runs = standard()
    outcome = verify_runs_log(lines, runs, stored_checkpoints=[note(lines, 5)], vkeys=VKEYS)
    assert outcome.ok
    assert codes(outcome) == []
    assert outcome.size == 5
    leaves = [leaf_hash(run_leaf(r, s, x)) for _, r, s, x in lines]
    assert outcome.root == root(leaves).hex()


@pytest.mark.parametrize("gone", ["a", "b"], ids=["finished", "paused"])
def test_a_deleted_run_is_named_whether_it_finished_or_not(gone: str) -> None:
    lines, runs = standard()
    del runs[gone]
    outcome = verify_runs_log(lines, runs)
    assert codes(outcome) == [("run_deleted", True)]
    assert f"run {gone} " in outcome.findings[0].message
    assert "started at line" in outcome.findings[0].message


def test_a_deleted_line_is_a_gap_naming_the_missing_index() -> None:
    lines, runs = standard()
    del lines[1]  # run b's start line, and run b with it
    del runs["b"]
    outcome = verify_runs_log(lines, runs)
    assert codes(outcome) == [("runs_log_gap", True)]
    assert "no line 1" in outcome.findings[0].message


def test_several_deleted_lines_are_one_gap_naming_the_range() -> None:
    lines, _ = standard()
    outcome = verify_runs_log([lines[0], lines[4]], {"a": run("a", ended=False), "c": run("c")})
    assert ("runs_log_gap", True) in codes(outcome)
    assert any("no lines 1 to 3" in f.message for f in outcome.findings)


def test_lines_that_do_not_start_at_zero_are_a_gap() -> None:
    lines, runs = standard()
    outcome = verify_runs_log(
        lines[1:], {"b": runs["b"], "c": runs["c"], "a": run("a", ended=False)}
    )
    assert any(f.code == "runs_log_gap" and "no line 0" in f.message for f in outcome.findings)


def test_a_run_without_a_start_line_was_planted() -> None:
    lines, runs = standard()
    runs["planted"] = run("planted", ended=False)
    outcome = verify_runs_log(lines, runs)
    assert codes(outcome) == [("not_started", True)]
    assert "run planted" in outcome.findings[0].message


def test_an_ended_run_without_a_finish_line_is_a_finding() -> None:
    lines, runs = standard()
    runs["b"] = run("b", 3, ended=True)
    outcome = verify_runs_log(lines, runs)
    assert codes(outcome) == [("not_logged", True)]


def test_a_run_rewritten_from_its_first_event_no_longer_matches_its_start_line() -> None:
    lines, runs = standard()
    runs["b"] = LoggedRun(event_count=3, root=h("x"), first_leaf=h("forged"))
    outcome = verify_runs_log(lines, runs)
    assert codes(outcome) == [("run_changed", True)]
    assert "rewritten from the start" in outcome.findings[0].message


def test_a_run_whose_events_are_all_gone_no_longer_matches_its_start_line() -> None:
    lines, runs = standard()
    runs["b"] = LoggedRun(event_count=0, root=h("empty"), first_leaf=None)
    outcome = verify_runs_log(lines, runs)
    assert codes(outcome) == [("run_changed", True)]
    assert "holds no events" in outcome.findings[0].message


def test_a_finished_run_that_changed_since_it_was_logged_is_a_finding() -> None:
    lines, runs = standard()
    runs["c"] = LoggedRun(event_count=4, root=h("other"), first_leaf=h("first-c"), ended=True)
    outcome = verify_runs_log(lines, runs)
    assert codes(outcome) == [("run_changed", True)]
    assert "logged (line 4) with 5 events" in outcome.findings[0].message


def test_two_start_or_finish_lines_of_one_run_were_planted() -> None:
    lines, runs = standard()
    outcome = verify_runs_log([*lines, start(5, "a"), finish(6, "c")], runs)
    assert codes(outcome) == [("runs_log_duplicate", True), ("runs_log_duplicate", True)]


@pytest.mark.parametrize(
    "bad",
    [
        (2, "a", 0, b"\x00" * 32),
        (2, "a", 5, b"short"),
        ("2", "a", 5, b"\x00" * 32),
        (2, "", 5, b"\x00" * 32),
        (2, 7, 5, b"\x00" * 32),
        (2, "a", True, b"\x00" * 32),
        (2, "\ud800", 5, b"\x00" * 32),
        (2, "a", 5),
    ],
    ids=[
        "size-0",
        "short-root",
        "index-text",
        "empty-id",
        "id-int",
        "size-bool",
        "surrogate",
        "3-fields",
    ],
)
def test_a_malformed_line_is_a_finding_never_a_crash(bad: Any) -> None:
    lines, runs = standard()
    lines[2] = bad
    outcome = verify_runs_log(lines, runs)
    assert ("runs_log_line", True) in codes(outcome)
    assert outcome.size == 5
    assert not outcome.ok


def test_lines_read_after_the_runs_may_name_runs_begun_meanwhile() -> None:
    """The log is read twice, around the runs: a line beyond the first read whose run is not
    listed was begun during verification, not deleted; a settled one was deleted."""
    lines, runs = standard()
    fresh = [*lines, start(5, "new")]
    assert verify_runs_log(fresh, runs, settled=5).ok
    outcome = verify_runs_log(fresh, runs, settled=6)
    assert codes(outcome) == [("run_deleted", True)]


def test_a_finish_line_read_after_the_run_is_held_only_to_what_the_run_showed() -> None:
    """A run read while running (3 events) finished with 7 before the log's second read."""
    lines, runs = standard()
    fresh = [*lines, finish(5, "b", 7)]
    assert verify_runs_log(fresh, runs, settled=5).ok
    assert codes(verify_runs_log(fresh, runs, settled=6)) == [("run_changed", True)]


def test_stored_checkpoints_that_do_not_cover_the_last_lines_are_a_note_not_tamper() -> None:
    lines, runs = standard()
    outcome = verify_runs_log(lines, runs, stored_checkpoints=[note(lines, 3)], vkeys=VKEYS)
    assert outcome.ok
    assert codes(outcome) == [("runs_log_uncovered", False)]
    assert "lines 3 to 4" in outcome.findings[0].message


def test_a_store_that_signs_but_has_no_log_checkpoint_gets_the_note() -> None:
    lines, runs = standard()
    outcome = verify_runs_log(lines, runs, has_checkpoints=True)
    assert codes(outcome) == [("runs_log_uncovered", False)]
    assert codes(verify_runs_log(lines, runs)) == []


def test_a_checkpoint_larger_than_the_log_means_lines_were_removed() -> None:
    lines, runs = standard()
    signed = note(lines, 5)
    outcome = verify_runs_log(lines[:3], runs, external_checkpoints=[signed], vkeys=VKEYS)
    assert ("runs_log_truncated", True) in codes(outcome)


def test_a_checkpoint_of_another_log_is_named_so() -> None:
    lines, runs = standard()
    foreign = note(lines, 5, origin="test/ledger/run/a")
    outcome = verify_runs_log(lines, runs, stored_checkpoints=[foreign])
    assert ("runs_log_origin", True) in codes(outcome)


def test_an_edited_line_no_longer_matches_the_signed_checkpoint() -> None:
    lines, runs = standard()
    signed = note(lines, 5)
    lines[3] = (3, "c", 1, h("first-c2"))
    runs["c"] = LoggedRun(event_count=5, root=h("root-c"), first_leaf=h("first-c2"), ended=True)
    outcome = verify_runs_log(lines, runs, stored_checkpoints=[signed], vkeys=VKEYS)
    assert codes(outcome) == [("runs_log_root", True), ("runs_log_uncovered", False)]


def test_only_an_external_checkpoint_with_a_trusted_signature_anchors_the_log() -> None:
    lines, runs = standard()
    signed = note(lines, 5)
    anchored = verify_runs_log(lines, runs, external_checkpoints=[signed], vkeys=VKEYS)
    assert anchored.ok
    assert anchored.anchors
    assert verify_runs_log(lines, runs, stored_checkpoints=[signed], vkeys=VKEYS).anchors == ()
    assert verify_runs_log(lines, runs, external_checkpoints=[signed]).anchors == ()


def test_an_unreadable_run_counts_only_as_present() -> None:
    lines, runs = standard()
    runs["c"] = LoggedRun(event_count=0, root=b"", readable=False)
    assert verify_runs_log(lines, runs).ok
