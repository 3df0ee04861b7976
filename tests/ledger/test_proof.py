"""Proof files: building them, verifying them offline, and failing verdicts for every bad file."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codon_sdk.errors import CheckpointError, ProofError
from codon_sdk.identity._canonical import canonical_bytes
from codon_sdk.ledger._checkpoint import Checkpoint, run_leaf, sign_checkpoint
from codon_sdk.ledger._merkle import EMPTY_ROOT, leaf_hash, root
from codon_sdk.ledger._note import Ed25519Signer, NoteSignature
from codon_sdk.ledger._proof import (
    ProofVerdict,
    build_consistency_proof,
    build_inclusion_proof,
    verify_proof_file,
)

LEDGER = Ed25519Signer("example.com/ledger", b"\x31" * 32)
OTHER = Ed25519Signer("example.com/other", b"\x32" * 32)
ORIGIN = "example.com/ledger/run/r1"
ENTRIES = [
    canonical_bytes(
        {"v": 1, "run_id": "r1", "seq": i, "type": "node_completed", "ts": i, "payload": "é"}
    )
    for i in range(20)
]
HASHES = [leaf_hash(e) for e in ENTRIES]
KEYS = [LEDGER.vkey]


def signed(size: int, *, origin: str = ORIGIN, signers: Any = (LEDGER,)) -> bytes:
    cp = Checkpoint(origin=origin, size=size, root=root(HASHES[:size]))
    return sign_checkpoint(cp, list(signers))


def inclusion(index: int = 5, size: int = 12) -> dict[str, Any]:
    data = build_inclusion_proof(checkpoint=signed(size), index=index, entries=ENTRIES)
    obj: dict[str, Any] = json.loads(data)
    return obj


def consistency(old: int = 5, new: int = 12) -> dict[str, Any]:
    data = build_consistency_proof(
        old_checkpoint=signed(old), new_checkpoint=signed(new), leaf_hashes=HASHES
    )
    obj: dict[str, Any] = json.loads(data)
    return obj


def verify(obj: Any, keys: Any = KEYS, **kw: Any) -> ProofVerdict:
    data = obj if isinstance(obj, (bytes, str)) else json.dumps(obj).encode()
    return verify_proof_file(data, keys, **kw)


def failing(obj: Any, match: str, **kw: Any) -> ProofVerdict:
    verdict = verify(obj, **kw)
    assert not verdict.ok
    assert not verdict
    assert verdict.problem is not None
    assert match in verdict.problem, verdict.problem
    return verdict


# --- inclusion ----------------------------------------------------------------------------


def test_inclusion_proof_file_verifies_every_leaf_of_every_size() -> None:
    """Files built from entries verify for every (seq, size) up to 20, saying what was checked."""
    for size in range(1, 21):
        note = signed(size)
        for seq in range(size):
            data = build_inclusion_proof(checkpoint=note, index=seq, entries=ENTRIES)
            verdict = verify_proof_file(data, KEYS, origin=ORIGIN)
            assert verdict.ok, verdict
            assert verdict.kind == "inclusion"
            assert verdict.problem is None
            assert verdict.signed_by == (LEDGER.name,)
            assert verdict.checkpoint == Checkpoint.parse(note.split(b"\n\n")[0] + b"\n")


def test_inclusion_proof_file_schema() -> None:
    """The file carries format, version, type, the entry text, seq, size, hex path and note."""
    obj = inclusion(5, 12)
    assert list(obj) == ["format", "v", "type", "entry", "seq", "size", "path", "checkpoint"]
    assert (obj["format"], obj["v"], obj["type"]) == ("codon.proof", 1, "inclusion")
    assert obj["entry"].encode() == ENTRIES[5]
    assert (obj["seq"], obj["size"], len(obj["path"])) == (5, 12, 4)
    assert obj["checkpoint"] == signed(12).decode()
    verdict = verify(obj)
    assert any("leaf 5" in c for c in verdict.checked)
    assert any(LEDGER.name in c for c in verdict.checked)
    assert "verified" in str(verdict)


def test_inclusion_builder_accepts_leaf_hashes_plus_the_entry() -> None:
    """leaf_hashes= with entry= gives the same file as entries=."""
    by_hashes = build_inclusion_proof(
        checkpoint=signed(12), index=5, leaf_hashes=HASHES, entry=ENTRIES[5]
    )
    assert by_hashes == json.dumps(inclusion(5, 12), indent=2, ensure_ascii=False).encode() + b"\n"


def test_runs_log_leaf_is_provable_too() -> None:
    """A proof over the log of runs (leaves from run_leaf) verifies; no event checks apply."""
    runs = [run_leaf(f"r{i}", 10 + i, root(HASHES[:i])) for i in range(5)]
    cp = Checkpoint(
        origin="example.com/ledger/runs", size=5, root=root([leaf_hash(r) for r in runs])
    )
    data = build_inclusion_proof(checkpoint=sign_checkpoint(cp, [LEDGER]), index=3, entries=runs)
    assert verify_proof_file(data, KEYS, origin="example.com/ledger/runs").ok


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"index": 12, "entries": ENTRIES}, ProofError, "outside a tree of size 12"),
        ({"index": 1, "leaf_hashes": HASHES}, ProofError, "entry="),
        ({"index": 1, "entries": ENTRIES, "leaf_hashes": HASHES}, ProofError, "exactly one"),
        ({"index": 1}, ProofError, "exactly one"),
        ({"index": 1, "entries": ENTRIES, "entry": ENTRIES[1]}, ProofError, "entry= goes"),
        ({"index": 1, "entries": ENTRIES[:5]}, ProofError, "only 5 were given"),
        ({"index": 1, "leaf_hashes": HASHES, "entry": ENTRIES[2]}, ProofError, "do not hash"),
        ({"index": 1, "entries": ENTRIES[::-1]}, ProofError, "not the root"),
        (
            {"index": 1, "entries": [ENTRIES[0], b"\xff", *ENTRIES[2:]], "checkpoint": None},
            ProofError,
            "UTF-8",
        ),
        ({"index": 1, "entries": ENTRIES, "checkpoint": b"junk\n"}, CheckpointError, "checkpoint:"),
    ],
)
def test_inclusion_builder_refuses_inputs_that_would_not_verify(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    """The builder raises instead of writing a file that could never verify."""
    if kwargs.get("checkpoint", ...) is None:
        entries = kwargs["entries"]
        cp = Checkpoint(origin=ORIGIN, size=12, root=root([leaf_hash(e) for e in entries[:12]]))
        kwargs["checkpoint"] = sign_checkpoint(cp, [LEDGER])
    kwargs.setdefault("checkpoint", signed(12))
    with pytest.raises(error, match=match):
        build_inclusion_proof(**kwargs)


def test_altered_entry_fails() -> None:
    """Changing the entry text changes its leaf hash: the path no longer reaches the root."""
    obj = inclusion()
    obj["entry"] = obj["entry"].replace('"ts":5', '"ts":6')
    failing(obj, "audit path does not lead")


@pytest.mark.parametrize("seq", [4, 6, 0, 11])
def test_altered_seq_fails(seq: int) -> None:
    """The same entry and path claimed at another leaf index fails."""
    obj = inclusion(5, 12)
    obj["seq"] = seq
    failing(obj, "audit path does not lead")


def test_seq_outside_the_tree_fails() -> None:
    """A seq at or beyond the tree size fails with that reason."""
    obj = inclusion(5, 12)
    obj["seq"] = 12
    failing(obj, "outside a tree of size 12")


def test_size_different_from_the_checkpoint_fails() -> None:
    """The proof's tree size must be the checkpoint's."""
    obj = inclusion(5, 12)
    obj["size"] = 13
    failing(obj, "tree size 13 but the checkpoint is for size 12")


@pytest.mark.parametrize("mutation", ["flip", "add", "remove", "duplicate"])
def test_altered_path_fails(mutation: str) -> None:
    """Changing, adding or removing one path hash fails."""
    obj = inclusion(5, 12)
    path: list[str] = obj["path"]
    if mutation == "flip":
        path[1] = ("0" if path[1][0] != "0" else "1") + path[1][1:]
    elif mutation == "add":
        path.append(HASHES[0].hex())
    elif mutation == "remove":
        path.pop(0)
    else:
        path.insert(0, path[0])
    failing(obj, "audit path does not lead")


def test_event_whose_seq_differs_from_its_leaf_index_fails() -> None:
    """An entry saying seq 7 proven at leaf 5 (a tree signed that way) fails the event check."""
    entries = list(ENTRIES)
    entries[5] = ENTRIES[7]
    cp = Checkpoint(origin=ORIGIN, size=12, root=root([leaf_hash(e) for e in entries[:12]]))
    data = build_inclusion_proof(checkpoint=sign_checkpoint(cp, [LEDGER]), index=5, entries=entries)
    failing(data, "the entry says seq 7 but is proven at leaf 5")


def test_event_of_another_run_fails() -> None:
    """An event of run r1 proven against the checkpoint of run r2 fails the run check."""
    cp = Checkpoint(origin="example.com/ledger/run/r2", size=12, root=root(HASHES[:12]))
    data = build_inclusion_proof(checkpoint=sign_checkpoint(cp, [LEDGER]), index=5, entries=ENTRIES)
    failing(data, "belongs to run 'r1'")


# --- signatures and origin ----------------------------------------------------------------


def test_checkpoint_signed_by_no_trusted_key_is_not_verified() -> None:
    """A correct proof whose checkpoint only an untrusted key signed fails."""
    data = build_inclusion_proof(checkpoint=signed(12, signers=[OTHER]), index=5, entries=ENTRIES)
    verdict = failing(data, "not signed by any trusted key")
    assert "example.com/other" in (verdict.problem or "")
    assert verdict.signed_by == ()
    assert not verify_proof_file(data, []).ok


def test_attackers_key_with_the_ledger_name_is_not_trusted() -> None:
    """A checkpoint signed by another key under the ledger's name fails as untrusted."""
    mallory = Ed25519Signer(LEDGER.name, b"\x66" * 32)
    data = build_inclusion_proof(checkpoint=signed(12, signers=[mallory]), index=5, entries=ENTRIES)
    failing(data, "not signed by any trusted key")


