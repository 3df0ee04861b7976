"""The redaction policy: detectors, markers, keys, copy-on-write values, hooks, idempotence.

Fake secrets are assembled from pieces (``_k``) so that secret scanners do not flag
this file; none of them is a real credential.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.util.types import AttributeValue

from codon_sdk.redaction import (
    ALL_DETECTORS,
    DEFAULT_DETECTORS,
    KEY_ENV_VAR,
    MARKER_PATTERN,
    Redactor,
    default_redactor,
    set_default_redactor,
)
from codon_sdk.redaction import _redactor as _redaction

KEY = b"test-redaction-key-0123456789abcdef"


def _k(*parts: str) -> str:
    return "".join(parts)


OPENAI = _k("sk-", "proj-", "Ab3dEfGh1jKlMnOpQrStUvWx9z")
OPENAI_LEGACY = _k("sk-", "Zx81Qw3Er5Ty7Ui9Op1AsDfGhJkLz")
ANTHROPIC = _k("sk-", "ant-api03-", "abcdEFGHijklMNOPqrst0123456789-AbCd")
AWS = _k("AKIA", "IOSFODNN7EXAMPLE")
AWS_TEMP = _k("ASIA", "Q2W3E4R5T6Y7U8I9")
GITHUB = _k("ghp_", "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5")
GITHUB_PAT = _k("github_", "pat_", "11ABCDEFG0123456789_abcdefghijKLMNOPqrstuvwxyz0123456789AB")
GOOGLE = _k("AIza", "SyA-1234567890abcdefghijklmnopqrstu")
SLACK = _k("xox", "b-", "1234567890-0987654321-AbCdEfGhIjKlMnOp")
STRIPE = _k("sk_", "live_", "4eC39HqLyjWDarjtT1zdp7dc")
STRIPE_RESTRICTED = _k("rk_", "live_", "51HxYzAbCdEfGh12345678")
GENERIC = _k("Zx8Qw3Er5", "Ty7Ui9Op1As")
JWT = _k("eyJhbGciOiJIUzI1NiJ9", ".eyJzdWIiOiIxMjM0NTY3ODkwIn0", ".dBjftJeZ4CVPmB92K27uhbUJU1p1r")
BASIC = "dXNlcjpwYXNzd29yZA=="  # base64("user:password")
PEM = _k(
    "-----BEGIN RSA ",
    "PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo\n4lgOEePzNm0tRgeLezV6ffAt0gunVTLw\n",
    "-----END RSA PRIVATE KEY-----",
)
VISA = "4111111111111111"
AMEX = "378282246310005"
MASTERCARD = "5555555555554444"
EMAIL = "jane.doe+agents@example.co.uk"


@pytest.fixture
def redactor() -> Redactor:
    return Redactor(key=KEY)


@pytest.fixture
def everything() -> Redactor:
    return Redactor(key=KEY, detectors=ALL_DETECTORS)


def _hmac12(secret: str, key: bytes = KEY) -> str:
    return hmac.new(key, secret.encode("utf-8"), hashlib.sha256).hexdigest()[:12]


# ------------------------------------------------------------------- true positives

POSITIVES = [
    # (text, secret, kind)
    (f"OPENAI_API_KEY={OPENAI}", OPENAI, "api_key"),
    (f"GET https://api.example.com/v1/models?key={OPENAI_LEGACY}&x=1", OPENAI_LEGACY, "api_key"),
    (f'{{"model": "claude", "key": "{ANTHROPIC}"}}', ANTHROPIC, "api_key"),
    (f"2024-05-01T10:00:00Z INFO boto: using key {AWS} for s3", AWS, "api_key"),
    (f"aws_access_key_id = {AWS_TEMP}", AWS_TEMP, "api_key"),
    (f"git clone https://{GITHUB}@github.com/org/repo.git", GITHUB, "api_key"),
    (f"GH_TOKEN='{GITHUB_PAT}'", GITHUB_PAT, "api_key"),
    (f"https://maps.googleapis.com/maps/api/geocode/json?key={GOOGLE}", GOOGLE, "api_key"),
    (f"slack token {SLACK} rotated", SLACK, "api_key"),
    (f"stripe.api_key = '{STRIPE}'", STRIPE, "api_key"),
    (f"[{STRIPE_RESTRICTED}]", STRIPE_RESTRICTED, "api_key"),
    (f"api_key={GENERIC}", GENERIC, "api_key"),
    (f"apikey: {GENERIC}", GENERIC, "api_key"),
    (f'{{"api_key": "{GENERIC}", "n": 1}}', GENERIC, "api_key"),
    (f'{{\\"apiKey\\": \\"{GENERIC}\\"}}', GENERIC, "api_key"),
    (f"X-API-Key: {GENERIC}\r\nHost: example.com", GENERIC, "api_key"),
    (f"https://idp.example.com/token?client_secret={GENERIC}&grant=1", GENERIC, "api_key"),
    (f"Authorization: Bearer {JWT}", JWT, "bearer_token"),
    (f"{{'authorization': 'bearer {JWT}'}}", JWT, "bearer_token"),
    ("AUTHORIZATION=Token abc123xyz", "abc123xyz", "bearer_token"),
    (f"curl -H 'Authorization: Basic {BASIC}' https://x", BASIC, "bearer_token"),
    (f"retrying with Bearer {JWT} after 401", JWT, "bearer_token"),
    (f"proxy sent Basic {BASIC} upstream", BASIC, "bearer_token"),
    (f"2024-05-01 DEBUG id_token={JWT}", JWT, "bearer_token"),
    (f"config loaded\n{PEM}\nnext line", PEM, "private_key"),
    (
        '{"key": "' + PEM.replace("\n", "\\n") + '"}',
        PEM.replace("\n", "\\n"),
        "private_key",
    ),
]


@pytest.mark.parametrize(("text", "secret", "kind"), POSITIVES, ids=lambda v: str(v)[:24])
def test_default_detectors_mask_each_secret_with_its_kind_marker(
    redactor: Redactor, text: str, secret: str, kind: str
) -> None:
    """Every built-in credential format is found in URLs, JSON, headers and log lines."""
    out = redactor.redact_text(text)
    assert secret not in out
    assert redactor.marker_for(secret, kind) in out


def test_cut_off_private_key_is_masked_to_its_end(redactor: Redactor) -> None:
    """A PEM block without its END line (a truncated log) is still masked."""
    text = PEM.split("-----END")[0] + '" truncated'
    out = redactor.redact_text(text)
    assert "MIIEow" not in out
    assert "PRIVATE KEY" not in out
    assert out.endswith('" truncated')


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"card {VISA} on file", VISA),
        ("card 4111 1111 1111 1111 exp 12/29", "4111 1111 1111 1111"),
        ("card 4111-1111-1111-1111.", "4111-1111-1111-1111"),
        ("amex 3782 822463 10005 ok", "3782 822463 10005"),
        (f'{{"pan": "{MASTERCARD}"}}', MASTERCARD),
        ("4111 1111 1111 1111 123", "4111 1111 1111 1111"),  # CVV appended
        ("order 2024 4111 1111 1111 1111", "4111 1111 1111 1111"),  # a number before it
    ],
)
def test_card_numbers_passing_luhn_are_masked_when_enabled(
    everything: Redactor, text: str, secret: str
) -> None:
    """13-19 digits (grouped or not) that pass Luhn become card_number markers."""
    out = everything.redact_text(text)
    assert secret not in out
    assert everything.marker_for(secret, "card_number") in out


def test_email_addresses_are_masked_when_enabled(everything: Redactor) -> None:
    """E-mail addresses in prose and in mailto links become email markers."""
    out = everything.redact_text(f"write to {EMAIL} or <mailto:{EMAIL}>.")
    assert EMAIL not in out
    assert out.count(everything.marker_for(EMAIL, "email")) == 2


def test_email_and_card_numbers_are_kept_by_default(redactor: Redactor) -> None:
    """Personal data is opt-in: the default policy leaves e-mails and card numbers alone."""
    text = f"{EMAIL} paid with {VISA}"
    assert redactor.redact_text(text) is text
    assert redactor.detectors == DEFAULT_DETECTORS


# ------------------------------------------------------------------- near misses

NEAR_MISSES = [
    "skip the sketchy skeleton; sk-learn is a library",
    "the task-0123456789abcdefghijklmnop was done",  # "sk-" inside a word
    "risk-adjusted-returns-over-the-long-horizon-2024",
    "sk-no-digits-in-this-long-hyphenated-phrase",
    "the bearer of this letter is trusted",
    "Bearer of bad news: the shipment is late",
    "Basic training starts at dawn; basic income debates continue",
    "api_key=os.environ.get('OPENAI_API_KEY')",
    "api_key: str = Field(default=None)",
    "monkey: Zx8Qw3Er5Ty7Ui9Op1As",  # not a credential name
    "password hint: aaaaaaaaaaaaaaaaaaaaaa",
    "AKIA is not a key on its own, nor is AKIAshort",
    "ghp_short and github_pat_x",
    "Authorization: Bearer <token>",
    "next_page_token=Zx8Qw3Er5Ty7Ui9Op1As",
]


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_near_misses_are_left_untouched(everything: Redactor, text: str) -> None:
    """Ordinary words starting with sk, 'bearer' in prose, code, short prefixes are not secrets."""
    assert everything.redact_text(text) is text


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111112",  # 16 digits failing Luhn
        "order 1234 5678 9012 3456 shipped",  # fails Luhn
        "epoch ms 1700000000000 and isbn 978-3-16-148410-0",
        "phone +44 20 7946 0958, date 2024-01-15 12:30:45",
        "1234567890123456789012345",  # a long digit run is not a card
        "user@localhost and @mention and a@b",
    ],
)
def test_digit_runs_and_at_signs_that_are_not_cards_or_emails_stay(
    everything: Redactor, text: str
) -> None:
    """Card detection needs Luhn and an issuer digit; e-mails need a dotted domain."""
    assert everything.redact_text(text) is text


# ------------------------------------------------------------------- markers and keys


def test_marker_names_the_kind_and_a_12_hex_hmac_of_the_secret(redactor: Redactor) -> None:
    """The marker is [REDACTED:<kind>:<first 12 hex of HMAC-SHA256(key, secret)>]."""
    out = redactor.redact_text(f"key {OPENAI}")
    assert out == f"key [REDACTED:api_key:{_hmac12(OPENAI)}]"
    match = MARKER_PATTERN.search(out)
    assert match is not None
    assert (match["kind"], match["digest"]) == ("api_key", _hmac12(OPENAI))


def test_equal_secrets_get_equal_markers_under_one_key() -> None:
    """Two policies with one key, and two places in one text, give one marker per secret."""
    a, b = Redactor(key=KEY), Redactor(key=KEY.decode())
    text = f"first {AWS}, again {AWS}"
    out = a.redact_text(text)
    assert out == b.redact_text(text)
    assert out.count(a.marker_for(AWS, "api_key")) == 2


def test_the_same_secret_correlates_across_contexts(redactor: Redactor) -> None:
    """A key in a URL, in JSON and in a header yields the same digest everywhere."""
    outs = [
        redactor.redact_text(f"https://x/?key={OPENAI}"),
        redactor.redact_text(f'{{"key": "{OPENAI}"}}'),
        redactor.redact_text(f"Authorization: Bearer {OPENAI}"),  # the specific kind wins
    ]
    marker = redactor.marker_for(OPENAI, "api_key")
    assert all(marker in out for out in outs)


def test_card_and_email_markers_ignore_formatting(everything: Redactor) -> None:
    """Card digits hash without separators and e-mails hash in lower case."""
    spaced = everything.redact_text("4111 1111 1111 1111")
    dashed = everything.redact_text("4111-1111-1111-1111")
    plain = everything.redact_text(VISA)
    assert spaced == dashed == plain
    assert everything.redact_text(EMAIL.upper()) == everything.redact_text(EMAIL)


def test_different_keys_give_different_markers() -> None:
    """Markers under another key do not match, so they cannot be compared across keys."""
    text = f"key {OPENAI}"
    assert Redactor(key=b"one" * 11).redact_text(text) != Redactor(key=b"two" * 11).redact_text(
        text
    )


def test_environment_key_is_used_when_no_key_is_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    """CODON_REDACTION_KEY supplies the key (UTF-8), so processes share markers."""
    monkeypatch.setenv(KEY_ENV_VAR, KEY.decode())
    from_env = Redactor()
    assert from_env.key_source == "environment"
    assert from_env.redact_text(OPENAI) == Redactor(key=KEY).redact_text(OPENAI)


def test_missing_key_falls_back_to_one_process_key_announced_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Without key= or the variable, a random per-process key is used and announced once
    (at INFO: the default policy is built on every first run, and is not an error)."""
    monkeypatch.delenv(KEY_ENV_VAR, raising=False)
    monkeypatch.setattr(_redaction, "_process_key", None)
    with caplog.at_level(logging.INFO, logger="codon_sdk.redaction"):
        first, second = Redactor(), Redactor()
    warnings = [r for r in caplog.records if "will not correlate across processes" in r.message]
    assert len(warnings) == 1
    assert first.key_source == second.key_source == "process"
    assert first.redact_text(OPENAI) == second.redact_text(OPENAI)
    assert first.redact_text(OPENAI) != Redactor(key=KEY).redact_text(OPENAI)


