"""Verification of the log of runs against its store's runs and its checkpoints (pure, no I/O).

The log of runs is a second Merkle tree, over runs rather than events: each run
gets a start line ``(idx, run id, 1, leaf hash of its seq 0)`` when it begins and
a finish line ``(idx, run id, event count, Merkle root)`` when it ends, and its
checkpoints are signed like a run's (origin ``<ledger name>/runs``). Deleting a
run, finished or not, therefore leaves a line naming it; deleting the line too
leaves a gap in the indexes or a log that no longer matches its checkpoints.

What is checked: every line is well formed and the indexes run 0, 1, 2... without
a gap or a repeat; every line matches its run now (a start line: the run exists
and begins with the logged leaf; a finish line: its size and root); a run has at
most one line of each kind; every run of the store has a start line, every ended
run a finish line; every checkpoint of the log (stored or held elsewhere) is for
a log of runs, covers no more lines than exist and matches their root; and, when
the store keeps checkpoints, the newest stored one covers the whole log (if not,
a note: a crash between a commit and its signing leaves the last lines uncovered).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from codon_sdk.errors import CheckpointError
from codon_sdk.ledger._checkpoint import run_leaf
from codon_sdk.ledger._merkle import MerkleAccumulator, leaf_hash
from codon_sdk.ledger._note import Verifier
from codon_sdk.ledger._verify import (
    Finding,
    _Checkpointed,
    _open_all,
    _prefix_roots,
    _State,
    _verifiers,
)

__all__ = ["LogVerification", "LoggedRun", "verify_runs_log"]


@dataclass(frozen=True, slots=True)
class LoggedRun:
    """A run as its store holds it now, to check the log of runs against.

    ``first_leaf`` is the leaf hash of its seq-0 entry (None: it holds no events),
    ``ended`` whether its runs index says it ended; ``readable=False`` when the run
    could not be read or verified (its own report says so): only its presence counts.
    """

    event_count: int
    root: bytes
    first_leaf: bytes | None = None
    ended: bool = False
    readable: bool = True


@dataclass(frozen=True, slots=True)
class LogVerification:
    """Verdict on the log of runs: every run that ever started is still there, unchanged,
    every line is where it was, and the signed checkpoints of the log agree."""

    ok: bool
    size: int
    root: str
    findings: tuple[Finding, ...] = ()
    checked: tuple[str, ...] = ()
    anchors: tuple[str, ...] = ()


@dataclass(slots=True)
class _Lines:
    """The lines of one run in the log: ``(settled, idx, root)`` and ``(settled, idx, size,
    root)``, where ``settled`` says the line was read before the runs were."""

    starts: list[tuple[bool, int, bytes]] = field(default_factory=list)
    finishes: list[tuple[bool, int, int, bytes]] = field(default_factory=list)

    @property
    def settled(self) -> bool:
        return any(line[0] for line in self.starts) or any(line[0] for line in self.finishes)


def verify_runs_log(
    logged: Sequence[tuple[int, str, int, bytes]],
    runs: Mapping[str, LoggedRun],
    *,
    stored_checkpoints: Sequence[bytes] = (),
    external_checkpoints: Sequence[bytes] = (),
    vkeys: Iterable[str | Verifier] | None = None,
    settled: int | None = None,
    has_checkpoints: bool | None = None,
) -> LogVerification:
    """Check the log of runs against the runs of its store and the log's checkpoints.

    ``logged`` is the log as read, ``(idx, run id, size, root)`` per line in idx
    order: a line of size 1 is a run's start line (root: the leaf hash of its
    seq 0), a longer one its finish line (its event count and Merkle root).
    ``runs`` maps every run of the store to what it holds now. Only the first
    ``settled`` lines (all by default) were read before ``runs``: a later line may
    belong to a run begun or ended while the store was being read, so it is held
    to what ``runs`` can show. ``has_checkpoints`` says the store keeps signed
    checkpoints at all (default: when it holds log checkpoints); the newest stored
    log checkpoint should then cover the whole log.
    """
    state = _State()
    verifiers = _verifiers(vkeys)
    leaves, by_run = _read_lines(logged, len(logged) if settled is None else settled, state)
    for run_id, lines in by_run.items():
        _check_run_lines(run_id, lines, runs.get(run_id), state)
    for run_id in sorted(runs, key=str):  # ids read back from a store: any type
        now, held = runs[run_id], by_run.get(run_id)
        if now.first_leaf is not None and (held is None or not held.starts):
            state.tamper(
                None,
                "not_started",
                f"run {run_id} is in the store but has no start line in the log of runs: it "
                "was planted there, or its line was deleted from the log",
                run_id=run_id,
            )
        if now.ended and (held is None or not held.finishes):
            state.tamper(
                None,
                "not_logged",
                f"run {run_id} ended but has no finish line in the log of runs: the line was "
                "deleted, or the run was planted",
                run_id=run_id,
            )
    stored = _open_all(stored_checkpoints, "stored runs-log", verifiers, state)
    external = _open_all(external_checkpoints, "external runs-log", verifiers, state)
    covered = _check_log_checkpoints(leaves, stored, external, verifiers, state)
    if (bool(stored_checkpoints) if has_checkpoints is None else has_checkpoints) and (
        covered < len(leaves)
    ):
        state.note(
            None,
            "runs_log_uncovered",
            f"lines {covered} to {len(leaves) - 1} of the log of runs are covered by no stored "
            "checkpoint: signing failed, or the process stopped between committing them and "
            "signing (the next run's start or end signs them), or later checkpoints were "
            "deleted (an exported checkpoint of the log tells which)",
        )
    state.checked.append(
        f"log of runs: {len(leaves)} lines, indexes, every run's start and finish lines"
    )
    return LogVerification(
        ok=not any(f.tamper for f in state.findings),
        size=len(leaves),
        root=MerkleAccumulator(leaves).root().hex(),
        findings=tuple(state.findings),
        checked=tuple(state.checked),
        anchors=tuple(state.anchors),
    )


def _read_lines(
    logged: Sequence[tuple[int, str, int, bytes]], settled: int, state: _State
) -> tuple[list[bytes], dict[str, _Lines]]:
    """Each line's Merkle leaf (a malformed line gets a leaf no genuine line has), its run's
    lines, and findings for malformed lines and gaps or repeats in the indexes."""
    leaves: list[bytes] = []
    by_run: dict[str, _Lines] = {}
    expected = 0
    for position, line in enumerate(logged):
        problem = _line_problem(line)
        if problem is not None:
            state.tamper(
                None,
                "runs_log_line",
                f"line {position} of the log of runs is malformed ({problem}): edited in the "
                "database",
            )
            leaves.append(leaf_hash(b"malformed\x00" + repr(line).encode("utf-8", "replace")))
            if type(line[0]) is int:
                expected = max(expected, line[0] + 1)
            continue
        idx, run_id, size, root = line
        leaves.append(leaf_hash(run_leaf(run_id, size, root)))
        if idx > expected:
            missing = f"lines {expected} to {idx - 1}" if idx > expected + 1 else f"line {expected}"
            state.tamper(
                None,
                "runs_log_gap",
                f"the log of runs has no {missing} (line {idx} follows line {expected - 1}): "
                "deleted from the database",
            )
        elif idx < expected:
            state.tamper(
                None, "runs_log_index", f"line {idx} of the log of runs is out of order or repeated"
            )
        expected = max(expected, idx + 1)
        lines = by_run.setdefault(run_id, _Lines())
        if size == 1:
            lines.starts.append((position < settled, idx, root))
        else:
            lines.finishes.append((position < settled, idx, size, root))
    return leaves, by_run


def _line_problem(line: object) -> str | None:
    """Why a line read back from the store is not ``(idx, run id, size, 32-byte root)``."""
    if not isinstance(line, tuple) or len(line) != 4:
        return f"not four fields: {line!r:.80}"
    idx, run_id, size, root = line
    if type(idx) is not int or idx < 0:
        return f"index {idx!r:.40} is not a non-negative integer"
    if type(run_id) is not str or not run_id:
        return f"run id {run_id!r:.80} is not a non-empty string"
    if type(size) is not int or size < 1:
        return f"size {size!r:.40} of run {run_id!r:.80} is not a positive integer"
    if type(root) is not bytes or len(root) != 32:
        return f"root of run {run_id!r:.80} is not 32 bytes"
    try:
        run_leaf(run_id, size, root)
    except (CheckpointError, ValueError, TypeError) as exc:
        return f"run id {run_id!r:.80} cannot be encoded: {exc}"
    return None


def _where(lines: _Lines) -> str:
    parts = [f"started at line {idx}" for _, idx, _ in lines.starts]
    parts += [f"finished at line {idx}" for _, idx, _, _ in lines.finishes]
    return ", ".join(parts)


def _check_run_lines(run_id: str, lines: _Lines, now: LoggedRun | None, state: _State) -> None:
    """One run's lines against what its store holds now."""
    if now is None:
        if lines.settled:  # else begun while the store was being read: nothing to hold it to
            state.tamper(
                None,
                "run_deleted",
                f"run {run_id} is in the log of runs ({_where(lines)}) but no longer in the "
                "store: it was deleted",
                run_id=run_id,
            )
        return
    for kind, count in (("start", len(lines.starts)), ("finish", len(lines.finishes))):
        if count > 1:
            state.tamper(
                None,
                "runs_log_duplicate",
                f"run {run_id} has {count} {kind} lines in the log of runs ({_where(lines)}); "
                "a store writes one: lines were planted",
                run_id=run_id,
            )
    if not now.readable:
        return
    for _, idx, root in lines.starts:
        if now.first_leaf is None:
            state.tamper(
                0,
                "run_changed",
                f"run {run_id} holds no events, but its start was logged (line {idx}): its "
                "events were deleted",
                run_id=run_id,
            )
        elif now.first_leaf != root:
            state.tamper(
                0,
                "run_changed",
                f"run {run_id} starts with another event than the one logged when it started "
                f"(line {idx}): its ledger was rewritten from the start",
                run_id=run_id,
            )
    for settled, idx, size, root in lines.finishes:
        # a line read after the run was (it ended meanwhile) is held to what the run showed
        if (settled or now.event_count >= size) and (now.event_count, now.root) != (size, root):
            state.tamper(
                None,
                "run_changed",
                f"run {run_id} was logged (line {idx}) with {size} events and root "
                f"{root.hex()[:16]}…, now has {now.event_count} events and root "
                f"{now.root.hex()[:16]}…",
                run_id=run_id,
            )