def test_checkpoint_with_a_broken_trusted_signature_fails() -> None:
    """A checkpoint whose trusted signature does not verify fails, even next to a good one."""
    forged = NoteSignature(name=LEDGER.name, key_id=LEDGER.key_id, signature=b"\x00" * 64)
    obj = inclusion()
    obj["checkpoint"] = signed(12, signers=[OTHER]).decode() + forged.format()
    failing(obj, "does not verify", keys=[LEDGER.vkey, OTHER.vkey])


def test_tampered_checkpoint_fails() -> None:
    """Editing the signed checkpoint's root breaks its signature."""
    obj = inclusion()
    lines = obj["checkpoint"].split("\n")
    lines[2] = "A" + lines[2][1:] if lines[2][0] != "A" else "B" + lines[2][1:]
    obj["checkpoint"] = "\n".join(lines)
    failing(obj, "does not verify")


def test_checkpoint_of_another_origin_fails_when_an_origin_is_expected() -> None:
    """With origin=, a proof against another log's checkpoint fails naming both."""
    failing(inclusion(), "expected 'example.com/ledger/run/r9'", origin="example.com/ledger/run/r9")


def test_trusted_keys_accept_verifier_objects_and_bad_vkeys_raise() -> None:
    """vkeys may be Verifier objects; a malformed vkey is the caller's error and raises."""
    data = json.dumps(inclusion()).encode()
    assert verify_proof_file(data, [LEDGER.verifier()]).ok
    with pytest.raises(CheckpointError, match="verifier key"):
        verify_proof_file(data, ["not-a-vkey"])


