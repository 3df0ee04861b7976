"""Sealing: keys held outside the database, markers that open only with them, per-kind actions."""

from __future__ import annotations

import base64
import logging
import os
import re
from pathlib import Path
from typing import Any

import pytest
from tests.hostile._watch import forbidden, watched

from codon_sdk.errors import ConfigurationError, SealingKeyError
from codon_sdk.redaction import (
    MARKER_PATTERN,
    SEALED_MARKER_PATTERN,
    Redactor,
    StaticSealingKeys,
    generate_sealing_key,
    sealing_keys_from_environment,
)
from codon_sdk.redaction._sealing_keys import key_id_of

API_KEY = "sk-proj-Q7wErTy2uIoP9aSdFgH4jKlZ8xCvBnM1"
TEXT = f"my key is {API_KEY}, keep it"
KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 132))


def sealing(*keys: bytes, **kwargs: Any) -> Redactor:
    return Redactor(key=b"test-redaction-key", sealing_keys=StaticSealingKeys(list(keys)), **kwargs)


@pytest.fixture(autouse=True)
def no_env_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CODON_SEALING_KEY", raising=False)
    monkeypatch.delenv("CODON_SEALING_KEY_FILE", raising=False)


# ------------------------------------------------------------------ markers


def test_a_sealed_secret_opens_to_itself_and_masks_to_the_plain_marker() -> None:
    policy = sealing(KEY_A)
    sealed = policy.seal_text(TEXT)
    assert API_KEY not in sealed
    m = SEALED_MARKER_PATTERN.search(sealed)
    assert m is not None
    assert m["kind"] == "api_key"
    assert m["key_id"] == key_id_of(KEY_A)
    assert policy.unseal_value(sealed) == TEXT
    # the mask form (spans, logs, CLI) is the marker a masking policy writes: same digest
    masked = policy.redact_text(sealed)
    assert masked == Redactor(key=b"test-redaction-key").redact_text(TEXT)
    assert masked == policy.redact_text(TEXT)
    assert m["digest"] == MARKER_PATTERN.search(masked)["digest"]  # type: ignore[index]


def test_sealing_is_deterministic_idempotent_and_never_rescans_a_marker() -> None:
    policy = sealing(KEY_A, patterns={"blob": r"[A-Za-z0-9_-]{30,}"})
    sealed = policy.seal_text(TEXT)
    assert policy.seal_text(TEXT) == sealed  # same secret, same key: same marker
    assert policy.seal_text(sealed) == sealed  # its ciphertext is never redacted again
    assert policy.redact_text(sealed) == policy.redact_text(TEXT)
    other = sealing(KEY_B).seal_text(TEXT)
    assert other != sealed
    assert API_KEY not in other


def test_nested_values_open_everywhere_and_untouched_values_come_back_as_they_are() -> None:
    policy = sealing(KEY_A)
    value = {"k": [API_KEY, (1, API_KEY)], API_KEY: {"deep": {API_KEY}}}
    sealed = {
        "k": [policy.seal_text(API_KEY), (1, policy.seal_text(API_KEY))],
        policy.seal_text(API_KEY): {"deep": {policy.seal_text(API_KEY)}},
    }
    assert policy.unseal_value(sealed) == value
    plain = {"a": ["no secret", 3], "b": "[SEALED:not a marker]"}
    assert policy.unseal_value(plain) is plain


def test_card_numbers_sealed_keep_their_formatting() -> None:
    policy = sealing(KEY_A, detectors=("card_number",), actions={"card_number": "seal"})
    text = "card 4111 1111 1111 1111 ok"
    sealed = policy.seal_text(text)
    assert "4111" not in sealed
    assert policy.unseal_value(sealed) == text
    twice = "4111 1111 1111 1111 or 4111-1111-1111-1111"  # one card, one digest, two forms
    sealed = policy.seal_text(twice)
    assert "4111" not in sealed
    assert sealed.count("[SEALED:card_number:") == 2
    assert policy.unseal_value(sealed) == twice


# ------------------------------------------------------------------ what does not open


def _flip(marker: str, group: str, new: str) -> str:
    m = SEALED_MARKER_PATTERN.search(marker)
    assert m is not None
    return marker[: m.start(group)] + new + marker[m.end(group) :]


