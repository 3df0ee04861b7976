"""Key-aware and wider detection: credential-named keys, passwords, URL credentials, cloud keys.

Fake secrets are assembled from pieces (``_k``) so that secret scanners do not flag
this file; none of them is a real credential.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from codon_sdk import CodonWorkload, MemoryStore
from codon_sdk.identity._canonical import canonical_bytes, prepare
from codon_sdk.redaction import (
    ALL_DETECTORS,
    DEFAULT_CREDENTIAL_KEYS,
    DEFAULT_DETECTORS,
    MARKER_PATTERN,
    Redactor,
    is_credential_key,
)
from codon_sdk.stores._open import mask_url
from codon_sdk.testing import capture_spans

KEY = b"test-redaction-key-0123456789abcdef"
R = Redactor(key=KEY)


def _k(*parts: str) -> str:
    return "".join(parts)


# ------------------------------------------------------------------ credential keys


@pytest.mark.parametrize(
    "key",
    [
        "api_key",
        "apiKey",
        "API-KEY",
        "X-API-Key",
        "x_api_key",
        "Api Key",
        "password",
        "Password",
        "db_password",
        "PGPASSWORD",
        "passwd",
        "pwd",
        "secret",
        "client_secret",
        "token",
        "access_token",
        "Authorization",
        "cookie",
        "Set-Cookie",
        "aws_secret_access_key",
        "private.key",
        "credentials",
    ],
)
def test_a_value_under_a_credential_key_is_masked_whole_whatever_its_shape(key: str) -> None:
    assert is_credential_key(key)
    value = {key: "hunter2", "other": "kept"}
    out = R.redact_value(value)
    assert out[key] == R.marker_for("hunter2", "credential_key")
    assert out["other"] == "kept"


@pytest.mark.parametrize(
    "key", ["max_tokens", "tokens", "key", "author", "name", "keys", "passage", "tokenizer"]
)
def test_ordinary_keys_are_judged_by_their_values_only(key: str) -> None:
    assert not is_credential_key(key)
    assert R.redact_value({key: "hunter2"}) == {key: "hunter2"}


def test_every_scalar_under_a_credential_key_is_masked_none_and_booleans_stay() -> None:
    value = {
        "password": 123456,
        "token": 1.5,
        "secret": [b"raw", "two", {"inner": "three"}],
        "cookie": None,
        "api_key": True,
        "auth": ("user", "pw"),
    }
    out = R.redact_value(value)
    assert out["password"] == R.marker_for("123456", "credential_key")
    assert out["token"] == R.marker_for("1.5", "credential_key")
    assert out["secret"][0] == R.marker_for("raw", "credential_key")
    assert out["secret"][2]["inner"] == R.marker_for("three", "credential_key")
    assert out["cookie"] is None
    assert out["api_key"] is True
    assert out["auth"] == tuple(R.marker_for(s, "credential_key") for s in ("user", "pw"))
    assert R.redact_value(out) == out  # idempotent: markers stay


def test_an_object_under_a_credential_key_becomes_one_marker_of_its_type() -> None:
    class Opaque:
        def __repr__(self) -> str:
            return "Opaque(secret=hunter2)"

    out = R.redact_value({"password": Opaque()})
    assert "hunter2" not in str(out)
    assert MARKER_PATTERN.fullmatch(out["password"])


def test_credential_keys_are_configurable_and_replace_the_defaults() -> None:
    only_ssn = Redactor(key=KEY, credential_keys=["SSN"])
    assert only_ssn.credential_keys == ("ssn",)
    assert only_ssn.redact_value({"ssn": "078-05-1120", "api_key": "low"})["api_key"] == "low"
    assert only_ssn.redact_value({"customer-SSN": "078-05-1120"})["customer-SSN"].startswith(
        "[REDACTED:credential_key:"
    )
    extended = Redactor(key=KEY, credential_keys=DEFAULT_CREDENTIAL_KEYS | {"ssn"})
    out = extended.redact_value({"ssn": "078-05-1120", "api_key": "low"})
    assert all(v.startswith("[REDACTED:credential_key:") for v in out.values())


def test_without_the_credential_key_detector_keys_do_not_matter() -> None:
    texts_only = Redactor(
        key=KEY, detectors=[d for d in DEFAULT_DETECTORS if d != "credential_key"]
    )
    assert texts_only.credential_keys == ()
    assert texts_only.redact_value({"password": "low"}) == {"password": "low"}
    assert Redactor.disabled().redact_value({"password": "low"}) == {"password": "low"}


@pytest.mark.parametrize("bad", ["", "  ", "_-.", 7, None])
def test_a_bad_credential_key_name_is_refused_at_configuration(bad: Any) -> None:
    with pytest.raises(ValueError, match="invalid credential key name"):
        Redactor(credential_keys=["api_key", bad])


def test_an_unknown_detector_is_refused_at_configuration_naming_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown redaction detector 'passwords'") as info:
        Redactor(detectors=["passwords"])
    for name in ALL_DETECTORS:
        assert name in str(info.value)


# ------------------------------------------------------------------ the canonical encoder


def test_the_canonical_encoder_masks_values_under_credential_keys_on_every_path() -> None:
    hook = R.redact_text
    flat = prepare({"password": "low", "n": 1}, hook)  # the small-dict fast path
    assert flat["password"] == R.marker_for("low", "credential_key")
    nested = canonical_bytes({"outer": [{"X-API-Key": 42}]}, hook)
    assert b"42" not in nested
    assert R.marker_for("42", "credential_key").encode() in nested
    tagged = canonical_bytes({"$codon": 1, "token": "low"}, hook)  # an escaped map
    assert b'"low"' not in tagged
    assert prepare({"max_tokens": 5, "text": "plain"}, hook) == {"max_tokens": 5, "text": "plain"}
    plain = {"a": 1, "b": "x"}
    assert prepare(plain, hook) is plain  # nothing to mask: the very same object


def test_a_run_records_values_under_credential_keys_masked_and_the_node_sees_them() -> None:
    seen: list[Any] = []

    def node(message: Any, *, runtime: Any, context: Any) -> Any:
        runtime.state["pin"] = 1234
        runtime.state["password"] = 987654  # a number, on the state's plain fast path
        runtime.state["db"] = {"user": "app", "passwd": "hunter2"}
        seen.append(message)
        return {"api_key": message["api_key"]}

    store = MemoryStore()
    workload = CodonWorkload(name="keys", version="1", org_namespace="t")
    workload.add_node(node, "node", "r")
    report = workload.execute(
        {"api_key": "opensesame"}, deployment_id="d", store=store, run_id="r1"
    )
    text = b"\n".join(store.read("r1")).decode()
    for raw in ("opensesame", "987654", "hunter2"):
        assert raw not in text
    assert '"pin":1234' in text  # not a credential name
    assert seen == [{"api_key": "opensesame"}]  # the live value
    assert report.node_results("node") == [{"api_key": "opensesame"}]


# ------------------------------------------------------------------ passwords in text


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("password=hunter2", "hunter2"),
        ("connect with Password: hunter2, then", "hunter2"),
        ("PGPASSWORD=hunter2 psql", "hunter2"),
        ("db_passwd = 'hunter 2'", "hunter 2"),
        ('{"password": "hunter \\" 2"}', 'hunter \\" 2'),
        ('{\\"pwd\\": \\"hunter2\\"}', "hunter2"),
        ("https://h/x?user=u&password=hunter2&next=1", "hunter2"),
        ("postgresql://app:hunter2@db:5432/x", "hunter2"),
        ("redis://:hunter2@cache:6379/0", "hunter2"),
        ("amqp://guest:gu%40st@mq/", "gu%40st"),
        ("passphrase: correct horse", "correct"),
    ],
)
def test_passwords_are_found_in_text(text: str, secret: str) -> None:
    out = R.redact_text(text)
    assert secret not in out
    assert R.marker_for(secret, "password") in out


@pytest.mark.parametrize(
    "text",
    [
        "password: null",
        "password=None",
        '"password": ""',
        "password=***",
        "postgresql://app:***@db/x",
        "postgresql://app@db/x",
        "the password field is required",
        "https://example.com/user@host",
        "cwd=/home/app",
    ],
)
def test_what_is_not_a_password_is_left_alone(text: str) -> None:
    assert R.redact_text(text) == text


def test_a_masked_password_is_not_masked_again() -> None:
    once = R.redact_text("password=hunter2 postgresql://a:b-pw@h/x")
    assert R.redact_text(once) == once


# ------------------------------------------------------------------ cloud keys


AWS_ID = _k("AKIA", "Q3J5T7V9X2Z4B6D8")
AWS_SECRET = _k("wJalrXUtnFEMI/K7MDENG/", "bPxRfiCY9EXAMPLEKE")


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"{AWS_ID} {AWS_SECRET}", AWS_SECRET),
        (f'{{"AccessKeyId": "{AWS_ID}", "SecretAccessKey": "{AWS_SECRET}"}}', AWS_SECRET),
        (f"aws_secret_access_key = {AWS_SECRET}", AWS_SECRET),
        (
            _k(
                "AccountName=a;AccountKey=", "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IF", "==;"
            ),
            _k("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IF", "=="),
        ),
        (
            _k("https://a.blob.core.windows.net/c?sv=2022&sig=", "Zm9vYmFyYmF6cXV4%2Bquux%3D"),
            _k("Zm9vYmFyYmF6cXV4%2Bquux%3D"),
        ),
        (_k("client secret ", "AbC8Q~", "abcdefghijklmnopqrstuvwxyz012345"), "AbC8Q~abcdefghij"),
        (_k("token ya29.", "a0AfH6SMBx3kLmNoPqRsTuVwXyZ012345"), "a0AfH6SMBx3kLmNoPqRs"),
        (_k("GOCSPX-", "1a2B3c4D5e6F7g8H9i0J1k2L3m4N"), "1a2B3c4D5e6F7g8H9i0J"),
    ],
)
def test_cloud_credentials_are_found(text: str, secret: str) -> None:
    out = R.redact_text(text)
    assert secret not in out
    assert "[REDACTED:api_key:" in out


def test_a_40_character_string_alone_is_not_taken_for_an_aws_secret() -> None:
    """Without an access key id nearby (or a credential key), it could be anything: a
    git hash-like id, a base64 digest; only the id makes it an AWS secret."""
    text = f"digest {AWS_SECRET}"
    assert R.redact_text(text) == text
    assert R.redact_value({"aws_secret_access_key": AWS_SECRET})["aws_secret_access_key"] == (
        R.marker_for(AWS_SECRET, "credential_key")
    )


# ------------------------------------------------------------------ URLs shown to users


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:pw1@h:5432/d", "postgresql://u:***@h:5432/d"),
        ("postgresql://h/d?user=u&password=pw1", "postgresql://h/d?user=u&password=***"),
        (
            "postgresql://h/d?sslpassword=pw1&application_name=x",
            "sslpassword=***&application_name=x",
        ),
        ("postgresql://u:pw1@h/d?password=pw1", "postgresql://u:***@h/d?password=***"),
        ("sqlite:///ledger.db", "sqlite:///ledger.db"),
    ],
)
def test_store_urls_are_shown_without_passwords(url: str, shown: str) -> None:
    masked = mask_url(url)
    assert "pw1" not in masked
    assert shown in masked


# ------------------------------------------------------------------ spans


def test_a_node_exception_reaches_its_span_redacted_never_raw(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = _k("sk-proj-", "Zx81Qw2Er3Ty4Ui5Op6As7Df8Gh9Jk0Lz")

    def node(message: Any, *, runtime: Any, context: Any) -> Any:
        raise ConnectionError(f"cannot reach postgresql://app:hunter2@db/x with {secret}")

    workload = CodonWorkload(name="spans", version="1", org_namespace="t", enable_tracing=True)
    workload.add_node(node, "node", "r")
    caplog.set_level(logging.DEBUG)
    with capture_spans() as captured, pytest.raises(Exception, match="cannot reach"):
        workload.execute("go", deployment_id="d", store=MemoryStore())
    for span in captured.spans:
        dumped = span.to_json()
        assert "hunter2" not in dumped
        assert secret not in dumped
    node_span = next(s for s in captured.spans if s.name == "codon.node.node")
    events = [e for e in node_span.events if e.name == "exception"]
    assert len(events) == 1  # ours, never OpenTelemetry's raw record as well
    attrs = events[0].attributes or {}
    assert attrs["exception.type"] == "ConnectionError"
    assert "[REDACTED:password:" in str(attrs["exception.message"])
    assert "[REDACTED:api_key:" in str(attrs["exception.stacktrace"])
    assert "Traceback" in str(attrs["exception.stacktrace"])
    assert node_span.status.description is not None
    assert "[REDACTED:password:" in node_span.status.description
    run_span = next(s for s in captured.spans if s.name.startswith("invoke_workflow"))
    assert len([e for e in run_span.events if e.name == "exception"]) == 1


# ------------------------------------------------------------------ logs


def test_codon_log_lines_pass_the_policy_message_arguments_and_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from codon_sdk.redaction import get_logger

    log = get_logger("codon_sdk.telemetry")
    assert get_logger("codon_sdk.telemetry").filters.count(log.filters[0]) == 1  # added once
    caplog.set_level(logging.DEBUG, logger="codon_sdk")
    try:
        raise RuntimeError("server said: password=hunter2")
    except RuntimeError:
        log.warning("could not describe %s", "postgresql://app:pw-9x@db/x", exc_info=True)
    record = caplog.records[-1]
    assert "pw-9x" not in caplog.text
    assert "hunter2" not in caplog.text
    assert "[REDACTED:password:" in record.getMessage()
    assert record.exc_text is not None
    assert "RuntimeError" in record.exc_text


def test_remembered_clean_texts_never_include_a_secret_and_change_no_result() -> None:
    policy = Redactor(key=KEY)
    secret = "password=hunter2"
    for _ in range(3):
        assert policy.redact_text("count") == "count"
        assert policy.redact_text(secret) == policy.redact_text(secret) != secret
    assert "count" in policy._clean
    assert secret not in policy._clean
    assert not any("hunter2" in t for t in policy._clean)
    calls: list[str] = []

    def impure(text: str) -> list[tuple[int, int, str]]:
        calls.append(text)
        return [(0, len(text), "flagged")] if len(calls) > 1 else []

    hooked = Redactor(key=KEY, callables=[impure])
    assert hooked.redact_text("count") == "count"
    assert hooked.redact_text("count") == hooked.marker_for("count", "flagged")  # asked again