def test_empty_key_is_rejected() -> None:
    """An empty key would make markers guessable: construction fails with a clear message."""
    with pytest.raises(ValueError, match="redaction key is empty"):
        Redactor(key=b"")


def test_repr_names_the_policy_but_never_the_key() -> None:
    """repr shows detectors, pattern kinds and the key source, not the key bytes."""
    text = repr(Redactor(key=KEY, patterns={"employee_id": r"EMP-\d{6}"}))
    assert "employee_id" in text
    assert "explicit" in text
    assert KEY.decode() not in text


# ------------------------------------------------------------------- identity and values


def test_clean_text_comes_back_as_the_same_object(redactor: Redactor) -> None:
    """No secret: the very same string object, also when gate characters are present."""
    for text in ["", "hello", "Note: a=b, well-known API_KEY docs; Bearer? Basic!", "x" * 10_000]:
        assert redactor.redact_text(text) is text


def test_redact_value_returns_unchanged_structures_as_is(redactor: Redactor) -> None:
    """Nothing to redact: the same dict, with no copies made."""
    value = {"a": [1, 2.5, None, True, "plain"], "b": {"c": ("x", "y")}, "d": {1, 2}}
    assert redactor.redact_value(value) is value


def test_redact_value_copies_only_the_path_to_a_change(redactor: Redactor) -> None:
    """Changed leaves are replaced; untouched siblings are the very same objects."""
    sibling = {"deep": ["keep", "me"]}
    value: dict[str, Any] = {"ok": sibling, "msgs": ["hi", f"use {OPENAI}"], "n": 3}
    out = redactor.redact_value(value)
    assert out is not value
    assert out["ok"] is sibling
    assert out["msgs"][0] == "hi"
    assert OPENAI not in out["msgs"][1]
    assert value["msgs"][1] == f"use {OPENAI}"  # the input is never mutated
    assert list(out) == ["ok", "msgs", "n"]  # key order is kept


