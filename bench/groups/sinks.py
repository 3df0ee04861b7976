"""``sinks``: what an audit sink costs: the run's side, and delivery to NATS JetStream.

Set-up, not timed: a SQLite ledger in a temporary directory (``batch`` durability) and a
``NatsSink`` on the JetStream server at 127.0.0.1:4222, on a stream of the benchmark's
own (deleted after). The workload is a self-loop of 2,000 activations (``--quick``: 500),
4 entries per step plus the run's start and end.

Contestants, interleaved round by round:

* ``run_no_sink``: ``execute`` with the store only;
* ``run_nats_sink``: the same with ``audit_sink=`` the NatsSink: what the run pays (it
  hands each commit to the relay and goes on; delivery happens behind it);
* ``delivered_nats``: ``execute`` with the sink, then ``sink.flush()``: until JetStream
  acknowledged every entry of the run (end to end);
* ``deliver_nats``: ``sink.deliver`` of the run's entries, already in memory, in
  batches of 256: the publishing alone (one acknowledged publish per entry).

Figures: µs per step of each run, the run's overhead with the sink (per step, over
``run_no_sink`` in the same round) and µs per entry of ``delivered_nats`` and
``deliver_nats``. No targets: the issue asks for the figure. ``delivered_nats`` shares
the machine with the backlog ``run_nats_sink`` leaves in its own sink's relay (a busy
machine, as in production), so it reads higher than ``deliver_nats``.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import tempfile
import uuid
from pathlib import Path
from typing import Any

from bench._harness import Contestant, HarnessError, Result, Settings, Stats, interleave
from codon_sdk.agents import CodonWorkload
from codon_sdk.ledger import leaf_hash
from codon_sdk.sinks import AuditEntry, NatsSink
from codon_sdk.stores import open_store

__all__ = ["run"]

GROUP = "sinks"


def _workload(steps: int) -> CodonWorkload:
    def loop(message: Any, *, runtime: Any, context: Any) -> int:
        if message + 1 < steps:
            runtime.emit("loop", message + 1)
        return int(message)

    wl = CodonWorkload(name="bench-sinks", version="1.0", org_namespace="bench")
    wl.add_node(loop, "loop", "worker")
    wl.add_edge("loop", "loop")
    return wl


def _nats_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 4222), timeout=1).close()
        return True
    except OSError:
        return False


def run(settings: Settings) -> list[Result]:
    if not _nats_up():
        return [Result(GROUP, "deliver_nats", None, "", None, "no NATS on 4222", (), "SKIP")]
    steps = 500 if settings.quick else 2_000
    reps = settings.reps(full=7, quick=3)
    directory = Path(tempfile.mkdtemp(prefix="codon-bench-sinks-"))
    name = f"BENCH_{uuid.uuid4().hex[:10]}"
    sink = NatsSink("nats://127.0.0.1:4222", stream=name, subject=f"bench.{name}")
    # run_nats_sink's own sink: the backlog it leaves is not what delivered_nats waits for
    behind = NatsSink("nats://127.0.0.1:4222", stream=name, subject=f"bench.{name}")
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, directory, True)
        stack.callback(sink.close)
        stack.callback(sink.delete_stream)
        stack.callback(behind.close)
        store = open_store(f"sqlite:///{directory / 'ledger.db'}")
        stack.callback(store.close)
        wl = _workload(steps)
        report = wl.execute(0, deployment_id="bench", store=store, max_steps=steps + 1)
        stored = store.read(report.run_id)
        entries = len(stored)
        counter = iter(range(1_000_000))

        def deliver() -> None:  # a fresh run id each time: no server-side duplicate
            run_id = f"deliver-{next(counter)}"
            items = [
                AuditEntry(run_id=run_id, seq=k, entry=e, leaf=leaf_hash(e))
                for k, e in enumerate(stored)
            ]
            for start in range(0, len(items), 256):
                sink.deliver(items[start : start + 256])

        def plain() -> None:
            wl.execute(0, deployment_id="bench", store=store, max_steps=steps + 1)

        def with_sink() -> None:
            wl.execute(
                0, deployment_id="bench", store=store, max_steps=steps + 1, audit_sink=behind
            )

        def delivered() -> None:
            wl.execute(0, deployment_id="bench", store=store, max_steps=steps + 1, audit_sink=sink)
            if not sink.flush(120):
                raise HarnessError("the NATS sink did not catch up within 120 s")

        contestants = [
            Contestant("run_no_sink", plain),
            Contestant("run_nats_sink", with_sink),
            Contestant("delivered_nats", delivered),
            Contestant("deliver_nats", deliver),
        ]
        for c in contestants:
            c.run()  # warm-up (connects, creates the stream)
        sink.flush(120)
        behind.flush(120)
        timings = interleave(contestants, reps)
        where = f"{steps:,}-step loop, {entries:,} entries, SQLite batch"
        results = []
        for c in contestants[:3]:
            per = Stats.of([s / steps * 1e6 for s in timings[c.name].wall])
            results.append(Result(GROUP, c.name, per.median, "µs/step", None,
                                  f"{where}; {per.describe()}", ()))  # fmt: skip
        over = Stats.of(
            [
                (a - b) / steps * 1e6
                for a, b in zip(
                    timings["run_nats_sink"].wall, timings["run_no_sink"].wall, strict=True
                )
            ]
        )
        said = f"what the run pays for the sink, per round; {over.describe()}"
        results.append(Result(GROUP, "run_overhead_nats", over.median, "µs/step", None, said))
        for label in ("delivered_nats", "deliver_nats"):
            per_entry = Stats.of([s / entries * 1e6 for s in timings[label].wall])
            results.append(Result(GROUP, f"{label}_per_entry", per_entry.median, "µs/entry", None,
                                  f"{where}; {per_entry.describe()}"))  # fmt: skip
        return results
    raise AssertionError("unreachable")  # pragma: no cover