def test_markers_that_do_not_authenticate_never_decode() -> None:
    policy = sealing(KEY_A)
    sealed = policy.seal_text(API_KEY)
    m = SEALED_MARKER_PATTERN.search(sealed)
    assert m is not None
    box = m["box"]
    flipped = box[:-1] + ("A" if box[-1] != "A" else "B")
    forged = [
        _flip(sealed, "kind", "bearer_token"),  # the kind is bound
        _flip(sealed, "digest", "0" * 12),  # the digest is bound
        _flip(sealed, "box", flipped),  # the ciphertext is authenticated
        _flip(sealed, "box", box[:40]),  # cut short
        _flip(sealed, "box", base64.urlsafe_b64encode(os.urandom(60)).decode().rstrip("=")),
    ]
    for text in forged:
        with watched() as events, pytest.raises(SealingKeyError) as err:
            policy.unseal_value({"x": text}, where="run r9", run_id="r9")
        assert forbidden(events) == []
        assert "does not open with key" in str(err.value)
        assert "keys passed in code" in str(err.value)
        assert err.value.run_id == "r9"
    # another key that claims the same id does not open it either
    liar = Redactor(sealing_keys=StaticSealingKeys({key_id_of(KEY_A): KEY_B}))
    with pytest.raises(SealingKeyError, match="the key is wrong or the record was altered"):
        liar.unseal_value(sealed)


def test_a_marker_without_a_key_or_with_an_unknown_key_is_refused_naming_the_source() -> None:
    sealed = sealing(KEY_A).seal_text(TEXT)
    with pytest.raises(SealingKeyError, match="no sealing key is configured") as none:
        Redactor().unseal_value([sealed], where="run r1", run_id="r1")
    assert none.value.run_id == "r1"
    assert "CODON_SEALING_KEY" in str(none.value)
    with pytest.raises(SealingKeyError, match=f"sealed with key '{key_id_of(KEY_A)}'") as other:
        sealing(KEY_B).unseal_value(sealed)
    assert other.value.source == "keys passed in code"
    assert "erased" in str(other.value)  # a destroyed key is erasure
    with pytest.raises(SealingKeyError):
        Redactor.disabled().unseal_value(sealed)


def test_rotation_seals_with_the_first_key_and_opens_with_all() -> None:
    old = sealing(KEY_A).seal_text(TEXT)
    rotated = sealing(KEY_B, KEY_A)
    new = rotated.seal_text(TEXT)
    assert key_id_of(KEY_B) in new
    assert key_id_of(KEY_A) not in new
    assert rotated.unseal_value([old, new]) == [TEXT, TEXT]


# ------------------------------------------------------------------ key sources


class FlakyKMS:
    """A key source that can go down (like a KMS behind a network)."""

    source = "flaky-kms"

    def __init__(self) -> None:
        self.up = True

    def current(self) -> tuple[str, bytes]:
        if not self.up:
            raise ConnectionError(f"kms unreachable (was asked about {API_KEY})")
        return "kms-1", KEY_A

    def get(self, key_id: str) -> bytes | None:
        if not self.up:
            raise TimeoutError("kms timed out")
        return KEY_A if key_id == "kms-1" else None


def test_a_provider_that_fails_stops_sealing_and_opening_without_leaking() -> None:
    kms = FlakyKMS()
    policy = Redactor(sealing_keys=kms)
    sealed = policy.seal_text(TEXT)
    assert "[SEALED:api_key:" in sealed
    assert ":kms-1:" in sealed
    kms.up = False
    with pytest.raises(SealingKeyError, match="flaky-kms failed") as err:
        policy.seal_text(TEXT)
    assert API_KEY not in str(err.value)
    assert err.value.source == "flaky-kms"
    with pytest.raises(SealingKeyError, match="flaky-kms failed when asked"):
        policy.unseal_value(sealed)
    kms.up = True
    assert policy.unseal_value(sealed) == TEXT


def test_a_provider_giving_a_bad_key_is_refused() -> None:
    class Short(FlakyKMS):
        def current(self) -> tuple[str, bytes]:
            return "kms-1", b"short"

    with pytest.raises(SealingKeyError, match="not 32 bytes"):
        Redactor(sealing_keys=Short()).seal_text(TEXT)


def test_the_environment_key_seals_credentials_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    key = generate_sealing_key()
    monkeypatch.setenv("CODON_SEALING_KEY", key)
    policy = Redactor(detectors=("api_key", "email"))
    assert policy.sealing_source == "CODON_SEALING_KEY"
    assert dict(policy.actions)["api_key"] == "seal"
    assert dict(policy.actions)["email"] == "mask"  # personal data: masked unless asked
    text = f"{API_KEY} from ada@example.com"
    sealed = policy.seal_text(text)
    assert "[SEALED:api_key:" in sealed
    assert "[REDACTED:email:" in sealed
    assert "ada@example.com" not in policy.unseal_value(sealed)  # masked stays masked
    assert API_KEY in policy.unseal_value(sealed)
    keys = sealing_keys_from_environment()
    assert keys is not None
    assert keys.key_ids == (key_id_of(base64.b64decode(key)),)


