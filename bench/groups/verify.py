"""``verify``: ledger events checked per second by verification (DESIGN.md section 7).

Set-up, not timed: one real run recorded in a temporary SQLite ledger whose store
has a notary (Ed25519, a signed checkpoint every 1,000 events and at the end,
each exported to a directory by a ``FileCheckpointSink``). The workload is a
self-loop of 26,000 activations, each reading and writing the shared state and
emitting a small dict to itself: 104,002 events (``--quick``: 5,000 activations,
20,002 events), 105 stored checkpoints.

Contestants, interleaved round by round:

* ``verify_run``: ``verify_run(store, run_id, vkeys=[vkey], checkpoints=[final
  exported note])``, as ``codon verify RUN --checkpoint ... --vkey ...`` calls it:
  read every entry and checkpoint from SQLite, check each entry (parses, canonical
  RFC 8785 bytes, run id, seq, prev link, start and end), the Merkle root and
  Ed25519 signature of every stored checkpoint and of the exported one. Every
  run must say ``verified`` (checked on every sample), or the figures are void.
* ``verify_entries``: the same checks on entries and notes already in memory (the
  pure function ``verify_run`` wraps): verification without I/O.
* ``read``: ``store.read(run_id)`` alone, to show what the I/O costs.
* ``verify_run_postgres``, ``read_postgres``: the same run recorded in a throwaway
  PostgreSQL database (skipped when no server answers; no target: issue 14 sets it
  for SQLite).
* ``canonical_recheck``: ``json_canonical(orjson.loads(entry))`` over every entry: the
  SDK's own RFC 8785 encoder, which the check falls back to for unusual entries (the
  chain walk checks ordinary ones 256 at a time with ``orjson``), to show what
  re-encoding every entry that way would cost.

Each figure is events divided by the median wall time (``events/s``); details
give the CPU time beside the wall time, and an ``events per CPU second`` figure
that a busy machine inflates much less. Target: ``verify_run`` at least 500,000
events per second (issue 14).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bench._harness import (
    Contestant,
    HarnessError,
    Result,
    Settings,
    Stats,
    Target,
    Timings,
    fmt_number,
    interleave,
)
from bench.groups.durable import _postgres
from codon_sdk.agents import CodonWorkload
from codon_sdk.identity._canonical import json_canonical
from codon_sdk.ledger._note import Ed25519Signer
from codon_sdk.ledger._verify import verify_entries
from codon_sdk.stores._base import LedgerStore
from codon_sdk.stores._notary import FileCheckpointSink, Notary
from codon_sdk.stores._open import open_store
from codon_sdk.stores._verify import verify_run

__all__ = ["run"]

GROUP = "verify"
RUN_ID = "bench-verify"
EVENTS_PER_SECOND = Target(">=", 500_000.0)
CHECKPOINT_EVERY = 1000
EVENTS_PER_ACTIVATION = 4  # token_dequeued, state_updated, token_enqueued, node_completed


def _workload(steps: int) -> CodonWorkload:
    def step(message: Any, *, runtime: Any, context: Any) -> dict[str, Any]:
        i = message["i"]
        runtime.state["last"] = i
        if i + 1 < steps:
            runtime.emit("step", {"i": i + 1, "decision": "approve" if i % 3 else "review"})
        return {"i": i, "ok": True}

    workload = CodonWorkload(name="bench-verify", version="1.0", org_namespace="bench")
    workload.add_node(step, "step", "worker")
    workload.add_edge("step", "step")
    return workload


class _RecordedRun:
    """The recorded run, its store, its key and its exported final checkpoint."""

    def __init__(self, steps: int, url: str | None = None) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="codon-bench-verify-"))
        self.signer = Ed25519Signer.generate("bench.example/ledger")
        sink = FileCheckpointSink(self.directory / "checkpoints")
        notary = Notary(signer=self.signer, every=CHECKPOINT_EVERY, sinks=(sink,))
        self.store: LedgerStore = open_store(
            url or f"sqlite:///{self.directory / 'ledger.db'}", notary=notary
        )
        report = _workload(steps).execute(
            {"i": 0}, deployment_id="bench", store=self.store, run_id=RUN_ID, max_steps=steps
        )
        if report.status != "completed":
            raise HarnessError(f"the recorded run ended {report.status!r}, not 'completed'")
        notes = sorted(
            (self.directory / "checkpoints" / RUN_ID).glob("*.note"), key=lambda p: int(p.stem)
        )
        if not notes:
            raise HarnessError("the notary exported no checkpoint")
        self.final_note = notes[-1]
        self.events = self.store.get_run(RUN_ID).event_count
        self.entries = self.store.read(RUN_ID)
        self.stored = [note for _, note in self.store.checkpoints(RUN_ID)]
        expected = steps * EVENTS_PER_ACTIVATION + 2
        if self.events != expected or len(self.entries) != expected:
            raise HarnessError(f"the recorded run has {self.events} events, expected {expected}")

    def close(self) -> None:
        self.store.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    # ------------------------------------------------------------------ contestants

    def verify_run(self) -> None:
        report = verify_run(
            self.store, RUN_ID, vkeys=[self.signer.vkey], checkpoints=[self.final_note]
        )
        self._check(report)

    def verify_entries(self) -> None:
        report = verify_entries(
            RUN_ID,
            self.entries,
            stored_checkpoints=self.stored,
            external_checkpoints=[self.final_note.read_bytes()],
            vkeys=[self.signer.vkey],
            index_says_ended=True,
        )
        self._check(report)

    def canonical_recheck(self) -> None:
        for entry in self.entries:
            if json_canonical(orjson.loads(entry)) != entry:
                raise HarnessError("a recorded entry is not in canonical form")

    def read(self) -> None:
        if len(self.store.read(RUN_ID)) != self.events:
            raise HarnessError("store.read returned a different number of events")

    def _check(self, report: Any) -> None:
        if report.status != "verified" or report.event_count != self.events:
            raise HarnessError(
                f"verification said {report.status!r} over {report.event_count} events; "
                f"expected 'verified' over {self.events}:\n{report.summary()}"
            )


def run(settings: Settings) -> list[Result]:
    steps = 5_000 if settings.quick else 26_000
    reps = settings.reps(full=7, quick=3)
    with contextlib.ExitStack() as stack:
        recorded = _RecordedRun(steps)
        stack.callback(recorded.close)
        contestants: list[tuple[str, Callable[[], None], Target | None]] = [
            ("verify_run", recorded.verify_run, EVENTS_PER_SECOND),
            ("verify_entries", recorded.verify_entries, None),
            ("read", recorded.read, None),
            ("canonical_recheck", recorded.canonical_recheck, None),
        ]
        pg_url = stack.enter_context(_postgres())
        skipped: list[Result] = []
        if pg_url is None:
            skipped.append(
                Result(
                    GROUP, "verify_run_postgres", None, "", None, "no PostgreSQL server", (), "SKIP"
                )
            )
        else:
            on_postgres = _RecordedRun(steps, pg_url)
            stack.callback(on_postgres.close)
            contestants += [
                ("verify_run_postgres", on_postgres.verify_run, None),
                ("read_postgres", on_postgres.read, None),
            ]
        for _, call, _ in contestants:
            call()  # the warm-up run, checked
        timings = interleave([Contestant(name, call) for name, call, _ in contestants], reps)
        where = (
            f"{recorded.events:,} events, {len(recorded.stored)} stored checkpoints + 1 exported"
        )
        results: list[Result] = []
        for name, _, target in contestants:
            results += _throughput(name, timings[name], recorded.events, where, target)
        return results + skipped


def _throughput(
    name: str, timings: Timings, events: int, where: str, target: Target | None
) -> list[Result]:
    wall = Stats.of([events / s for s in timings.wall])
    cpu = Stats.of([events / s for s in timings.cpu if s > 0] or [0.0])
    share = Stats.of(timings.cpu).median / Stats.of(timings.wall).median * 100
    per_event_us = 1e6 / wall.median
    details = (
        f"{where}; {wall.describe()}; {fmt_number(per_event_us)} µs/event; cpu {share:.0f}% of wall"
    )
    return [
        Result(
            GROUP,
            name,
            wall.median,
            "events/s",
            target,
            details,
            tuple(events / s for s in timings.wall),
            extra={"cpu": timings.cpu, "wall": timings.wall},
        ),
        Result(
            GROUP,
            f"{name}_per_cpu_second",
            cpu.median,
            "events/s",
            None,
            f"events per second of process CPU time (what a quiet machine would show); "
            f"{cpu.describe()}",
        ),
    ]
