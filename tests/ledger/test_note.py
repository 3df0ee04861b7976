"""C2SP signed notes with Ed25519: the known-answer vector, trust rules, keys, malformed notes."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codon_sdk.errors import CheckpointError
from codon_sdk.ledger._note import (
    MAX_SIGNATURES,
    Ed25519Signer,
    Note,
    NoteSignature,
    Signer,
    Verifier,
    check_note,
    ed25519_key_id,
    generate_key,
    open_note,
    sign_note,
)

TESTDATA = Path(__file__).resolve().parents[1] / "testdata"  # copy of ../shared/testdata
VECTOR: dict[str, str] = json.loads((TESTDATA / "signed-note.json").read_text())
VECTOR_NOTE = VECTOR["message"] + "\n" + VECTOR["signature_line"] + "\n"

ALICE = Ed25519Signer("example.com/alice", bytes(range(32)))
MALLORY = Ed25519Signer("example.com/alice", bytes(range(1, 33)))  # same name, other key
BOB = Ed25519Signer("example.com/bob", bytes(range(2, 34)))
TEXT = "example.com/alice/run/r1\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"


class ForeignSigner(Signer):
    """A signer that is not Ed25519Signer, as a KMS-backed key would be."""

    def __init__(self, inner: Ed25519Signer, *, key_id: int | None = None) -> None:
        self.inner = inner
        self._key_id = inner.key_id if key_id is None else key_id
        self.calls: list[bytes] = []

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def key_id(self) -> int:
        return self._key_id

    def sign(self, message: bytes) -> bytes:
        self.calls.append(message)
        return self.inner.sign(message)


# --- the known-answer vector ---------------------------------------------------------------


def test_vector_vkey_parses_to_its_name_and_key_id() -> None:
    """The vector's vkey splits into name, key id 530d903a and a 32-byte key, and formats back."""
    v = Verifier.from_vkey(VECTOR["vkey"])
    assert v.name == VECTOR["key_name"]
    assert f"{v.key_id:08x}" == VECTOR["key_id_hex"]
    assert len(v.public_key) == 32
    assert v.vkey == VECTOR["vkey"]
    assert ed25519_key_id(v.name, v.public_key) == int(VECTOR["key_id_hex"], 16)


def test_vector_signature_verifies_over_the_message_with_its_final_newline() -> None:
    """The vector's signature (key id || 64 bytes) verifies over the exact message bytes."""
    v = Verifier.from_vkey(VECTOR["vkey"])
    blob = base64.b64decode(VECTOR["signature_b64"])
    assert blob[:4].hex() == VECTOR["key_id_hex"]
    assert v.verify(VECTOR["message"].encode(), blob[4:])
    assert not v.verify(VECTOR["message"].rstrip("\n").encode(), blob[4:])


def test_vector_note_opens_with_the_vector_key() -> None:
    """The vector message plus its signature line is a note the vector vkey opens."""
    text, names = open_note(VECTOR_NOTE.encode(), [VECTOR["vkey"]])
    assert (text, names) == (VECTOR["message"], [VECTOR["key_name"]])
    parsed = Note.parse(VECTOR_NOTE)
    assert parsed.signatures[0].format() == VECTOR["signature_line"] + "\n"
    assert parsed.format() == VECTOR_NOTE.encode()


# --- signing and opening -------------------------------------------------------------------


def test_signed_note_round_trips_with_every_signer_verified() -> None:
    """sign_note then open_note gives back the text and each trusted signer's name, in order."""
    note = sign_note(TEXT, [ALICE, BOB])
    assert note.startswith(TEXT.encode() + b"\n\xe2\x80\x94 example.com/alice ")
    assert open_note(note, [BOB.verifier(), ALICE.vkey]) == (TEXT, [ALICE.name, BOB.name])
    assert open_note(note.decode(), [BOB.vkey]) == (TEXT, [BOB.name])


def test_note_text_may_contain_blank_lines() -> None:
    """The last blank line separates text from signatures; earlier blank lines are text."""
    text = "first\n\nthird\n\n"
    assert open_note(sign_note(text, [ALICE]), [ALICE.vkey]) == (text, [ALICE.name])


@settings(max_examples=30)
@given(
    st.lists(
        st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20), min_size=1
    ).map(lambda lines: "".join(line + "\n" for line in lines))
)
def test_any_valid_text_round_trips(text: str) -> None:
    """Any text of lines without control characters signs and opens unchanged."""
    assert open_note(sign_note(text, [ALICE]), [ALICE.vkey]) == (text, [ALICE.name])