def test_without_a_key_everything_masks() -> None:
    policy = Redactor()
    assert policy.sealing_source is None
    assert not policy.seals
    assert set(policy.actions.values()) == {"mask"}
    assert policy.seal_text(TEXT) == policy.redact_text(TEXT)


def test_a_key_file_with_rotation_and_its_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "sealing.keys"
    urlsafe = base64.urlsafe_b64encode(KEY_B).decode().rstrip("=")
    path.write_text(f"{urlsafe}\n{base64.b64encode(KEY_A).decode()}\n")
    path.chmod(0o600)
    monkeypatch.setenv("CODON_SEALING_KEY_FILE", str(path))
    keys = sealing_keys_from_environment()
    assert keys is not None
    assert keys.key_ids == (key_id_of(KEY_B), key_id_of(KEY_A))
    assert str(path) in keys.source
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="codon_sdk.redaction"):
        sealing_keys_from_environment()
    assert "can be read by other users" in caplog.text
    monkeypatch.setenv("CODON_SEALING_KEY_FILE", str(tmp_path / "missing.keys"))
    with pytest.raises(SealingKeyError, match="cannot read the sealing key file") as err:
        sealing_keys_from_environment()
    assert "missing.keys" in err.value.source


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not base64 at all!", "sealing key 1 in CODON_SEALING_KEY is not the base64 of 32 bytes"),
        (base64.b64encode(b"x" * 16).decode(), "is not the base64 of 32 bytes"),
        (f"{generate_sealing_key()},{base64.b64encode(b'y' * 31).decode()}", "sealing key 2"),
        (" , ", "holds no sealing key"),
    ],
)
def test_bad_environment_keys_are_refused_without_showing_them(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    monkeypatch.setenv("CODON_SEALING_KEY", value)
    with pytest.raises(SealingKeyError, match=re.escape(message)) as err:
        Redactor()
    for word in value.split(","):
        if word.strip():
            assert word.strip() not in str(err.value)


def test_both_key_variables_set_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CODON_SEALING_KEY", generate_sealing_key())
    monkeypatch.setenv("CODON_SEALING_KEY_FILE", str(tmp_path / "k"))
    with pytest.raises(SealingKeyError, match="set one"):
        Redactor()


def test_static_keys_check_their_input() -> None:
    with pytest.raises(SealingKeyError, match="not 32 bytes"):
        StaticSealingKeys(b"short")
    with pytest.raises(SealingKeyError, match="key id"):
        StaticSealingKeys({"bad id!": KEY_A})
    with pytest.raises(SealingKeyError, match="not among the keys"):
        StaticSealingKeys([KEY_A], current="nope")
    with pytest.raises(SealingKeyError, match="holds no sealing key"):
        StaticSealingKeys([])
    keys = StaticSealingKeys({"old": KEY_A, "new": KEY_B}, current="new")
    assert keys.current() == ("new", KEY_B)
    assert keys.get("old") == KEY_A
    assert keys.get("gone") is None
    assert KEY_A.hex() not in repr(keys)
    assert repr(KEY_A) not in repr(keys)


# ------------------------------------------------------------------ actions


def test_actions_choose_per_kind_including_user_patterns() -> None:
    policy = sealing(
        KEY_A,
        patterns={"employee_id": r"EMP-\d{6}"},
        actions={"api_key": "mask", "employee_id": "seal"},
    )
    sealed = policy.seal_text(f"{API_KEY} EMP-123456")
    assert "[REDACTED:api_key:" in sealed
    assert "[SEALED:employee_id:" in sealed
    assert policy.unseal_value(sealed).endswith("EMP-123456")
    assert dict(policy.actions)["bearer_token"] == "seal"  # the default with a key


@pytest.mark.parametrize(
    ("actions", "message"),
    [
        ({"apikey": "seal"}, "unknown redaction kind 'apikey'"),
        ({"api_key": "encrypt"}, "actions['api_key'] is 'encrypt'"),
        ({"employee_id": "mask"}, "unknown redaction kind 'employee_id'"),
    ],
)
def test_unknown_kinds_and_actions_are_refused_when_the_policy_is_built(
    actions: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        sealing(KEY_A, actions=actions)


def test_sealing_without_a_key_is_refused_when_the_policy_is_built() -> None:
    with pytest.raises(ConfigurationError, match="no sealing key is configured"):
        Redactor(actions={"api_key": "seal"})


def test_a_sealing_keys_object_of_the_wrong_shape_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="SealingKeys"):
        Redactor(sealing_keys=KEY_A)  # type: ignore[arg-type]
