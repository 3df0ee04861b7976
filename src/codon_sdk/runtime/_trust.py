"""Whether a run read back from a store may be trusted: one check for every reader.

Resume, replay and fork build on a run's history (and resume signs over it), so they
refuse a run that does not verify; read-only views (``codon runs show``, ``codon
export``, :func:`~codon_sdk.load_report`) check the same way and say so (or refuse unless
forced). What is checked:

* always: the hash chain, canonical entries, the runs index, and the checkpoints stored
  with the run (their roots; with a notary, their signatures);
* with a notary: the checkpoints its sinks exported (read back where a sink can), and that
  the run is *vouched for*: some checkpoint of the run signed by the notary's key, or a
  checkpoint of the log of runs signed right after the run's start line was added (the
  checkpoint of exactly that size, which only the process that started the run makes).
  A run planted in the database by someone without the signing key has neither, however
  consistent its own chain is.

A run that nothing signed (recorded before a notary was configured) cannot be told apart
from a planted one while a notary is configured; the message says how to proceed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from codon_sdk.errors import CheckpointError, RunErasedError, UntrustedRunError
from codon_sdk.ledger import (
    TERMINAL_STATUSES,
    Checkpoint,
    VerificationReport,
    chain_leaf,
    check_note,
    leaf_hash,
    merkle_root,
    run_leaf,
    verify_entries,
)
from codon_sdk.stores import LedgerStore, PagedEntries, erasure_log

__all__ = [
    "Trust",
    "check_trust",
    "readable_entries",
    "trusted_entries",
    "untrusted_warning",
]


@dataclass(frozen=True, slots=True)
class Trust:
    """The verdict on a run read from a store: its entries, the verification, and problems
    that make it untrustworthy (empty when it may be built on). ``entries`` is a list, or,
    from ``check_trust(..., paged=True)``, a :class:`~codon_sdk.stores.PagedEntries` that
    reads the store a page at a time (the store must stay open while it is read)."""

    entries: Sequence[bytes]
    report: VerificationReport
    problems: tuple[str, ...]

    @property
    def trusted(self) -> bool:
        return not self.problems


def check_trust(
    ledger: LedgerStore,
    run_id: str,
    *,
    paged: bool = False,
    on_page: Callable[[int, int], None] | None = None,
) -> Trust:
    """Read run ``run_id`` and check it (see the module docstring); never raises for what the
    data holds (``RunNotFoundError`` for an unknown run, store errors as they are).

    ``paged``: read the entries a page at a time, never all at once (see
    :class:`~codon_sdk.stores.PagedEntries`; ``on_page`` hears of every page read), for
    readers of long runs; the verdict is the same."""
    info = ledger.get_run(run_id)
    entries: Sequence[bytes] = (
        PagedEntries.scan(ledger, run_id, on_page=on_page) if paged else ledger.read(run_id)
    )
    notary = ledger.notary
    vkey = getattr(notary, "vkey", None) if notary is not None else None
    stored = [note for _, note in ledger.checkpoints(run_id)]
    exported = _exported(notary, run_id) if vkey is not None else []
    erasures = erasure_log(ledger)
    report = verify_entries(
        run_id,
        entries,
        stored_checkpoints=stored,
        external_checkpoints=exported,
        vkeys=[vkey] if vkey is not None else None,
        index_says_ended=info.status in TERMINAL_STATUSES,
        index_event_count=info.event_count,
        index_head=info.head,
        erasures=erasures,
    )
    problems = [str(f) for f in report.findings if f.tamper]
    if vkey is not None and not problems and not _vouched(ledger, run_id, [*stored, *exported]):
        problems.append(
            f"run: nothing signed by the notary's key ({notary.name}) vouches for run {run_id}: "
            "no checkpoint of the run and no checkpoint of the log of runs made when it "
            "started. It was planted in the database, or recorded before checkpoints were "
            "signed; if you know it is genuine, open the store without a notary "
            "(open_store(url, notary=None)) to read it"
        )
    return Trust(entries=entries, report=report, problems=tuple(problems))


def trusted_entries(ledger: LedgerStore, run_id: str, *, action: str) -> list[bytes]:
    """The entries of a run that may be built on, or :class:`UntrustedRunError` naming why
    (``action`` says what was refused: "resumed", "replayed", "forked"...)."""
    trust = check_trust(ledger, run_id)
    if not trust.trusted:
        raise UntrustedRunError(
            f"run {run_id} in {ledger.url} does not verify, so it is not {action}: "
            + "; ".join(trust.problems)
            + " (run `codon verify` for details)",
            findings=trust.problems,
        )
    erased = [f for f in trust.report.findings if f.code == "erased"]
    if erased:
        raise RunErasedError(
            f"run {run_id} in {ledger.url} is not {action}: {len(erased)} of its events were "
            f"erased ({erased[0].message}), so its history can no longer be rebuilt. Its "
            "report and verification still read; start a new run instead"
        )
    return list(trust.entries)


def readable_entries(trust: Trust) -> Sequence[bytes]:
    """The entries before the first one a tamper finding names (all of a trusted run): what a
    forced read of an untrusted run may still show."""
    seqs = [f.seq for f in trust.report.findings if f.tamper and f.seq is not None]
    entries = trust.entries
    if isinstance(entries, PagedEntries):  # a view: nothing read, nothing held
        return entries.prefix(min(seqs)) if seqs else entries
    return list(entries[: min(seqs)]) if seqs else list(entries)


def untrusted_warning(trust: Trust) -> str:
    """The one-line warning read-only views print above a run that does not verify."""
    status = trust.report.status.upper()
    return f"WARNING: this run does not verify ({status}): " + "; ".join(trust.problems)


def _exported(notary: object, run_id: str) -> list[bytes]:
    reader = getattr(notary, "exported", None)
    return list(reader(run_id)) if callable(reader) else []


def _vouched(ledger: LedgerStore, run_id: str, notes: Sequence[bytes]) -> bool:
    notary = ledger.notary
    vkey = notary.vkey
    origin = notary.origin(run_id)
    if any(_signed_for(note, vkey, origin) is not None for note in notes):
        return True  # verify_entries matched every such checkpoint against the run's leaves
    lines = ledger.runs_log()
    where = next(
        (n for n, (_, rid, size, _) in enumerate(lines) if rid == run_id and size == 1), None
    )
    if where is None:
        return False
    first = chain_leaf(ledger.read(run_id, 0, 1)[0])[0] if lines else b""
    if lines[where][3] != first:
        return False
    leaves = [leaf_hash(run_leaf(rid, size, root)) for _, rid, size, root in lines[: where + 1]]
    expected = merkle_root(leaves)
    log_notes = [note for _, note in ledger.checkpoints("")] + _exported(notary, "")
    for note in log_notes:
        cp = _signed_for(note, vkey, notary.runs_origin)
        if cp is not None and cp.size == where + 1 and cp.root == expected:
            return True
    return False


def _signed_for(note: bytes, vkey: str, origin: str) -> Checkpoint | None:
    """The checkpoint in ``note`` when ``vkey`` signed it and it is for ``origin``."""
    try:
        check = check_note(note, [vkey])
        checkpoint = Checkpoint.parse(check.text)
    except (CheckpointError, ValueError, TypeError):
        return None
    if not check.verified or checkpoint.origin != origin:
        return None
    return checkpoint