def test_tampered_text_is_rejected_as_a_bad_signature() -> None:
    """Changing one character of the text makes the trusted signature fail: an error."""
    note = sign_note(TEXT, [ALICE]).replace(b"\n3\n", b"\n4\n")
    with pytest.raises(CheckpointError, match=r"example\.com/alice.*does not verify"):
        open_note(note, [ALICE.vkey])
    check = check_note(note, [ALICE.vkey])
    assert (check.verified, check.bad, check.trusted) == ((), (ALICE.name,), False)


def test_tampered_signature_bytes_are_a_bad_signature() -> None:
    """Flipping a bit in the signature (key id intact) is reported, not ignored."""
    sig = ALICE.sign(TEXT.encode())
    bad = bytes([sig[0] ^ 1]) + sig[1:]
    note = Note(
        text=TEXT, signatures=(NoteSignature(name=ALICE.name, key_id=ALICE.key_id, signature=bad),)
    ).format()
    assert check_note(note, [ALICE.vkey]).bad == (ALICE.name,)


def test_signature_of_wrong_length_by_a_known_key_is_a_bad_signature() -> None:
    """A known key's signature that is not 64 bytes fails verification (reported, no crash)."""
    short = NoteSignature(name=ALICE.name, key_id=ALICE.key_id, signature=b"\x01" * 10)
    note = Note(text=TEXT, signatures=(short,)).format()
    assert check_note(note, [ALICE.vkey]).bad == (ALICE.name,)


def test_attackers_key_with_the_same_name_is_not_trusted() -> None:
    """Mallory signs as 'example.com/alice' with her own key: the key id differs, so the
    signature is ignored and the note is unsigned by anyone trusted (not an error)."""
    note = sign_note(TEXT, [MALLORY])
    assert open_note(note, [ALICE.vkey]) == (TEXT, [])
    check = check_note(note, [ALICE.vkey])
    assert (check.verified, check.bad, check.unknown) == ((), (), (ALICE.name,))


def test_attacker_claiming_the_trusted_key_id_is_reported_as_bad() -> None:
    """Mallory copies Alice's name and key id but signs with her key: a broken signature."""
    note = sign_note(TEXT, [ForeignSigner(MALLORY, key_id=ALICE.key_id)])
    with pytest.raises(CheckpointError, match="does not verify"):
        open_note(note, [ALICE.vkey])


def test_unknown_keys_are_ignored_next_to_trusted_ones() -> None:
    """A note signed by Alice and by unknown Bob opens with Alice only; Bob is listed unknown."""
    note = sign_note(TEXT, [BOB, ALICE])
    assert open_note(note, [ALICE.vkey]) == (TEXT, [ALICE.name])
    check = check_note(note, [ALICE.vkey])
    assert (check.unknown, check.trusted) == ((BOB.name,), True)


def test_no_verifiers_means_nobody_is_trusted() -> None:
    """With an empty verifier list every signature is unknown and no name comes back."""
    assert open_note(sign_note(TEXT, [ALICE]), []) == (TEXT, [])


def test_bad_signature_rejects_the_note_even_when_another_key_verifies() -> None:
    """One failing trusted signature rejects the whole note, as the spec recommends."""
    good = sign_note(TEXT, [BOB])
    forged = NoteSignature(name=ALICE.name, key_id=ALICE.key_id, signature=b"\x00" * 64)
    note = good + forged.format().encode()
    with pytest.raises(CheckpointError, match="alice"):
        open_note(note, [ALICE.vkey, BOB.vkey])
    check = check_note(note, [ALICE.vkey, BOB.vkey])
    assert (check.verified, check.bad) == ((BOB.name,), (ALICE.name,))


def test_repeated_signatures_by_one_key_name_it_once() -> None:
    """A key that signed twice appears once among the verified names."""
    note = sign_note(TEXT, [ALICE, ALICE])
    assert open_note(note, [ALICE.vkey]) == (TEXT, [ALICE.name])


def test_a_custom_signer_signs_the_exact_text_bytes() -> None:
    """Any Signer implementation (e.g. a KMS) can sign; it receives the UTF-8 text bytes."""
    kms = ForeignSigner(BOB)
    note = sign_note(TEXT, [kms])
    assert kms.calls == [TEXT.encode("utf-8")]
    assert open_note(note, [BOB.vkey]) == (TEXT, [BOB.name])


def test_signer_is_abstract() -> None:
    """Signer cannot be instantiated without name, key_id and sign."""
    with pytest.raises(TypeError):
        Signer()  # type: ignore[abstract]


# --- keys ---------------------------------------------------------------------------------