def test_redact_value_masks_dict_keys_and_every_container_kind(redactor: Redactor) -> None:
    """Dict keys, tuples, sets, frozensets, bytes and str subclasses are all scanned."""

    class Name(str):
        pass

    value: dict[Any, Any] = {
        OPENAI: "owner",
        "t": (1, AWS),
        "s": {AWS},
        "f": frozenset({AWS}),
        "b": f"token {GITHUB}".encode(),
        "sub": Name(f"api_key={GENERIC} "),
        "binary": b"\xff\xfe" + OPENAI.encode(),  # not UTF-8: left alone
    }
    out = redactor.redact_value(value)
    dumped = repr(out)
    for secret in (OPENAI, AWS, GITHUB, GENERIC):
        assert secret not in dumped.replace(repr(value["binary"]), "")
    assert redactor.marker_for(OPENAI, "api_key") in out
    assert type(out["t"]) is tuple
    assert type(out["s"]) is set
    assert type(out["f"]) is frozenset
    assert type(out["b"]) is bytes
    assert out["binary"] is value["binary"]


def test_redact_value_survives_cycles_and_foreign_objects(redactor: Redactor) -> None:
    """A self-referencing list and arbitrary objects do not crash the walk."""
    cyclic: list[Any] = ["x"]
    cyclic.append(cyclic)
    assert redactor.redact_value(cyclic) is cyclic
    marker = object()
    assert redactor.redact_value([marker])[0] is marker


