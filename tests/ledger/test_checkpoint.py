"""Checkpoints in the C2SP tlog-checkpoint format: parsing, formatting, signing and opening."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codon_sdk.errors import CheckpointError
from codon_sdk.identity._canonical import canonical_bytes
from codon_sdk.ledger._checkpoint import (
    MAX_TREE_SIZE,
    Checkpoint,
    open_checkpoint,
    run_leaf,
    run_origin,
    runs_origin,
    sign_checkpoint,
)
from codon_sdk.ledger._merkle import EMPTY_ROOT, leaf_hash, root
from codon_sdk.ledger._note import Ed25519Signer, sign_note

LEDGER = Ed25519Signer("example.com/ledger", b"\x11" * 32)
OTHER = Ed25519Signer("example.com/other", b"\x22" * 32)
ROOT = hashlib.sha256(b"some root").digest()
ROOT_B64 = base64.b64encode(ROOT).decode()
BODY = f"example.com/ledger/run/r1\n12\n{ROOT_B64}\n"
# The example body published in the tlog-checkpoint specification.
SPEC_EXAMPLE = (
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
)


def test_spec_example_parses_and_formats_back_exactly() -> None:
    """The specification's example checkpoint parses to origin, size and a 32-byte root."""
    cp = Checkpoint.parse(SPEC_EXAMPLE)
    assert (cp.origin, cp.size, len(cp.root), cp.extensions) == (
        "example.com/behind-the-sofa",
        20852163,
        32,
        (),
    )
    assert cp.format() == SPEC_EXAMPLE
    assert Checkpoint.parse(SPEC_EXAMPLE.encode()) == cp


def test_extension_lines_are_kept_in_order() -> None:
    """Lines after the root are extensions, preserved through parse and format."""
    text = BODY + "ext one\next two\n"
    cp = Checkpoint.parse(text)
    assert cp.extensions == ("ext one", "ext two")
    assert cp.format() == text


def test_empty_tree_checkpoint_has_size_zero() -> None:
    """Size '0' is the one decimal allowed to start with a zero."""
    cp = Checkpoint(origin="o", size=0, root=EMPTY_ROOT)
    assert Checkpoint.parse(cp.format()) == cp
    assert cp.format().split("\n")[1] == "0"


@given(
    st.integers(0, MAX_TREE_SIZE),
    st.binary(min_size=32, max_size=32),
    st.lists(st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1), max_size=3),
)
def test_any_checkpoint_round_trips(size: int, root_: bytes, extensions: list[str]) -> None:
    """format then parse gives back the same record for any size, root and extensions."""
    cp = Checkpoint(origin="example.com/l", size=size, root=root_, extensions=tuple(extensions))
    assert Checkpoint.parse(cp.format()) == cp


@pytest.mark.parametrize(
    ("text", "match"),
    [
        pytest.param(BODY[:-1], "does not end in a newline", id="missing final newline"),
        pytest.param("o\n12\n", "fewer than three", id="two lines"),
        pytest.param("o\n", "fewer than three", id="one line"),
        pytest.param("", "does not end in a newline", id="empty"),
        pytest.param(f"\n12\n{ROOT_B64}\n", "origin .* is empty", id="empty origin"),
        pytest.param(f"o\n012\n{ROOT_B64}\n", "canonical decimal", id="leading zero"),
        pytest.param(f"o\n00\n{ROOT_B64}\n", "canonical decimal", id="double zero"),
        pytest.param(f"o\n+12\n{ROOT_B64}\n", "canonical decimal", id="plus sign"),
        pytest.param(f"o\n-1\n{ROOT_B64}\n", "canonical decimal", id="negative"),
        pytest.param(f"o\n 12\n{ROOT_B64}\n", "canonical decimal", id="leading space"),
        pytest.param(f"o\n12 \n{ROOT_B64}\n", "canonical decimal", id="trailing space"),
        pytest.param(f"o\n\n{ROOT_B64}\n", "canonical decimal", id="empty size"),
        pytest.param(f"o\n1_000\n{ROOT_B64}\n", "canonical decimal", id="underscore"),
        pytest.param(f"o\n\u0661\u0662\n{ROOT_B64}\n", "canonical decimal", id="arabic digits"),
        pytest.param(f"o\n0x10\n{ROOT_B64}\n", "canonical decimal", id="hex"),
        pytest.param(f"o\n{2**64}\n{ROOT_B64}\n", "larger than 2\\*\\*64-1", id="over uint64"),
        pytest.param("o\n12\nnot base64!\n", "not valid standard base64", id="bad base64"),
        pytest.param(f"o\n12\n{ROOT_B64[:-1]}\n", "base64", id="unpadded base64"),
        pytest.param(f"o\n12\n{ROOT.hex()}\n", "decodes to 48 bytes", id="hex root"),
        pytest.param("o\n12\nAAAA\n", "decodes to 3 bytes", id="root not 32 bytes"),
        pytest.param("o\n12\n\n", "base64|decodes to 0", id="empty root"),
        pytest.param(BODY + "\n", "extension line must be a non-empty", id="empty extension"),
        pytest.param(BODY.replace("r1", "r\t1"), "control character", id="control char"),
        pytest.param(b"o\xff\n12\nx\n", "UTF-8", id="invalid utf-8"),
    ],
)
def test_malformed_checkpoints_raise_checkpoint_error(text: Any, match: str) -> None:
    """Every malformed body raises CheckpointError naming the bad line."""
    with pytest.raises(CheckpointError, match=match):
        Checkpoint.parse(text)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"origin": ""}, "origin must be a non-empty", id="empty origin"),
        pytest.param({"origin": "a\nb"}, "contains a newline", id="origin with newline"),
        pytest.param({"size": -1}, "outside 0..2\\*\\*64-1", id="negative size"),
        pytest.param({"size": 2**64}, "outside", id="size over uint64"),
        pytest.param({"size": True}, "must be an int", id="bool size"),
        pytest.param({"size": "12"}, "must be an int", id="str size"),
        pytest.param({"root": ROOT[:31]}, "32 bytes", id="short root"),
        pytest.param({"root": ROOT.hex()}, "32 bytes", id="hex root"),
        pytest.param({"extensions": ("",)}, "extension line", id="empty extension"),
        pytest.param({"extensions": ["x"]}, "tuple", id="list of extensions"),
    ],
)
def test_checkpoint_record_validates_its_fields(kwargs: dict[str, Any], match: str) -> None:
    """A Checkpoint that could not be formatted and parsed back cannot be built."""
    fields: dict[str, Any] = {"origin": "o", "size": 1, "root": ROOT, **kwargs}
    with pytest.raises(CheckpointError, match=match):
        Checkpoint(**fields)


