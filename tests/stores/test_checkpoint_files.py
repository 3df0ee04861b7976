"""``FileCheckpointSink``: run ids map to folder names injectively and safely.

Each run's notes must land in a folder of its own inside the directory, never in
the log of runs' ``runs`` folder, and read back as that run's notes only, even
from a folder an earlier SDK shared between several runs.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from codon_sdk.ledger._checkpoint import Checkpoint, sign_checkpoint
from codon_sdk.ledger._note import Ed25519Signer
from codon_sdk.stores._notary import MAX_FOLDER_NAME, FileCheckpointSink, run_folder

SIGNER = Ed25519Signer.generate("test/ledger")


def signed(run_id: str, size: int = 3) -> bytes:
    origin = f"test/ledger/run/{run_id}" if run_id else "test/ledger/runs"
    return sign_checkpoint(Checkpoint(origin=origin, size=size, root=b"\x01" * 32), [SIGNER])


def export(sink: FileCheckpointSink, run_id: str, size: int = 3) -> bytes:
    note = signed(run_id, size)
    origin = f"test/ledger/run/{run_id}" if run_id else "test/ledger/runs"
    sink(run_id=run_id, origin=origin, size=size, note=note)
    return note


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_a_uuid_hex_run_id_keeps_its_folder() -> None:
    run_id = uuid.uuid4().hex
    assert run_folder(run_id) == run_id
    assert run_folder("run-a_1") == "run-a_1"


def test_dot_dot_writes_inside_the_directory(tmp_path: Path) -> None:
    directory = tmp_path / "inbox"
    sink = FileCheckpointSink(directory)
    for run_id in ("..", ".", "../escape", "a/../../b"):
        note = export(sink, run_id)
        assert sink.notes(run_id) == [note]
    assert {p.parent.parent for p in files_under(tmp_path)} == {directory}
    assert run_folder("..") == "%2E%2E"


def test_a_run_called_runs_does_not_share_the_log_of_runs_folder(tmp_path: Path) -> None:
    sink = FileCheckpointSink(tmp_path)
    run_note = export(sink, "runs", 3)
    log_note = export(sink, "", 3)
    assert run_folder("runs") == "%72uns"
    assert sink.notes("runs") == [run_note]
    assert sink.notes("") == [log_note]
    assert (tmp_path / "runs" / "3.note").read_bytes() == log_note


def test_ids_that_once_shared_a_folder_get_one_each(tmp_path: Path) -> None:
    sink = FileCheckpointSink(tmp_path)
    ids = ["acme/42", "acme_42", "acme:42", "acme.42", "acme%2F42", "acme 42"]
    notes = {run_id: export(sink, run_id) for run_id in ids}
    folders = {run_folder(run_id) for run_id in ids}
    assert len(folders) == len(ids)
    assert all("/" not in folder and ":" not in folder for folder in folders)
    for run_id in ids:
        assert sink.notes(run_id) == [notes[run_id]]


def test_ids_that_differ_only_in_case_differ_on_a_case_insensitive_file_system() -> None:
    ids = ["ABC", "abc", "Abc", "aBC", "%41bc", "\u00c9", "\u00e9"]
    assert len({run_folder(run_id).casefold() for run_id in ids}) == len(ids)
    assert run_folder("ABC") == "%41%42%43"
    assert run_folder("a%b") == "a%25b"


def test_a_long_id_gets_a_hash_name_no_encoding_can_produce(tmp_path: Path) -> None:
    sink = FileCheckpointSink(tmp_path)
    long_ids = ["x" * 200, "X" * 200, "x" * 199 + "y"]
    names = [run_folder(run_id) for run_id in long_ids]
    assert len(set(names)) == 3
    assert all(name.startswith("=sha256-") and len(name) <= MAX_FOLDER_NAME for name in names)
    assert run_folder("=sha256-" + "0" * 64).startswith("%3Dsha256-")
    notes = {run_id: export(sink, run_id) for run_id in long_ids}
    for run_id in long_ids:
        assert sink.notes(run_id) == [notes[run_id]]


def test_notes_come_back_in_size_order(tmp_path: Path) -> None:
    sink = FileCheckpointSink(tmp_path)
    notes = [export(sink, "Run.1", size) for size in (10, 2, 5)]
    assert sink.notes("Run.1") == [notes[1], notes[2], notes[0]]


def test_a_legacy_folder_shared_by_several_runs_hands_each_only_its_own_notes(
    tmp_path: Path,
) -> None:
    """An earlier SDK wrote ``acme/42`` and ``acme:42`` both to ``acme_42``."""
    legacy = tmp_path / "acme_42"
    legacy.mkdir()
    (legacy / "3.note").write_bytes(signed("acme/42", 3))
    (legacy / "4.note").write_bytes(signed("acme:42", 4))
    (legacy / "5.note").write_bytes(b"not a note at all")
    sink = FileCheckpointSink(tmp_path)
    assert sink.notes("acme/42") == [signed("acme/42", 3)]
    assert sink.notes("acme:42") == [signed("acme:42", 4)]
    newer = export(sink, "acme/42", 9)
    assert sink.notes("acme/42") == [signed("acme/42", 3), newer]


def test_a_legacy_runs_folder_hands_a_run_called_runs_only_its_own_notes(tmp_path: Path) -> None:
    sink = FileCheckpointSink(tmp_path)
    log_note = export(sink, "", 2)
    (tmp_path / "runs" / "7.note").write_bytes(signed("runs", 7))  # the earlier SDK's place
    assert sink.notes("runs") == [signed("runs", 7)]
    assert sink.notes("") == [log_note]


def test_a_legacy_dot_dot_folder_is_never_read(tmp_path: Path) -> None:
    (tmp_path / "3.note").write_bytes(signed("..", 3))
    sink = FileCheckpointSink(tmp_path / "inbox")
    assert sink.notes("..") == []


def test_an_unparsable_note_in_the_runs_own_folder_is_kept_for_verify_to_report(
    tmp_path: Path,
) -> None:
    sink = FileCheckpointSink(tmp_path)
    good = export(sink, "Run-X", 3)
    (tmp_path / run_folder("Run-X") / "4.note").write_bytes(b"garbled")
    (tmp_path / run_folder("Run-X") / "5.note").write_bytes(signed("other", 5))
    assert sink.notes("Run-X") == [good, b"garbled"]


@pytest.mark.parametrize("run_id", ["\ud800", "a\udfffb"])
def test_ids_with_lone_surrogates_still_get_distinct_folders(run_id: str) -> None:
    assert run_folder(run_id) != run_folder("\ufffd")
    assert "%ED" in run_folder(run_id)