def test_redact_mapping_masks_span_attribute_values_not_names(redactor: Redactor) -> None:
    """Strings and sequences of strings are redacted; names and other values are kept."""
    attrs: dict[str, AttributeValue] = {
        "gen_ai.prompt": f"key {OPENAI}",
        "tags": ["a", AWS],
        "n": 3,
        OPENAI: "x",
    }
    out = redactor.redact_mapping(attrs)
    assert OPENAI not in str(out["gen_ai.prompt"])
    assert out["tags"] == ["a", redactor.marker_for(AWS, "api_key")]
    assert out["n"] == 3
    assert OPENAI in out  # attribute names are SDK constants, never redacted
    clean = {"a": "b", "c": ("d",)}
    assert redactor.redact_mapping(clean) is clean


# ------------------------------------------------------------------- user detectors


def test_user_patterns_are_masked_with_their_kind(redactor: Redactor) -> None:
    """A pattern per kind; a group named 'secret' limits the mask to that group."""
    policy = Redactor(
        key=KEY,
        patterns={
            "employee_id": r"EMP-\d{6}",
            "ticket": re.compile(r"ticket #(?P<secret>\d{4,})"),
        },
    )
    out = policy.redact_text("EMP-123456 opened ticket #98765")
    assert out == (
        f"{policy.marker_for('EMP-123456', 'employee_id')} opened ticket "
        f"#{policy.marker_for('98765', 'ticket')}"
    )


