"""Assertions and CLI plumbing shared by the audit tests."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence

from codon_sdk.cli import main
from codon_sdk.ledger._verify import Finding, VerificationReport

__all__ = ["assert_tampered", "codon", "tamper_findings"]


def tamper_findings(report: VerificationReport) -> list[Finding]:
    return [f for f in report.findings if f.tamper]


def assert_tampered(
    report: VerificationReport,
    *,
    seq: int | Sequence[int] | None = None,
    code: str | None = None,
) -> Finding:
    """The verdict is ``tampered``; with ``seq``/``code``, some finding names that event/problem.

    Returns the first tamper finding matching both.
    """
    text = report.summary()
    assert report.status == "tampered", text
    assert not report.ok, text
    assert tamper_findings(report), text
    seqs = None if seq is None else ({seq} if isinstance(seq, int) else set(seq))
    for finding in tamper_findings(report):
        if (seqs is None or finding.seq in seqs) and (code is None or finding.code == code):
            assert finding.message, text
            return finding
    raise AssertionError(f"no tamper finding with seq in {seqs} and code {code!r}:\n{text}")


def codon(*argv: str) -> tuple[int, str, str]:
    """Run the real ``codon`` command line in this process: (exit code, stdout, stderr).

    stdout has a binary buffer underneath, as a terminal or pipe has (``codon export``
    writes entry bytes to it).
    """
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)
    err = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
    out.flush()
    return code, raw.getvalue().decode("utf-8"), err.getvalue()
