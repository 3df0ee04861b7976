"""The secret matrix (issue acceptance): 14 kinds of secret x every place x every output.

One run plants every kind of secret, as an attacker looking for credentials would, in
the input, the state, an effect's result and error, custom event metadata, an interrupt
payload, a node exception, LLM calls through the real ``openai`` client (messages,
``extra_body``, extra headers, an error body echoing the credentials), the resume actor
and the deployment id; values under credential-named keys too. Then every output is
grepped for every raw secret: the in-memory span exporter, a real OTLP receiver, the
captured logs, ``codon`` stdout and stderr (``runs show``, ``--json``, ``runs list``,
``verify``, an error naming a store URL with passwords), the exported JSON Lines and the
raw database bytes (SQLite files; PostgreSQL rows). The default policy must leave zero
raw occurrences, on SQLite and PostgreSQL, and the ledger must still verify.

Fake secrets are assembled from pieces (``_k``) so that secret scanners do not flag this
file; none of them is a real credential.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, Span
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanProcessor
from tests.durable._support import pg_schema_url
from tests.instrumentation._openai_support import API_KEY, instrumented

from codon_sdk import CodonWorkload, WorkloadRuntimeError, load_report, open_store, verify_run
from codon_sdk.redaction import MARKER_PATTERN, set_default_redactor
from codon_sdk.testing import (
    OpenAIProtocolServer,
    OTLPReceiver,
    Recording,
    RequestMatch,
    capture_spans,
    echo_fallback,
)


def _k(*parts: str) -> str:
    return "".join(parts)


AWS_ID = _k("AKIA", "Q3J5T7V9X2Z4B6D8")
AWS_SECRET = _k("wJalrXUtnFEMI/K7MDENG/", "bPxRfiCY9EXAMPLEKE")
PEM_BODY = _k("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "BKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj")
AZURE_KEY = _k(
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2U", "VErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

# kind -> (the text planted, the raw pieces that must never appear in any output)
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {}


def _kind(name: str, text: str, *raw: str) -> None:
    KINDS[name] = (text, raw)


_kind(
    "openai_key",
    f"key {_k('sk-proj-', 'Zx81Qw2Er3Ty4Ui5Op6As7Df8Gh9Jk0Lz')}",
    _k("Zx81Qw2Er3Ty4Ui5Op6As7"),
)
_kind(
    "anthropic_key",
    _k("sk-ant-api03-", "Qm7Rt2Yx9Kp4Lw8Nv3Bz6Hc1Jd5Fg0Sa"),
    "Qm7Rt2Yx9Kp4Lw8Nv3Bz6",
)
_kind("aws_key_pair", f"aws id {AWS_ID} secret {AWS_SECRET}", AWS_ID, AWS_SECRET)
_kind("github_token", _k("ghp_", "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"), "A1b2C3d4E5f6G7h8I9j0")
_kind("slack_token", _k("xoxb-", "2048-4096-Zq8Wm3Kx7Pv"), "2048-4096-Zq8Wm3Kx7Pv")
_kind("stripe_key", _k("sk_live_", "4eC39HqLyjWDarjtT1zdp7dc"), "4eC39HqLyjWDarjtT1zdp7dc")
_kind("google_api_key", _k("AIza", "SyD-3kLmN0pQrStUvWxYz1234567890abcd"), "SyD-3kLmN0pQrStUvWxYz")
_kind(
    "bearer_header",
    _k("Authorization: Bearer ", "tok9Hq2Lm5Np8Rs1Tv4Wx7Yz0"),
    "tok9Hq2Lm5Np8Rs1Tv4Wx7Yz0",
)
_kind(
    "jwt",
    _k("eyJhbGciOiJIUzI1NiJ9", ".eyJzdWIiOiJtYXRyaXgifQ", ".c2lnbmF0dXJlLW9mLXRoZS1qd3Q"),
    "eyJzdWIiOiJtYXRyaXgifQ",
    "c2lnbmF0dXJlLW9mLXRoZS1qd3Q",
)
_kind(
    "private_key",
    _k("-----BEGIN PRIVATE ", "KEY----- ", PEM_BODY, " -----END PRIVATE KEY-----"),
    PEM_BODY[:24],
)
_kind("password_pair", "login with password=hunter2-Correct-Horse ok", "hunter2-Correct-Horse")
_kind("postgres_url", "db postgresql://app:Pg-S3cret-Pass@db.internal:5432/x", "Pg-S3cret-Pass")
_kind(
    "password_query", "db https://db.internal/x?user=app&password=Qp-S3cret-Pass", "Qp-S3cret-Pass"
)
_kind(
    "azure_key",
    f"DefaultEndpointsProtocol=https;AccountName=a;AccountKey={AZURE_KEY};",
    AZURE_KEY[:30],
)
assert len(KINDS) == 14

# values under credential-named keys: secrets whatever their shape
KEYED = {
    "api_key": "opensesame-k1",
    "X-API-Key": "letmein-k2",
    "password": "tr0ub4dor-k3",
    "aws_secret_access_key": _k("Zk4Lm7Np0Qr3St6Uv9Wx2Yz5Ab8Cd1Ef4Gh7Ij0K", ""),
    "Cookie": "session=biscuit-k4",
}
TEXT = " | ".join(text for text, _ in KINDS.values())
RAW: dict[str, str] = {
    f"{kind}:{piece}": piece for kind, (_, pieces) in KINDS.items() for piece in pieces
}
RAW.update({f"key {key}": value for key, value in KEYED.items()})
RAW["client api key"] = API_KEY
# printable one-liners (actors and deployment ids must be printable)
ACTOR = f"alice {KINDS['password_pair'][0]} {KINDS['openai_key'][0]}"
DEPLOYMENT = f"prod {KINDS['postgres_url'][0]}"


def _leaks(where: str, text: str) -> list[str]:
    return [f"{name} in {where}" for name, raw in RAW.items() if raw in text]


class _Switch(SpanProcessor):
    """Forwards to ``inner`` only while on: the global provider outlives the test."""

    def __init__(self, inner: SpanProcessor) -> None:
        self.inner, self.on = inner, True

    def on_start(self, span: Span, parent_context: Any = None) -> None:
        if self.on:
            self.inner.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if self.on:
            self.inner.on_end(span)

    def shutdown(self) -> None:
        self.on = False

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


def _workload(client: openai.OpenAI) -> CodonWorkload:
    def flaky() -> Any:
        raise RuntimeError(f"lookup failed for {TEXT}")

    def work(message: Any, *, runtime: Any, context: Any) -> Any:
        runtime.state["note"] = TEXT
        for key, value in KEYED.items():
            runtime.state[key] = value
        runtime.effect("lookup", lambda: {"text": TEXT, "nested": dict(KEYED)})
        with contextlib.suppress(RuntimeError):
            runtime.effect("flaky", flaky)
        runtime.record_event("note", metadata={"text": TEXT, **KEYED})
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {"role": "user", "content": f"remember password: hunter2-Correct-Horse {TEXT}"}
            ],
            extra_body={"metadata": {"password": KEYED["password"], "api_key": KEYED["api_key"]}},
            extra_headers={"X-API-Key": KEYED["X-API-Key"]},
        )
        with contextlib.suppress(openai.AuthenticationError):
            client.chat.completions.create(
                model="gpt-err", messages=[{"role": "user", "content": "again"}]
            )
        answer = runtime.interrupt("approve?", payload={"text": TEXT, **KEYED})
        runtime.emit("fail", {"text": TEXT, "answer": answer})
        return {"text": TEXT, **KEYED}

    def fail(message: Any, *, runtime: Any, context: Any) -> Any:
        raise ValueError(f"cannot finish: {message['text']}")

    workload = CodonWorkload(name="Matrix", version="1", org_namespace="t", enable_tracing=True)
    workload.add_node(work, "work", "worker")
    workload.add_node(fail, "fail", "failer")
    workload.add_edge("work", "fail")
    return workload


def _codon(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODON_")}
    return subprocess.run(
        [sys.executable, "-m", "codon_sdk", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/ledger.db"
        return
    pytest.importorskip("psycopg")
    pg_url: str = request.getfixturevalue("pg_url")
    with pg_schema_url(pg_url) as url:
        yield url


def _database_text(url: str, tmp_path: Path) -> str:
    """Everything the database holds, as text a secret would show in."""
    if url.startswith("sqlite"):
        return "".join(
            p.read_bytes().decode("utf-8", "replace") for p in sorted(tmp_path.glob("ledger.db*"))
        )
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        # the stored forms (stores/_codec.py) hold prev as raw bytes: decode leniently
        rows = [
            bytes(r[0]).decode("utf-8", "replace")
            for r in conn.execute("SELECT entry FROM codon_events")
        ]
        for table in ("codon_runs", "codon_runs_log", "codon_meta"):
            rows += [r[0] for r in conn.execute(f"SELECT row_to_json(t)::text FROM {table} t")]
    return "\n".join(rows)


def test_no_secret_reaches_any_output(
    ledger: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    monkeypatch.delenv("CODON_REDACTION_KEY", raising=False)
    caplog.set_level(logging.DEBUG)
    previous = set_default_redactor(None)  # the default policy, as a user gets it
    denied = Recording.error(
        401,
        f"Incorrect API key provided: {API_KEY}; your request said {TEXT}",
        type="invalid_request_error",
        code="invalid_api_key",
        match=RequestMatch(model="gpt-err"),
    )
    leaks: list[str] = []
    try:
        with (
            OTLPReceiver() as receiver,
            OpenAIProtocolServer([denied], fallback=echo_fallback) as server,
            capture_spans() as captured,
        ):
            otlp = _Switch(SimpleSpanProcessor(OTLPSpanExporter(endpoint=receiver.http_traces_url)))
            captured.tracer_provider.add_span_processor(otlp)
            try:
                client = openai.OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0)
                workload = _workload(client)
                with instrumented(client):
                    paused = workload.execute(
                        {"text": TEXT, **KEYED}, deployment_id=DEPLOYMENT, store=ledger
                    )
                    assert paused.status == "interrupted"
                    with pytest.raises(WorkloadRuntimeError, match="cannot finish"):
                        workload.resume(
                            paused.run_id, store=ledger, input={"ok": TEXT, **KEYED}, actor=ACTOR
                        )
                final = load_report(ledger, paused.run_id)
                assert final.status == "failed"
                # the live values were the real ones: masking is for the record only
                assert paused.context["deployment_id"].startswith("prod db postgresql://app:")
            finally:
                otlp.on = False
            spans = captured.spans
            assert any(s.name == "codon.node.fail" for s in spans)
            otlp_spans = receiver.wait_for_spans(len(spans), timeout=10.0)
        run_id = paused.run_id
        leaks += _leaks("in-memory spans", "\n".join(s.to_json() for s in spans))
        leaks += _leaks("OTLP receiver", "\n".join(repr(s) for s in otlp_spans))
        exception_events = [e for s in spans for e in s.events if e.name == "exception"]
        assert exception_events, "the node exception is on its span, redacted"
        leaks += _leaks("logs", caplog.text + "".join(str(r.args) for r in caplog.records))

        outputs = {
            "runs show": _codon("runs", "show", run_id, "--ledger", ledger),
            "runs show --json": _codon("runs", "show", run_id, "--ledger", ledger, "--json"),
            "runs list --json": _codon("runs", "list", "--ledger", ledger, "--json"),
            "verify": _codon("verify", run_id, "--ledger", ledger),
            "export": _codon("export", run_id, "--ledger", ledger),
        }
        if ledger.startswith("postgresql"):  # passwords in the URL the CLI names in errors
            base, _, query = ledger.partition("?")
            with_passwords = base.replace("postgres@", "postgres:Pg-S3cret-Pass@") + (
                f"?{query}&password=Qp-S3cret-Pass"
            )
            outputs["error naming the store"] = _codon(
                "runs", "show", "no-such-run", "--ledger", with_passwords
            )
            store = open_store(with_passwords)
            try:
                leaks += _leaks("store.url", store.url)
            finally:
                store.close()
        for name, done in outputs.items():
            leaks += _leaks(f"`codon {name}` stdout", done.stdout)
            leaks += _leaks(f"`codon {name}` stderr", done.stderr)
        assert outputs["runs show --json"].returncode == 0, outputs["runs show --json"].stderr
        exported = outputs["export"].stdout
        assert exported.count("\n") >= 10
        assert MARKER_PATTERN.search(exported) is not None
        assert json.loads(outputs["runs list --json"].stdout)[0]["deployment_id"].startswith(
            "prod "
        )
        leaks += _leaks("the database", _database_text(ledger, tmp_path))
        assert verify_run(ledger, run_id).status == "unanchored"
    finally:
        set_default_redactor(previous)
    assert not leaks, "raw secrets reached outputs:\n" + "\n".join(leaks)