@pytest.mark.parametrize(
    ("patterns", "message"),
    [
        ({"employee_id": r"EMP-(\d{6}"}, "'employee_id' does not compile"),
        ({"anything": r"\d*"}, "matches the empty string"),
        ({"bad kind!": r"x"}, "invalid redaction kind"),
        ({"raw": re.compile(rb"x")}, "str re.Pattern"),
    ],
)
def test_invalid_user_patterns_fail_at_construction(patterns: dict[str, Any], message: str) -> None:
    """A pattern that cannot work is a ValueError naming the kind, not a failure mid-run."""
    with pytest.raises(ValueError, match=re.escape(message)):
        Redactor(key=KEY, patterns=patterns)


def test_user_callables_report_spans_with_their_kind() -> None:
    """A callable returns (start, end, kind) and those spans are masked."""

    def order_ids(text: str) -> Iterator[tuple[int, int, str]]:
        for m in re.finditer(r"ORD\d+", text):
            yield m.start(), m.end(), "order_id"

    policy = Redactor(key=KEY, callables=[order_ids])
    assert policy.redact_text("see ORD42") == f"see {policy.marker_for('ORD42', 'order_id')}"


def test_a_raising_callable_is_logged_once_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    """Hooks never break a run: the failure is logged once, without the text, and skipped."""

    def broken(text: str) -> list[tuple[int, int, str]]:
        raise RuntimeError(f"boom on {text}")

    policy = Redactor(key=KEY, callables=[broken])
    with caplog.at_level(logging.ERROR, logger="codon_sdk.redaction"):
        first = policy.redact_text(f"a {OPENAI}")
        policy.redact_text(f"b {OPENAI}")
    assert OPENAI not in first  # the built-in detectors still ran
    assert len(caplog.records) == 1
    assert "broken" in caplog.records[0].getMessage()
    assert OPENAI not in caplog.text
    assert "boom" not in caplog.text


