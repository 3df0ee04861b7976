"""The stored form of an entry (stores/_codec.py): exact round trips, old rows, hostile rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codon_sdk import CodonWorkload, open_store, verify_run
from codon_sdk.identity import json_canonical
from codon_sdk.ledger import leaf_hash
from codon_sdk.stores import _codec as codec
from codon_sdk.testing._store_kit import ledger

RUN = "run-codec"


def loop_run(path: Path, steps: int = 20) -> str:
    workload = CodonWorkload(name="codec", version="1.0")

    def count(message: int, *, runtime: Any, context: Any) -> int:
        if message < steps:
            runtime.emit("count", message + 1)
        return message

    workload.add_node(count, "count", "worker")
    workload.add_edge("count", "count")
    with open_store(f"sqlite:///{path}") as store:
        report = workload.execute(0, deployment_id="d", store=store, run_id=RUN)
    assert report.status == "completed"
    return RUN


def rows(path: Path) -> list[tuple[int, bytes]]:
    with sqlite3.connect(path) as conn:
        found = conn.execute("SELECT seq, entry FROM codon_events ORDER BY seq").fetchall()
    conn.close()
    return found


def test_a_run_is_stored_in_far_fewer_bytes_and_reads_back_exactly(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    loop_run(path)
    stored = rows(path)
    with open_store(f"sqlite:///{path}") as store:
        entries = store.read(RUN)
        assert verify_run(store, RUN).ok
    assert codec.unpack(RUN, stored) == entries
    for (_, packed), entry in zip(stored[1:], entries[1:], strict=True):
        assert packed[:2] == b"~p"  # prev, run id and seq cut
        assert b'"run_id"' not in packed
        assert b'"prev"' not in packed
        assert len(packed) <= len(entry) - 90  # with this 9-character run id


def test_rows_written_before_the_encoding_read_and_verify_as_they_are(tmp_path: Path) -> None:
    """Old ledgers keep verifying: a row holding the full entry (begins with '{') is read
    verbatim, and a run mixing both kinds of rows verifies."""
    path = tmp_path / "ledger.db"
    loop_run(path)
    with open_store(f"sqlite:///{path}") as store:
        entries = store.read(RUN)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TRIGGER codon_events_no_update")
    for seq in range(0, len(entries), 2):  # every other row back to the full entry
        conn.execute(
            "UPDATE codon_events SET entry = ? WHERE run_id = ? AND seq = ?",
            (entries[seq], RUN, seq),
        )
    conn.close()
    assert [p[:1] for _, p in rows(path)][:4] == [b"{", b"~", b"{", b"~"]
    with open_store(f"sqlite:///{path}") as store:
        assert store.read(RUN) == entries
        assert verify_run(store, RUN).ok


def test_a_byte_changed_in_a_stored_form_is_caught_at_that_event(tmp_path: Path) -> None:
    """In the prev bytes, the offset or the body: the finding names the edited event."""
    path = tmp_path / "ledger.db"
    loop_run(path)
    seq, packed = rows(path)[9]
    colon = packed.index(b":")
    for at in (colon + 5, colon - 1, len(packed) - 3):  # prev, offset digit, body
        edited = bytearray(packed)
        edited[at] ^= 0x01
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("DROP TRIGGER IF EXISTS codon_events_no_update")
        conn.execute(
            "UPDATE codon_events SET entry = ? WHERE run_id = ? AND seq = ?",
            (bytes(edited), RUN, seq),
        )
        conn.close()
        with open_store(f"sqlite:///{path}") as store:
            report = verify_run(store, RUN)
        assert report.status == "tampered", report.summary()
        assert seq in {f.seq for f in report.findings}, report.summary()


entry_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    payload=entry_values,
    seq=st.integers(0, 10**9),
    run_id=st.text(min_size=1, max_size=40),
    event_type=st.sampled_from(["node_completed", "token_enqueued", "custom.thing", "x"]),
    prev=st.none() | st.binary(min_size=32, max_size=32),
    tricky=st.booleans(),
)
def test_every_entry_reads_back_exactly(
    payload: object, seq: int, run_id: str, event_type: str, prev: bytes | None, tricky: bool
) -> None:
    """Whatever an entry holds (a payload that repeats the cut span, any run id, no prev,
    an unknown type), its stored form reads back as the very same bytes."""
    obj: dict[str, object] = {"v": 1, "run_id": run_id, "seq": seq, "type": event_type}
    obj["ts"] = 1
    obj["payload"] = payload
    if prev is not None:
        obj["prev"] = prev.hex()
    if tricky:  # the span the encoder looks for, inside a value that sorts before it
        obj["metadata"] = {"p": f'"run_id":{orjson.dumps(run_id).decode()},"seq":{seq},'}
    entry = json_canonical(obj)
    stored = codec.pack(run_id, seq, [entry])[0]
    assert codec.unpack(run_id, [(seq, stored)]) == [entry]


@pytest.mark.parametrize(
    "entry", [b"", b"~", b"~~x", b"~p0:", b"opaque \xff bytes", b"{}", b'{"v":1}']
)
def test_opaque_and_odd_entries_are_kept_verbatim(entry: bytes) -> None:
    stored = codec.pack("r", 3, [entry])[0]
    assert codec.unpack("r", [(3, stored)]) == [entry]


@settings(max_examples=500, deadline=None)
@given(stored=st.binary(max_size=80).map(lambda b: b"~" + b), seq=st.integers(0, 100))
def test_any_stored_row_decodes_without_raising(stored: bytes, seq: int) -> None:
    """Rows are hostile input: anything decodes to some bytes (which the chain check then
    judges), never an exception."""
    (entry,) = codec.unpack("r", [(seq, stored)])
    assert isinstance(entry, bytes)


def test_malformed_headers_read_as_the_stored_bytes() -> None:
    good = codec.pack(RUN, 1, [ledger(RUN, 2)[1][1]])[0]
    colon = good.index(b":")
    for bad in (
        good[:colon] + b"x" + good[colon:],  # offset not decimal
        b"~q" + good[2:],  # unknown kind
        good[:2] + b"Z" + good[3:],  # unknown type code
        good[: colon + 10],  # prev cut short
        good[:3] + b"99999" + good[colon:],  # offset past the body
    ):
        assert codec.unpack(RUN, [(1, bad)]) == [bad]
    assert leaf_hash(codec.unpack(RUN, [(1, good)])[0]) == ledger(RUN, 2)[1][2]