def _check_log_checkpoints(
    leaves: list[bytes],
    stored: list[_Checkpointed],
    external: list[_Checkpointed],
    verifiers: list[Verifier] | None,
    state: _State,
) -> int:
    """Every checkpoint of the log against its lines; the size the stored ones cover."""
    opened: list[_Checkpointed] = []
    for item in [*stored, *external]:
        if item.checkpoint.origin.endswith("/runs"):
            opened.append(item)
        else:
            state.tamper(
                None,
                "runs_log_origin",
                f"{item.label} is for {item.checkpoint.origin!r}, not a log of runs",
            )
    roots = _prefix_roots(
        leaves, sorted({c.checkpoint.size for c in opened if c.checkpoint.size <= len(leaves)})
    )
    covered = 0
    for item in opened:
        cp = item.checkpoint
        if cp.size > len(leaves):
            state.tamper(
                None,
                "runs_log_truncated",
                f"{item.label} covers {cp.size} lines but the log holds {len(leaves)}: "
                "lines (and the runs they name) were removed",
            )
        elif roots[cp.size] != cp.root:
            state.tamper(
                None,
                "runs_log_root",
                f"{item.label} (size {cp.size}) does not match the log of runs: a line was "
                "changed or removed",
            )
        else:
            signed = f", signed by {', '.join(item.signed_by)}" if item.signed_by else ""
            state.checked.append(f"{item.label}: size {cp.size} root matches{signed}")
            if item in external and verifiers is not None:
                state.anchors.append(f"{item.label}: size {cp.size}{signed}")
            if item in stored:
                covered = max(covered, cp.size)
    return covered