@pytest.mark.parametrize(
    "result",
    [[(0, 999, "x")], [(3, 1, "x")], [(0, 1, "no spaces")], [(0.0, 1.0, "x")], [("a",)], 42],
)
def test_malformed_callable_results_are_skipped(result: Any) -> None:
    """Out-of-range spans, bad kinds, non-int offsets or non-iterables never crash a run."""
    policy = Redactor(key=KEY, callables=[lambda text: result])
    assert policy.redact_text("plain text") == "plain text"


def test_non_callable_is_rejected() -> None:
    """callables= takes functions; anything else fails at construction."""
    with pytest.raises(TypeError, match="not callable"):
        Redactor(key=KEY, callables=[42])  # type: ignore[list-item]


def test_unknown_detector_names_the_choices() -> None:
    """A typo in detectors= is a ValueError listing the built-in kinds."""
    with pytest.raises(ValueError, match=r"unknown redaction detector 'emial'.*card_number"):
        Redactor(key=KEY, detectors=["emial"])
    assert Redactor(key=KEY, detectors="email").detectors == ("email",)


# ------------------------------------------------------------------- policy switches


def test_disabled_policy_redacts_nothing() -> None:
    """Redactor.disabled() returns every input as is and has no key."""
    off = Redactor.disabled()
    value = {"k": OPENAI}
    assert not off.enabled
    assert off.redact_text(OPENAI) is OPENAI
    assert off.redact_value(value) is value
    assert off.redact_mapping(value) is value
    assert repr(off) == "Redactor.disabled()"
    with pytest.raises(ValueError, match="disabled"):
        off.marker_for(OPENAI, "api_key")