# --- consistency --------------------------------------------------------------------------


def test_consistency_proof_file_verifies_for_all_size_pairs() -> None:
    """Files built from leaf hashes verify for every 0 <= old <= new <= 20."""
    for new in range(21):
        for old in range(new + 1):
            data = build_consistency_proof(
                old_checkpoint=signed(old), new_checkpoint=signed(new), entries=ENTRIES
            )
            verdict = verify_proof_file(data, KEYS, origin=ORIGIN)
            assert verdict.ok, (old, new, verdict)
            assert verdict.kind == "consistency"
            assert verdict.checkpoint is not None
            assert verdict.checkpoint.size == new


def test_consistency_proof_file_schema() -> None:
    """The file carries format, version, type, both signed checkpoints and the hex path."""
    obj = consistency(5, 12)
    assert list(obj) == ["format", "v", "type", "old_checkpoint", "new_checkpoint", "path"]
    assert obj["type"] == "consistency"
    assert len(obj["path"]) == 5
    assert "prefix" in verify(obj).checked[-1]


def test_rewritten_history_fails_consistency() -> None:
    """A new checkpoint over a log whose old part was rewritten fails."""
    rewritten = [*HASHES[:3], leaf_hash(b"rewritten"), *HASHES[4:]]
    cp = Checkpoint(origin=ORIGIN, size=12, root=root(rewritten[:12]))
    new_note = sign_checkpoint(cp, [LEDGER])
    proof = build_consistency_proof(
        old_checkpoint=new_note, new_checkpoint=new_note, leaf_hashes=rewritten
    )
    obj = json.loads(proof)
    obj["old_checkpoint"] = signed(5).decode()
    obj["path"] = consistency(5, 12)["path"]
    failing(obj, "is a prefix")


