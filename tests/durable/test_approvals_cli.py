"""Signed approvals from the command line, as subprocesses against SQLite and PostgreSQL: the
keyring (``codon approvers``), ``codon resume --approve-key``, ``codon approve`` then
``codon resume --approval``, and ``codon verify`` once a key leaves the keyring."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from ._support import parse, stored_entries

AGENT = """
from codon_sdk import CodonWorkload


def refund(message, *, runtime, context):
    return {"refunded": runtime.interrupt("approve the refund?", payload=message)}


workload = CodonWorkload(name="Refunds", version="1", org_namespace="durable-tests")
workload.add_node(refund, "refund", "payments")
workload.require_signed_approvals()
"""


def _run(folder: Path, *argv: str) -> Any:
    return subprocess.run(
        [sys.executable, *argv],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )


def _codon(folder: Path, url: str, *args: str) -> Any:
    return _run(folder, "-m", "codon_sdk", *args, "--ledger", url)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "refunds.py").write_text(AGENT)
    return tmp_path


def _pause(folder: Path, url: str, run_id: str) -> None:
    code = (
        "import refunds\n"
        f"r = refunds.workload.execute({{'amount': 30}}, deployment_id='d', store={url!r}, "
        f"run_id={run_id!r})\nassert r.status == 'interrupted', r.status"
    )
    done = _run(folder, "-c", code)
    assert done.returncode == 0, done.stderr


def test_the_signed_approval_loop_runs_from_the_command_line(folder: Path, ledger_url: str) -> None:
    url = ledger_url
    assert _run(folder, "-m", "codon_sdk", "keygen", "alice@acme.example").returncode == 0
    skey = ".codon/keys/alice@acme.example.skey"
    vkey = ".codon/keys/alice@acme.example.vkey"
    _pause(folder, url, "r1")
    resume = ("resume", "r1", "--workload", "refunds:workload", "--input", "true")

    unsigned = _codon(folder, url, *resume, "--actor", "alice")
    assert unsigned.returncode == 2
    assert "requires signed approvals" in unsigned.stderr
    outside = _codon(folder, url, *resume, "--approve-key", skey)
    assert outside.returncode == 2
    assert "outside the keyring" in outside.stderr
    assert _codon(folder, url, "approvers", "list").stdout == "no approvers\n"

    added = _codon(folder, url, "approvers", "add", "--workload", "Refunds", "--key", vkey)
    assert added.returncode == 0, added.stderr
    listed = orjson.loads(_codon(folder, url, "approvers", "list", "--json").stdout)
    assert [(k["workload"], k["vkey"]) for k in listed] == [
        ("Refunds", (folder / vkey).read_text().strip())
    ]

    done = _codon(folder, url, *resume, "--approve-key", skey)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "run r1: completed"
    (resumed,) = [e for e in parse(stored_entries(url, "r1")) if e.type == "run_resumed"]
    assert resumed.actor == "alice@acme.example"
    assert "actor: alice@acme.example" in resumed.metadata["approval"]["note"]

    verified = _codon(folder, url, "verify", "r1")
    assert verified.returncode == 0, verified.stdout
    assert "approval at seq" in verified.stdout

    # signed on the approver's machine, carried as a file to where the run resumes
    _pause(folder, url, "r2")
    signed = _codon(
        folder, url, "approve", "r2", "--key", skey, "--input", "true", "--out", "ok.note"
    )
    assert signed.returncode == 0, signed.stderr
    assert (folder / "ok.note").read_text().startswith("codon approval v1\nrun: r2\n")
    wrong_input = _codon(
        folder, url, "resume", "r2", "--workload", "refunds:workload",
        "--input", "false", "--approval", "ok.note",
    )  # fmt: skip
    assert wrong_input.returncode == 2
    assert "another input" in wrong_input.stderr
    carried = _codon(
        folder, url, "resume", "r2", "--workload", "refunds:workload",
        "--input", "true", "--approval", "ok.note",
    )  # fmt: skip
    assert carried.returncode == 0, carried.stderr

    removed = _codon(folder, url, "approvers", "remove", "--workload", "Refunds", "--key", vkey)
    assert removed.returncode == 0, removed.stderr
    again = _codon(folder, url, "approvers", "remove", "--workload", "Refunds", "--key", vkey)
    assert again.returncode == 2
    tampered = _codon(folder, url, "verify", "r1")
    assert tampered.returncode == 1
    assert "outside the keyring" in tampered.stdout


def test_bad_keys_are_usage_errors(folder: Path, sqlite_url: str) -> None:
    url = sqlite_url
    _pause(folder, url, "r1")
    for args in (
        ("approvers", "add", "--workload", "Refunds", "--key", "nonsense"),
        ("approvers", "add", "--workload", "Refunds", "--key", "alice+0000+AAAA"),
        ("resume", "r1", "--workload", "refunds:workload", "--input", "1", "--approve-key", "x"),
        ("resume", "r1", "--workload", "refunds:workload", "--approval", "missing.note"),
    ):
        done = _codon(folder, url, *args)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.startswith("codon: "), done.stderr
        assert "Traceback" not in done.stderr