def test_generated_keys_round_trip_and_sign() -> None:
    """generate_key gives an skey and vkey that load, match, and sign/verify notes."""
    skey, vkey = generate_key("example.com/fresh")
    assert skey.startswith("PRIVATE+KEY+example.com/fresh+")
    signer = Ed25519Signer.from_skey(skey)
    assert signer.vkey == vkey
    assert signer.skey == skey
    assert open_note(sign_note(TEXT, [signer]), [vkey]) == (TEXT, [signer.name])
    assert generate_key("example.com/fresh") != (skey, vkey)


def test_signer_repr_never_shows_the_seed() -> None:
    """repr of a signer names the key but does not leak the private seed."""
    text = repr(Ed25519Signer.from_skey(ALICE.skey))
    assert "example.com/alice" in text
    assert f"{ALICE.key_id:08x}" in text
    assert ALICE.skey.rsplit("+", 1)[1] not in text


def test_vkey_base64_with_plus_signs_is_split_only_twice() -> None:
    """A vkey whose base64 contains '+' still parses (only two '+' splits)."""
    for seed in range(200):
        signer = Ed25519Signer("example.com/k", bytes([seed]) * 32)
        if "+" in signer.vkey.split("+", 2)[2]:
            assert Verifier.from_vkey(signer.vkey).public_key == signer.public_key
            assert Ed25519Signer.from_skey(signer.skey).public_key == signer.public_key
            return
    pytest.fail("no key with '+' in its base64 among 200 seeds")


def _vkey_with(
    name: str = "example.com/alice", hex_id: str | None = None, blob: bytes = b""
) -> str:
    blob = blob or b"\x01" + ALICE.public_key
    hex_id = hex_id if hex_id is not None else f"{ALICE.key_id:08x}"
    return f"{name}+{hex_id}+{base64.b64encode(blob).decode()}"


@pytest.mark.parametrize(
    ("vkey", "match"),
    [
        pytest.param("example.com/alice", "is not '<name>", id="no separators"),
        pytest.param(_vkey_with(hex_id="0000000"), "not 8 hex digits", id="short key id"),
        pytest.param(_vkey_with(hex_id="00000000"), "key id 00000000", id="wrong key id"),
        pytest.param(_vkey_with(name=""), "non-empty", id="empty name"),
        pytest.param(_vkey_with(name="a b"), "space", id="space in name"),
        pytest.param(_vkey_with(name="a\u00a0b"), "space", id="unicode space in name"),
        pytest.param(_vkey_with(blob=b"\x02" + ALICE.public_key), "not an Ed25519", id="alg 2"),
        pytest.param(_vkey_with(blob=b"\x01" + ALICE.public_key[:31]), "33|32|Ed25519", id="31B"),
        pytest.param(_vkey_with()[:-4] + "!!!=", "not valid standard base64", id="bad base64"),
        pytest.param(_vkey_with()[:-1], "base64", id="unpadded base64"),
        pytest.param(ALICE.skey, "signer \\(private\\) key", id="an skey"),
    ],
)
def test_malformed_verifier_keys_raise_checkpoint_error(vkey: str, match: str) -> None:
    """Each malformed vkey raises CheckpointError saying what is wrong."""
    with pytest.raises(CheckpointError, match=match):
        Verifier.from_vkey(vkey)


def test_malformed_signer_keys_raise_without_echoing_the_secret() -> None:
    """A broken skey raises CheckpointError; the message does not contain the key material."""
    secret = ALICE.skey.split("+", 4)[4]
    for bad in (ALICE.skey[:-2] + "!=", ALICE.skey.replace("PRIVATE+KEY+", "")):
        with pytest.raises(CheckpointError) as info:
            Ed25519Signer.from_skey(bad)
        assert secret[:-3] not in str(info.value)
    wrong_id = ALICE.skey.replace(f"+{ALICE.key_id:08x}+", "+00000000+")
    with pytest.raises(CheckpointError, match="corrupt"):
        Ed25519Signer.from_skey(wrong_id)


def test_verifier_record_derives_its_key_id_and_validates() -> None:
    """Verifier(name, public_key) computes key_id; a bad key or name is refused."""
    assert Verifier(name=ALICE.name, public_key=ALICE.public_key).key_id == ALICE.key_id
    with pytest.raises(CheckpointError, match="32 bytes"):
        Verifier(name="a", public_key=b"short")
    with pytest.raises(CheckpointError, match=r"'\+'"):
        Verifier(name="a+b", public_key=ALICE.public_key)
    with pytest.raises(CheckpointError, match="32 bytes"):
        Ed25519Signer("a", b"short")


