"""The audit command line: ``codon verify``, ``prove``, ``verify-proof``, ``export``, ``replay``.

Exit codes: ``verify`` 0 verified or unanchored, 1 tampered, incomplete or a bad
signature, 2 usage error or unknown run; ``replay`` 0 identical, 1 diverged.
Bad input (malformed keys, checkpoints, proof files) gets a clear verdict or
message, never a traceback.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from codon_sdk.ledger._checkpoint import open_checkpoint
from codon_sdk.ledger._merkle import leaf_hash
from codon_sdk.ledger._merkle import root as merkle_root
from codon_sdk.ledger._note import Ed25519Signer, Note, sign_note

from . import _workloads
from ._checks import codon
from ._tamper import edit
from ._workloads import build_pausing
from .conftest import LEDGER_NAME, AuditLedger

RUN = "run-a"


def _verify_args(ledger: AuditLedger, *extra: str) -> list[str]:
    return ["verify", RUN, "--ledger", ledger.url, *extra]


@pytest.fixture
def recorded(sqlite_ledger: AuditLedger) -> AuditLedger:
    sqlite_ledger.record(RUN)
    return sqlite_ledger


def _tamper(ledger: AuditLedger, seq: int = 13) -> None:
    entries = ledger.db.entries(RUN)

    def forge(obj: dict[str, Any]) -> None:
        obj["ts"] += 1

    ledger.db.set_entry(RUN, seq, edit(entries[seq], forge))


# --------------------------------------------------------------------------- codon verify


def test_verify_exits_0_for_a_verified_run(recorded: AuditLedger) -> None:
    note = str(recorded.final_note(RUN))
    code, out, err = codon(*_verify_args(recorded, "--vkey", recorded.vkey, "--checkpoint", note))
    assert code == 0, out + err
    assert "VERIFIED" in out


def test_verify_exits_0_for_an_unanchored_run_and_says_so(recorded: AuditLedger) -> None:
    code, out, _ = codon(*_verify_args(recorded, "--vkey", recorded.vkey))
    assert code == 0
    assert "UNANCHORED" in out
    assert "--checkpoint" in out


def test_verify_reads_verifier_keys_from_files_and_the_environment(
    recorded: AuditLedger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    note = str(recorded.final_note(RUN))
    key_file = tmp_path / "ledger.vkey"
    key_file.write_text(recorded.vkey + "\n")
    code, out, _ = codon(*_verify_args(recorded, "--vkey", str(key_file), "--checkpoint", note))
    assert (code, "VERIFIED" in out) == (0, True)
    monkeypatch.setenv("CODON_VERIFIER_KEYS", recorded.vkey)
    code, out, _ = codon(*_verify_args(recorded, "--checkpoint", note))
    assert (code, "VERIFIED" in out) == (0, True)


def test_verify_without_a_trusted_key_never_prints_verified(recorded: AuditLedger) -> None:
    """No --vkey and no CODON_VERIFIER_KEYS: signatures are unchecked, so nothing is verified."""
    _, out, _ = codon(*_verify_args(recorded, "--checkpoint", str(recorded.final_note(RUN))))
    assert "VERIFIED" not in out, out


def test_verify_exits_1_for_a_tampered_run_naming_the_event(recorded: AuditLedger) -> None:
    _tamper(recorded)
    code, out, _ = codon(*_verify_args(recorded, "--vkey", recorded.vkey))
    assert code == 1
    assert "TAMPERED" in out
    assert "seq 13" in out


def test_verify_exits_1_for_an_incomplete_run(sqlite_ledger: AuditLedger) -> None:
    build_pausing().execute({"n": 1}, deployment_id="a", store=sqlite_ledger.store, run_id=RUN)
    code, out, _ = codon(*_verify_args(sqlite_ledger, "--vkey", sqlite_ledger.vkey))
    assert code == 1
    assert "INCOMPLETE" in out


def test_verify_exits_1_for_a_checkpoint_with_a_bad_signature(
    recorded: AuditLedger, tmp_path: Path
) -> None:
    genuine = Note.parse(recorded.final_note(RUN).read_bytes())
    broken = Note(
        text=genuine.text.replace(f"/run/{RUN}\n", f"/run/{RUN}\n", 1) + "extension\n",
        signatures=genuine.signatures,
    )
    path = tmp_path / "broken.note"
    path.write_bytes(broken.format())
    code, out, _ = codon(
        *_verify_args(recorded, "--vkey", recorded.vkey, "--checkpoint", str(path))
    )
    assert code == 1
    assert "does not verify" in out


def test_verify_exits_1_for_a_checkpoint_signed_by_an_attacker(
    recorded: AuditLedger, tmp_path: Path
) -> None:
    text = Note.parse(recorded.final_note(RUN).read_bytes()).text
    path = tmp_path / "attacker.note"
    path.write_bytes(sign_note(text, [Ed25519Signer.generate(LEDGER_NAME)]))
    code, out, _ = codon(
        *_verify_args(recorded, "--vkey", recorded.vkey, "--checkpoint", str(path))
    )
    assert code == 1
    assert "VERIFIED" not in out


@pytest.mark.parametrize(
    "argv",
    [
        ["verify"],
        ["verify", RUN, "--all"],
        ["verify", "no-such-run"],
        ["verify", RUN, "--checkpoint", "/nonexistent/final.note"],
    ],
    ids=["neither-run-nor-all", "both-run-and-all", "unknown-run", "missing-checkpoint-file"],
)
def test_verify_usage_errors_exit_2_without_a_traceback(
    recorded: AuditLedger, argv: list[str]
) -> None:
    code, out, err = codon(*argv, "--ledger", recorded.url)
    assert code == 2, out + err
    assert "Traceback" not in err
    assert err.strip()


def test_verify_of_a_missing_ledger_file_exits_2(tmp_path: Path) -> None:
    code, _, err = codon("verify", RUN, "--ledger", f"sqlite:///{tmp_path / 'none.db'}")
    assert code == 2
    assert "does not exist" in err


@pytest.mark.parametrize("vkey", ["not-a-key", "name+zzzzzzzz+AAAA", "PRIVATE+KEY+x+00000000+AA=="])
def test_malformed_verifier_key_is_a_usage_error(recorded: AuditLedger, vkey: str) -> None:
    """Docs silent; assumed: a mistyped --vkey is the caller's usage error (exit 2), not
    evidence that the ledger was tampered with (exit 1)."""
    code, out, err = codon(*_verify_args(recorded, "--vkey", vkey))
    assert code == 2, out + err
    assert "Traceback" not in err


def test_verify_json_report(recorded: AuditLedger) -> None:
    _tamper(recorded, seq=20)
    code, out, _ = codon(*_verify_args(recorded, "--vkey", recorded.vkey, "--json"))
    assert code == 1
    report = json.loads(out)
    assert report["run_id"] == RUN
    assert report["status"] == "tampered"
    assert report["ok"] is False
    assert report["event_count"] == 38
    assert any(f["seq"] == 20 and f["tamper"] for f in report["findings"])


def test_verify_all_json_lists_every_run(recorded: AuditLedger) -> None:
    recorded.record("run-b", limit=1)
    code, out, _ = codon("verify", "--all", "--ledger", recorded.url, "--json")
    assert code == 0
    outcome = json.loads(out)
    assert outcome["ok"] is True
    assert sorted(r["run_id"] for r in outcome["runs"]) == [RUN, "run-b"]
    assert outcome["findings"] == []


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_verify_all_draws_a_progress_bar_on_a_terminal(
    sqlite_ledger: AuditLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k in range(5):
        sqlite_ledger.record(f"r{k}", limit=1)
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    from codon_sdk.cli import main

    code = main(["verify", "--all", "--ledger", sqlite_ledger.url, "--json"])
    assert code == 0
    drawn = terminal.getvalue()
    assert "5/5" in drawn
    assert "[" + "#" * 30 + "]" in drawn
    assert drawn.count("\r") == 5


def test_verify_all_prints_no_progress_bar_into_a_pipe(recorded: AuditLedger) -> None:
    code, _, err = codon("verify", "--all", "--ledger", recorded.url)
    assert code == 0
    assert "#" not in err


def test_the_installed_codon_command_verifies_and_detects_tampering(
    recorded: AuditLedger,
) -> None:
    """The real console entry point in a child process, as an auditor would run it."""
    argv = [sys.executable, "-m", "codon_sdk", *_verify_args(recorded, "--vkey", recorded.vkey)]
    argv += ["--checkpoint", str(recorded.final_note(RUN))]
    env = {"PATH": "/usr/bin:/bin", "ORG_NAMESPACE": "audit-tests"}
    ok = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    _tamper(recorded)
    bad = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, check=False)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "seq 13" in bad.stdout


# --------------------------------------------------------------------------- prove / verify-proof


@pytest.fixture
def proof(recorded: AuditLedger, tmp_path: Path) -> Path:
    path = tmp_path / "proof-13.json"
    code, out, err = codon("prove", RUN, "13", "--ledger", recorded.url, "--out", str(path))
    assert code == 0, out + err
    return path


def test_prove_then_verify_proof_offline(recorded: AuditLedger, proof: Path) -> None:
    doc = json.loads(proof.read_text())
    assert doc["type"] == "inclusion"
    assert doc["seq"] == 13
    assert doc["size"] == 38
    assert doc["entry"].encode() == recorded.db.entries(RUN)[13]
    code, out, _ = codon("verify-proof", str(proof), "--vkey", recorded.vkey)
    assert code == 0, out
    assert "verified" in out
    code, out, _ = codon("verify-proof", str(proof), "--vkey", recorded.vkey, "--json")
    verdict = json.loads(out)
    assert verdict["ok"] is True
    assert verdict["signed_by"] == [LEDGER_NAME]


def test_prove_prints_the_proof_without_out(recorded: AuditLedger) -> None:
    code, out, _ = codon("prove", RUN, "0", "--ledger", recorded.url)
    assert code == 0
    assert json.loads(out)["seq"] == 0


def _mutations() -> dict[str, Any]:
    def seq(doc: dict[str, Any]) -> None:
        doc["seq"] = 12

    def size(doc: dict[str, Any]) -> None:
        doc["size"] = 37

    def extra_hash(doc: dict[str, Any]) -> None:
        doc["path"].append("00" * 32)

    def missing_hash(doc: dict[str, Any]) -> None:
        doc["path"].pop()

    def altered_hash(doc: dict[str, Any]) -> None:
        doc["path"][0] = "ff" * 32

    def altered_entry(doc: dict[str, Any]) -> None:
        doc["entry"] = doc["entry"].replace('"work"', '"plan"')

    def negative_seq(doc: dict[str, Any]) -> None:
        doc["seq"] = -1

    def seq_as_text(doc: dict[str, Any]) -> None:
        doc["seq"] = "13"

    def hash_not_hex(doc: dict[str, Any]) -> None:
        doc["path"][0] = "zz" * 32

    def missing_field(doc: dict[str, Any]) -> None:
        del doc["checkpoint"]

    def extra_field(doc: dict[str, Any]) -> None:
        doc["note"] = "trust me"

    def checkpoint_garbled(doc: dict[str, Any]) -> None:
        doc["checkpoint"] = doc["checkpoint"].replace("\n\n", "\n")

    return {f.__name__: f for f in (
        seq, size, extra_hash, missing_hash, altered_hash, altered_entry, negative_seq,
        seq_as_text, hash_not_hex, missing_field, extra_field, checkpoint_garbled,
    )}  # fmt: skip


MUTATIONS = _mutations()


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_altered_proof_file_fails_with_a_verdict(
    recorded: AuditLedger, proof: Path, mutation: str
) -> None:
    doc = json.loads(proof.read_text())
    MUTATIONS[mutation](doc)
    proof.write_text(json.dumps(doc))
    code, out, err = codon("verify-proof", str(proof), "--vkey", recorded.vkey)
    assert code == 1, out + err
    assert "NOT verified" in out
    assert "Traceback" not in err


@pytest.mark.parametrize("content", [b"", b"\xff\xfe", b"[]", b"{", b"null"])
def test_unreadable_proof_file_fails_with_a_verdict(
    recorded: AuditLedger, tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "junk.json"
    path.write_bytes(content)
    code, out, err = codon("verify-proof", str(path), "--vkey", recorded.vkey)
    assert code == 1
    assert "NOT verified" in out
    assert "Traceback" not in err


def test_proof_checked_against_an_attackers_key_fails(recorded: AuditLedger, proof: Path) -> None:
    attacker = Ed25519Signer.generate(LEDGER_NAME)
    code, out, _ = codon("verify-proof", str(proof), "--vkey", attacker.vkey)
    assert code == 1
    assert "not signed by any trusted key" in out


def test_verify_proof_needs_a_key(proof: Path) -> None:
    code, _, err = codon("verify-proof", str(proof))
    assert code == 2
    assert "--vkey" in err


def test_verify_proof_with_a_malformed_key_is_a_usage_error(proof: Path) -> None:
    """Docs silent; assumed as for ``codon verify``: a bad --vkey is exit 2."""
    code, _, err = codon("verify-proof", str(proof), "--vkey", "garbage")
    assert code == 2
    assert "Traceback" not in err


@pytest.mark.parametrize("seq", ["38", "-1"])
def test_prove_a_seq_the_run_does_not_have_exits_2(recorded: AuditLedger, seq: str) -> None:
    code, _, err = codon("prove", RUN, seq, "--ledger", recorded.url)
    assert code == 2
    assert "seq" in err


def test_prove_an_unknown_run_exits_2(recorded: AuditLedger) -> None:
    code, _, err = codon("prove", "nope", "1", "--ledger", recorded.url)
    assert code == 2
    assert "nope" in err


# --------------------------------------------------------------------------- export


def test_export_writes_the_entries_as_json_lines_with_the_checkpoint(
    recorded: AuditLedger, tmp_path: Path
) -> None:
    code, out, _ = codon("export", RUN, "--ledger", recorded.url)
    assert code == 0
    lines = out.encode().splitlines()
    entries = recorded.db.entries(RUN)
    assert lines[:-1] == entries  # the stored bytes, verbatim
    last = orjson.loads(lines[-1])["codon_checkpoint"]
    assert last["size"] == len(entries)
    checkpoint = open_checkpoint(last["note"], [recorded.vkey], origin=f"{LEDGER_NAME}/run/{RUN}")
    assert checkpoint.root == merkle_root([leaf_hash(e) for e in lines[:-1]])
    # the exported checkpoint anchors the run like the sink's copy does
    note = tmp_path / "exported.note"
    note.write_text(last["note"])
    code, out, _ = codon(
        *_verify_args(recorded, "--vkey", recorded.vkey, "--checkpoint", str(note))
    )
    assert (code, "VERIFIED" in out) == (0, True)


def test_export_of_an_unknown_run_exits_2(recorded: AuditLedger) -> None:
    code, _, err = codon("export", "nope", "--ledger", recorded.url)
    assert code == 2
    assert "nope" in err


# --------------------------------------------------------------------------- codon replay


def _spec(name: str) -> str:
    return f"{_workloads.__name__}:{name}"


def test_replay_command_exits_0_when_identical(recorded: AuditLedger) -> None:
    recorded.service.stop()
    code, out, err = codon("replay", RUN, "--workload", _spec("build_v1"), "--ledger", recorded.url)
    assert code == 0, out + err
    assert "IDENTICAL" in out


def test_replay_command_exits_1_and_names_the_divergence(recorded: AuditLedger) -> None:
    recorded.service.stop()
    argv = ["replay", RUN, "--workload", _spec("build_v2"), "--ledger", recorded.url]
    code, out, _ = codon(*argv)
    assert code == 1
    assert "DIVERGED" in out
    assert "logic id changed" in out
    code, out, _ = codon(*argv, "--json")
    outcome = json.loads(out)
    assert outcome["identical"] is False
    assert outcome["divergences"][0]["node"] == "work"


@pytest.mark.parametrize("spec", ["no_colon", "missing_module_xyz:thing", "json:dumps"])
def test_replay_command_with_a_bad_workload_spec_exits_2(recorded: AuditLedger, spec: str) -> None:
    code, _, err = codon("replay", RUN, "--workload", spec, "--ledger", recorded.url)
    assert code == 2
    assert "Traceback" not in err


# --------------------------------------------------------------------------- keygen, end to end


def test_keygen_signing_key_from_the_environment_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quote_service: Any
) -> None:
    """The operator's path: ``codon keygen``, CODON_SIGNING_KEY and CODON_CHECKPOINT_DIR set,
    a run on a store opened from its URL alone, then ``codon verify`` with the vkey file."""
    keys = tmp_path / "keys"
    code, out, _ = codon("keygen", "acme.example/ledger", "--out-dir", str(keys))
    assert code == 0
    skey, vkey = keys / "acme.example_ledger.skey", keys / "acme.example_ledger.vkey"
    assert skey.stat().st_mode & 0o777 == 0o600
    assert out.strip() == vkey.read_text().strip()
    assert "PRIVATE" not in out

    monkeypatch.setenv("CODON_SIGNING_KEY", str(skey))
    monkeypatch.setenv("CODON_CHECKPOINT_DIR", str(tmp_path / "exported"))
    monkeypatch.setenv("CODON_CHECKPOINT_EVERY", "10")
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    _workloads.build_v1().execute(
        {"topic": "env", "limit": 3},
        deployment_id="audit",
        store=url,
        run_id="env-run",
        quote_url=quote_service.url,
    )
    notes = sorted((tmp_path / "exported" / "env-run").glob("*.note"), key=lambda p: int(p.stem))
    assert [int(p.stem) for p in notes] == [10, 20, 30, 31]
    code, out, _ = codon(
        "verify", "env-run", "--ledger", url, "--vkey", str(vkey), "--checkpoint", str(notes[-1])
    )
    assert code == 0, out
    assert "VERIFIED" in out


def test_keygen_refuses_to_overwrite_a_key_without_force(tmp_path: Path) -> None:
    assert codon("keygen", "k", "--out-dir", str(tmp_path))[0] == 0
    first = (tmp_path / "k.skey").read_text()
    code, _, err = codon("keygen", "k", "--out-dir", str(tmp_path))
    assert code == 2
    assert "--force" in err
    assert (tmp_path / "k.skey").read_text() == first
    assert codon("keygen", "k", "--out-dir", str(tmp_path), "--force")[0] == 0
    assert (tmp_path / "k.skey").read_text() != first