def test_redactor_is_immutable(redactor: Redactor) -> None:
    """A policy cannot be changed after construction."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        redactor._key = b"other"  # type: ignore[misc]


@pytest.fixture
def restore_default() -> Iterator[None]:
    previous = set_default_redactor(None)
    try:
        yield
    finally:
        set_default_redactor(previous)


@pytest.mark.usefixtures("restore_default")
def test_default_redactor_is_built_once_and_can_be_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """default_redactor() is one shared policy; set_default_redactor swaps and returns it."""
    monkeypatch.setenv(KEY_ENV_VAR, KEY.decode())
    built = default_redactor()
    assert default_redactor() is built
    assert built.detectors == DEFAULT_DETECTORS
    custom = Redactor(key=KEY, detectors=ALL_DETECTORS)
    assert set_default_redactor(custom) is built
    assert default_redactor() is custom
    assert set_default_redactor(None) is custom
    assert default_redactor() is not custom
    with pytest.raises(TypeError, match="Redactor or None"):
        set_default_redactor("off")  # type: ignore[arg-type]


# ------------------------------------------------------------------- robustness


def test_lone_surrogates_do_not_crash_hashing() -> None:
    """Text that is not valid Unicode (a lone surrogate) is still masked."""
    policy = Redactor(key=KEY, patterns={"odd": r"X\ud800Y"})
    assert policy.redact_text("aX\ud800Yb").startswith("a[REDACTED:odd:")


@pytest.mark.parametrize(
    "text",
    [
        "=" * 200_000,
        "x=" * 100_000,
        ":" * 200_000,
        "@" * 200_000,
        "a" * 200_000 + "@example.com",
        "123 " * 50_000,
        "1 " * 100_000,
        "sk-" * 70_000,
        "-----BEGIN PRIVATE KEY-----" * 8_000,
        "Bearer " * 30_000,
        "authorization: " * 15_000,
    ],
    ids=lambda t: repr(t[:12]),
)
def test_pathological_inputs_take_linear_time(everything: Redactor, text: str) -> None:
    """Adversarial 200 KB strings finish quickly: no quadratic or exponential scans."""
    started = time.perf_counter()
    everything.redact_text(text)
    assert time.perf_counter() - started < 2.0


# ------------------------------------------------------------------- properties

SECRETS = st.one_of(
    st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=24).map(
        lambda body: _k("sk-", body[:-1], "7")
    ),
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", min_size=16, max_size=16).map(
        lambda body: _k("AKIA", body)
    ),
    st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=36).map(
        lambda body: _k("gh", "p_", body)
    ),
    st.sampled_from([GOOGLE, SLACK, STRIPE, JWT, GITHUB_PAT, PEM, VISA, AMEX, EMAIL]),
)
SEPARATORS = st.sampled_from([" ", "\n", "\t", '"', "'", "(", ")", ",", ";", "|", "> "])
FILLER = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)


@given(
    before=FILLER,
    after=FILLER,
    left=SEPARATORS,
    right=SEPARATORS,
    secret=SECRETS,
    times=st.integers(1, 3),
)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_redaction_is_idempotent_and_removes_the_secret(
    before: str, after: str, left: str, right: str, secret: str, times: int
) -> None:
    """redact(redact(x)) == redact(x), and a delimited secret never survives redaction."""
    policy = Redactor(key=KEY, detectors=ALL_DETECTORS)
    text = before + (left + secret + right) * times + after
    once = policy.redact_text(text)
    assert policy.redact_text(once) == once
    assert secret not in once


FRAGMENTS = st.sampled_from(
    [
        *("sk-", "sk_live_", "AKIA", "AIza", "ghp_", "xoxb-", "-----BEGIN ", "PRIVATE KEY-----"),
        *("-----END ", "api_key", "=", ": ", '"', "Authorization", "Bearer ", "Basic ", "@"),
        *("example.com", ".", "-", " ", "4111", "1111 ", "[REDACTED:api_key:0123456789ab]"),
        *("[REDACTED:", "]", "dXNlcjpwYXNz", "Zx8Qw3Er5Ty7Ui9Op1As", "0123456789"),
        *(OPENAI, AWS, GITHUB, GOOGLE, SLACK, STRIPE, JWT, BASIC, VISA, EMAIL, PEM, "EMP-123"),
    ]
)
SOUP = st.lists(FRAGMENTS | st.text("aZ09_-=:/ ", max_size=4), max_size=30).map("".join)


@given(text=SOUP)
@settings(max_examples=400, deadline=None)
def test_fragment_soup_is_idempotent_and_the_precheck_misses_nothing(text: str) -> None:
    """On texts built from secret fragments: idempotent, markers kept, pre-check sound."""
    policy = Redactor(key=KEY, detectors=ALL_DETECTORS, patterns={"emp": r"EMP-\d{3}"})
    once = policy.redact_text(text)
    assert policy.redact_text(once) == once
    # The cheap pre-check must never hide a finding of the full scan.
    assert once == policy._redact(text, builtin=True)
    # Every marker already in the input survives unchanged.
    for marker in MARKER_PATTERN.findall(text):
        assert f"[REDACTED:{marker[0]}:{marker[1]}]" in once