# --- origins and the log of runs ----------------------------------------------------------


def test_origins_name_the_ledger_and_the_run() -> None:
    """A run's tree is '<ledger>/run/<run id>'; the log of runs is '<ledger>/runs'."""
    assert run_origin("example.com/ledger", "r-42") == "example.com/ledger/run/r-42"
    assert runs_origin("example.com/ledger") == "example.com/ledger/runs"
    with pytest.raises(CheckpointError, match="ledger name"):
        runs_origin("")
    with pytest.raises(CheckpointError, match="run id"):
        run_origin("l", "bad\nid")


def test_run_leaf_is_the_canonical_json_of_run_id_size_and_hex_root() -> None:
    """The log-of-runs leaf is the RFC 8785 bytes of {run_id, size, root hex}, keys sorted."""
    leaf = run_leaf("r1", 3, ROOT)
    assert leaf == b'{"root":"' + ROOT.hex().encode() + b'","run_id":"r1","size":3}'
    assert leaf == canonical_bytes({"run_id": "r1", "size": 3, "root": ROOT.hex()})
    runs = [run_leaf(f"r{i}", i, ROOT) for i in range(3)]
    assert root([leaf_hash(x) for x in runs]) != root([leaf_hash(x) for x in runs[:2]])


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("", 1, ROOT), "run id"),
        (("r", -1, ROOT), "non-negative"),
        (("r", True, ROOT), "non-negative"),
        (("r", 1, ROOT.hex()), "32 bytes"),
        (("r", 1, ROOT[:16]), "32 bytes"),
    ],
)
def test_run_leaf_refuses_bad_values(args: tuple[Any, ...], match: str) -> None:
    """run_leaf raises CheckpointError for an empty run id, bad size or a root not 32 bytes."""
    with pytest.raises(CheckpointError, match=match):
        run_leaf(*args)


# --- signing and opening ------------------------------------------------------------------


def test_signed_checkpoint_opens_with_the_ledger_key() -> None:
    """sign_checkpoint then open_checkpoint returns the same checkpoint, origin checked."""
    cp = Checkpoint(origin="example.com/ledger/run/r1", size=12, root=ROOT, extensions=("x",))
    note = sign_checkpoint(cp, [LEDGER])
    assert note.startswith(cp.format().encode() + b"\n\xe2\x80\x94 example.com/ledger ")
    assert open_checkpoint(note, [LEDGER.vkey]) == cp
    assert open_checkpoint(note, [LEDGER.verifier()], origin=cp.origin) == cp


def test_checkpoint_signed_by_no_trusted_key_is_refused() -> None:
    """A checkpoint only an unknown key signed raises, naming who did sign it."""
    note = sign_checkpoint(Checkpoint.parse(BODY), [OTHER])
    with pytest.raises(CheckpointError, match=r"not signed by any trusted key.*other"):
        open_checkpoint(note, [LEDGER.vkey])


def test_tampered_checkpoint_is_refused_as_a_bad_signature() -> None:
    """Changing the size after signing fails the ledger's signature."""
    note = sign_checkpoint(Checkpoint.parse(BODY), [LEDGER]).replace(b"\n12\n", b"\n13\n")
    with pytest.raises(CheckpointError, match="does not verify"):
        open_checkpoint(note, [LEDGER.vkey])


def test_checkpoint_for_another_origin_is_refused() -> None:
    """With an expected origin, a checkpoint of another run raises naming both origins."""
    note = sign_checkpoint(Checkpoint.parse(BODY), [LEDGER])
    with pytest.raises(CheckpointError, match=r"run/r1.*expected.*run/r2"):
        open_checkpoint(note, [LEDGER.vkey], origin="example.com/ledger/run/r2")


def test_signed_note_with_a_malformed_body_is_refused() -> None:
    """A validly signed note whose text is not a checkpoint raises CheckpointError."""
    note = sign_note("example.com/ledger\n012\n" + ROOT_B64 + "\n", [LEDGER])
    with pytest.raises(CheckpointError, match="canonical decimal"):
        open_checkpoint(note, [LEDGER.vkey])


def test_sign_checkpoint_needs_a_checkpoint_record() -> None:
    """Passing the body text instead of a Checkpoint is refused."""
    with pytest.raises(CheckpointError, match="expected a Checkpoint"):
        sign_checkpoint(BODY, [LEDGER])  # type: ignore[arg-type]