@pytest.mark.parametrize("mutation", ["flip", "add", "remove"])
def test_altered_consistency_path_fails(mutation: str) -> None:
    """Changing, adding or removing one hash of the consistency path fails."""
    obj = consistency(5, 12)
    path: list[str] = obj["path"]
    if mutation == "flip":
        path[0] = ("0" if path[0][0] != "0" else "1") + path[0][1:]
    elif mutation == "add":
        path.append(path[0])
    else:
        path.pop()
    failing(obj, "is a prefix")


def test_swapped_checkpoints_fail() -> None:
    """Old and new the wrong way round fails."""
    obj = consistency(5, 12)
    obj["old_checkpoint"], obj["new_checkpoint"] = obj["new_checkpoint"], obj["old_checkpoint"]
    failing(obj, "larger than the new")


def test_checkpoints_of_different_logs_fail() -> None:
    """A consistency proof between two origins fails, and the builder refuses it."""
    obj = consistency(5, 12)
    obj["old_checkpoint"] = signed(5, origin="example.com/ledger/run/r2").decode()
    failing(obj, "different logs")
    with pytest.raises(ProofError, match="different logs"):
        build_consistency_proof(
            old_checkpoint=signed(5, origin="x/run/r2"), new_checkpoint=signed(12), entries=ENTRIES
        )


def test_consistency_with_an_untrusted_checkpoint_fails() -> None:
    """Either checkpoint signed by no trusted key fails the verdict."""
    obj = consistency(5, 12)
    obj["old_checkpoint"] = signed(5, signers=[OTHER]).decode()
    failing(obj, "old checkpoint is not signed by any trusted key")
    obj = consistency(5, 12)
    obj["new_checkpoint"] = signed(12, signers=[OTHER]).decode()
    failing(obj, "new checkpoint is not signed by any trusted key")


def test_consistency_builder_refuses_checkpoints_of_other_leaves() -> None:
    """The builder raises when a checkpoint's root is not the root of the given leaves."""
    stranger = Checkpoint(origin=ORIGIN, size=5, root=EMPTY_ROOT)
    with pytest.raises(ProofError, match="not the root"):
        build_consistency_proof(
            old_checkpoint=sign_checkpoint(stranger, [LEDGER]),
            new_checkpoint=signed(12),
            leaf_hashes=HASHES,
        )
    with pytest.raises(ProofError, match="only 3 were given"):
        build_consistency_proof(
            old_checkpoint=signed(2), new_checkpoint=signed(12), leaf_hashes=HASHES[:3]
        )
    with pytest.raises(ProofError, match="old tree size 12"):
        build_consistency_proof(
            old_checkpoint=signed(12), new_checkpoint=signed(5), leaf_hashes=HASHES
        )


# --- malformed files ----------------------------------------------------------------------


def _without(obj: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != key}