def test_missing_cryptography_raises_a_helpful_import_error(monkeypatch: Any) -> None:
    """Without the crypto extra, signing says how to install it."""
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.asymmetric.ed25519", None)
    with pytest.raises(ImportError, match=r'pip install "codon-sdk\[crypto\]"'):
        Ed25519Signer("example.com/x", b"\x07" * 32)
    monkeypatch.setitem(sys.modules, "cryptography.exceptions", None)
    with pytest.raises(ImportError, match="codon-sdk\\[crypto\\]"):
        ALICE.verifier().verify(b"m\n", b"\x00" * 64)


def test_parsing_notes_and_keys_needs_no_cryptography(monkeypatch: Any) -> None:
    """Note.parse and Verifier.from_vkey work without the crypto extra."""
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.asymmetric.ed25519", None)
    assert Verifier.from_vkey(VECTOR["vkey"]).name == VECTOR["key_name"]
    assert Note.parse(VECTOR_NOTE).text == VECTOR["message"]


# --- malformed notes ----------------------------------------------------------------------

SIG_LINE = VECTOR["signature_line"] + "\n"


@pytest.mark.parametrize(
    ("note", "match"),
    [
        pytest.param(VECTOR_NOTE[:-1], "does not end in a newline", id="missing final newline"),
        pytest.param(VECTOR["message"] + SIG_LINE, "no blank line", id="no blank line"),
        pytest.param("\n" + SIG_LINE, "text is empty", id="empty text"),
        pytest.param("", "note is empty", id="empty note"),
        pytest.param("text\n\n", "no signature lines", id="no signatures"),
        pytest.param(VECTOR_NOTE + "\n", "no signature lines", id="trailing blank line"),
        pytest.param(VECTOR_NOTE.replace("—", "-"), "em dash", id="hyphen for em dash"),
        pytest.param(VECTOR_NOTE.replace("Uw2Q", "U!2Q"), "base64", id="bad base64"),
        pytest.param(VECTOR_NOTE.replace("IneyaQM=", "IneyaQM"), "base64", id="unpadded"),
        pytest.param(VECTOR_NOTE.replace("aQM=", "aQN="), "canonical", id="non-canonical base64"),
        pytest.param("t\n\n— k AAAAAA==\n", "needs a 4-byte key id", id="signature too short"),
        pytest.param("t\n\n— k\n", "is not '— <key name>", id="signature without name"),
        pytest.param("t\n\n— a b AAAAAAAA\n", "is not '— <key name>", id="name with space"),
        pytest.param("t\n\n— a+b AAAAAAAA\n", r"'\+'", id="name with plus"),
        pytest.param("t\r\n\n— k AAAAAAAA\n", "control character", id="carriage return"),
        pytest.param("t\tx\n\n— k AAAAAAAA\n", "control character", id="tab"),
        pytest.param(b"t\xff\n\n\xe2\x80\x94 k AAAAAAAA\n", "UTF-8", id="invalid utf-8"),
        pytest.param("t\n\n" + "— k AAAAAAAA\n" * (MAX_SIGNATURES + 1), "more than", id="too many"),
        pytest.param(42, "bytes or str", id="not text"),
    ],
)
def test_malformed_notes_raise_checkpoint_error(note: Any, match: str) -> None:
    """Every malformed note raises CheckpointError with a message naming the problem."""
    with pytest.raises(CheckpointError, match=match):
        Note.parse(note)
    with pytest.raises(CheckpointError, match=match):
        open_note(note, [VECTOR["vkey"]])


def test_sixteen_signatures_are_accepted() -> None:
    """The spec requires accepting at least 16 signatures."""
    signers = [Ed25519Signer(f"example.com/k{i}", bytes([i]) * 32) for i in range(16)]
    note = sign_note(TEXT, signers)
    assert open_note(note, [s.vkey for s in signers])[1] == [s.name for s in signers]


@pytest.mark.parametrize(
    ("text", "signers", "match"),
    [
        pytest.param("", [ALICE], "ending in a newline", id="empty text"),
        pytest.param("no newline", [ALICE], "ending in a newline", id="missing newline"),
        pytest.param("a\x00b\n", [ALICE], "control character", id="control character"),
        pytest.param("a\ud800\n", [ALICE], "UTF-8", id="lone surrogate"),
        pytest.param(TEXT, [], "at least one signer", id="no signers"),
        pytest.param(TEXT, [ForeignSigner(ALICE, key_id=2**32)], "uint32", id="key id too big"),
    ],
)
def test_sign_note_refuses_what_it_cannot_sign(text: str, signers: Any, match: str) -> None:
    """sign_note raises CheckpointError for texts and signers that would make a broken note."""
    with pytest.raises(CheckpointError, match=match):
        sign_note(text, signers)