MALFORMED: list[Any] = [
    pytest.param(b"\xff\xfe", "not UTF-8", id="not utf-8"),
    pytest.param(b"", "not valid JSON", id="empty"),
    pytest.param(b"{", "not valid JSON", id="truncated json"),
    pytest.param(b"[1, 2]", "must hold a JSON object", id="array"),
    pytest.param(b'{"v": NaN}', "not valid JSON", id="NaN"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, "not valid JSON", id="deep nesting"),
    pytest.param(
        b'{"format": "codon.proof", "format": "x"}', "duplicate keys ['format']", id="dup key"
    ),
    pytest.param({**inclusion(), "format": "other"}, "not a Codon proof file", id="format"),
    pytest.param({**inclusion(), "v": 2}, "version 2 is not supported", id="version 2"),
    pytest.param({**inclusion(), "v": True}, "version True", id="version true"),
    pytest.param({**inclusion(), "type": "audit"}, "unknown proof type 'audit'", id="type"),
    pytest.param(_without(inclusion(), "path"), "missing fields ['path']", id="missing path"),
    pytest.param({**inclusion(), "note": "x"}, "unknown fields ['note']", id="extra field"),
    pytest.param({**inclusion(), "entry": 5}, "'entry' must be a string", id="entry not str"),
    pytest.param({**inclusion(), "seq": -1}, "'seq' must be a non-negative", id="negative seq"),
    pytest.param({**inclusion(), "seq": True}, "'seq' must be a non-negative", id="bool seq"),
    pytest.param({**inclusion(), "seq": 5.0}, "'seq' must be a non-negative", id="float seq"),
    pytest.param({**inclusion(), "size": "12"}, "'size' must be a non-negative", id="str size"),
    pytest.param(
        json.dumps(inclusion()).replace('"seq": 5', '"seq": ' + "9" * 5000),
        "not valid JSON",
        id="huge int",
    ),
    pytest.param({**inclusion(), "path": "ab"}, "'path' must be a list", id="path not list"),
    pytest.param({**inclusion(), "path": ["00"] * 66}, "at most 65", id="path too long"),
    pytest.param({**inclusion(), "path": ["zz" * 32]}, "not 64 lowercase hex", id="hash not hex"),
    pytest.param({**inclusion(), "path": ["ab" * 31]}, "not 64 lowercase hex", id="short hash"),
    pytest.param({**inclusion(), "path": ["AB" * 32]}, "not 64 lowercase hex", id="uppercase"),
    pytest.param({**inclusion(), "path": [None]}, "not 64 lowercase hex", id="null hash"),
    pytest.param({**inclusion(), "entry": "\ud800"}, "not encodable", id="lone surrogate"),
    pytest.param({**inclusion(), "checkpoint": 3}, "'checkpoint' must be a string", id="cp int"),
    pytest.param({**inclusion(), "checkpoint": "x\n"}, "checkpoint note is malformed", id="cp"),
    pytest.param(
        {**inclusion(), "checkpoint": signed(12).decode()[:-1]},
        "does not end in a newline",
        id="checkpoint missing newline",
    ),
    pytest.param(
        {**consistency(), "old_checkpoint": None}, "'old_checkpoint' must be", id="old cp null"
    ),
]


@pytest.mark.parametrize(("content", "match"), MALFORMED)
def test_malformed_proof_files_give_a_failing_verdict_naming_the_problem(
    content: Any, match: str
) -> None:
    """Malformed content never raises: the verdict fails and its problem names the defect."""
    verdict = failing(content, match)
    assert "NOT verified" in str(verdict)


def test_signed_note_whose_body_is_not_a_checkpoint_fails() -> None:
    """A validly signed note that is not a checkpoint body fails as malformed."""
    from codon_sdk.ledger._note import sign_note

    obj = inclusion()
    obj["checkpoint"] = sign_note("just some text\n", [LEDGER]).decode()
    failing(obj, "signed but malformed")


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(data: bytes) -> None:
    """Arbitrary bytes give a failing verdict, never an exception."""
    assert not verify_proof_file(data, KEYS).ok


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=10,
)


@settings(max_examples=200)
@given(st.sampled_from(["inclusion", "consistency"]), st.data())
def test_any_field_replaced_by_any_json_value_never_raises(kind: str, data: st.DataObject) -> None:
    """Replacing one field of a valid file with any JSON value fails cleanly, never raises."""
    obj = inclusion() if kind == "inclusion" else consistency()
    key = data.draw(st.sampled_from(sorted(obj)), label="field")
    value = data.draw(JSON, label="value")
    obj[key] = value
    verdict = verify(obj)
    assert isinstance(verdict, ProofVerdict)
    if not verdict.ok:
        assert verdict.problem
