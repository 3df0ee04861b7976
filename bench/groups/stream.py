"""``stream``: memory of reading a long run back: ``runs show``, ``export``, the report.

Set-up, not timed: a real 100-step self-loop is recorded once (in memory) and its steady
part repeated, renumbered and re-linked (each ``prev`` the leaf hash of the entry before,
``run_finished`` counting the events), into two SQLite ledgers written straight through
the store API (``begin_run``, then ``append`` in batches: no activation runs) holding one
run each, a small and a large one ten times its size. Each such run verifies. The sizes,
chosen so that the group costs a few minutes in a full ``make bench``:

* ``export`` and ``report`` (the readers issue 14 asks to be flat at a million events):
  100,000 and 1,000,000 events;
* ``show_json`` and ``show_text``: 20,000 and 200,000 events (their text and JSON views
  cost much more per event; the ratio, not the size, is what shows growth);
* ``--quick``: 20,000 and 200,000 events for every reader.

Each reader runs in a fresh child process (``python -m bench.groups.stream``), which
opens the store, takes a baseline, runs the reader once and reports the peak of
``tracemalloc`` (Python allocations) and the growth of the peak RSS (``ru_maxrss``) over
the baseline:

* ``export``: ``codon export RUN`` into ``/dev/null`` (checks the run, writes every entry);
* ``show_json``: ``codon runs show RUN --json`` into ``/dev/null``;
* ``show_text``: ``codon runs show RUN`` into ``/dev/null`` (its activations section is the
  run explorer's index of every activation, which holds them: no target, an INFO row);
* ``report``: ``load_report(url, RUN)``, then ``summary()``, ``len(report.ledger)``, one
  pass over ``report.ledger`` and ``head_hash``.

Flat memory (issue 14, item 3) means the figure at the large size is about the one at the
small size: the rows ``<reader>_ratio`` (large over small tracemalloc peak, target
<= 1.5x). What a reader must still hold is said in docs/guides/reading-long-runs.md.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import orjson

from bench._harness import HarnessError, Result, Settings, Target, fmt_number

__all__ = ["build_run", "run"]

GROUP = "stream"
RUN_ID = "bench-stream"
FLAT = Target("<=", 1.5)
READERS = ("export", "show_json", "show_text", "report")
_REPO = Path(__file__).resolve().parents[2]


def _template() -> list[bytes]:
    """The entries of a real 100-step self-loop recorded in memory."""
    from codon_sdk import CodonWorkload

    def step(message: Any, *, runtime: Any, context: Any) -> dict[str, Any]:
        i = message["i"]
        runtime.state["last"] = i
        if i + 1 < 100:
            runtime.emit("step", {"i": i + 1, "note": "keep going"})
        return {"i": i, "ok": True}

    workload = CodonWorkload(name="bench-stream", version="1.0", org_namespace="bench")
    workload.add_node(step, "step", "worker")
    workload.add_edge("step", "step")
    report = workload.execute({"i": 0}, deployment_id="bench", max_steps=100, run_id=RUN_ID)
    return list(report.entries)


def build_run(url: str, events: int, *, batch: int = 20_000) -> int:
    """Write one run of about ``events`` events into the store at ``url`` through the store
    API (no activation runs): a recorded run's steady part repeated and re-chained. Returns
    the number of events written."""
    from codon_sdk.ledger import leaf_hash
    from codon_sdk.stores import RunInfo, new_owner, open_store

    recorded = _template()
    first, seed, last = (orjson.loads(recorded[k]) for k in (0, 1, -1))
    # one whole activation of the steady part (token t2 taken, t3 emitted), made afresh per
    # activation with its own token ids, so readers see as many tokens as a real run has
    activation = [orjson.loads(e) for e in recorded[6:10]]
    if [a["type"] for a in activation] != [
        "token_dequeued",
        "token_enqueued",
        "state_updated",
        "node_completed",
    ]:
        raise HarnessError("the recorded loop's activations changed shape; update build_run")
    owner = new_owner()
    store = open_store(url, notary=None)
    try:
        started = first["ts"]
        info = RunInfo(
            run_id=RUN_ID,
            workload_name="bench-stream",
            workload_version="1.0",
            logic_id=str(first["metadata"]["workload"]["logic_id"]),
            deployment_id="bench",
            status="running",
            started_us=started,
            owner=owner,
            heartbeat_us=started,
        )
        state: dict[str, Any] = {"seq": 0, "prev": None}
        pending: list[tuple[int, bytes, bytes]] = []

        def put(obj: dict[str, Any]) -> None:
            seq = state["seq"]
            obj["seq"] = seq
            if state["prev"] is not None:
                obj["prev"] = state["prev"]
            obj["ts"] = started + seq
            entry = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
            leaf = leaf_hash(entry)
            pending.append((seq, entry, leaf))
            state["seq"], state["prev"] = seq + 1, leaf.hex()

        put(dict(first))
        store.begin_run(info, pending)
        pending.clear()
        put(dict(seed))
        count = 0
        while state["seq"] + len(activation) + 1 <= events:
            count += 1
            names = {"t2": f"t{count}", "t3": f"t{count + 1}"}
            for obj in activation:
                made = dict(obj)
                for key in ("token_id", "parent_token_id"):
                    if key in made:
                        made[key] = names[made[key]]
                put(made)
            if len(pending) >= batch:
                store.append(RUN_ID, owner, pending)
                pending.clear()
        end = dict(last)
        end["metadata"] = {**last["metadata"], "events": state["seq"], "activations": count}
        put(end)
        store.append(
            RUN_ID,
            owner,
            pending,
            status="completed",
            finished_us=started + state["seq"],
            release=True,
        )
        return int(state["seq"])
    finally:
        store.close()


# --------------------------------------------------------------------------- the child


def _read(reader: str, url: str) -> None:
    from codon_sdk.cli import main
    from codon_sdk.runtime import load_report

    if reader == "report":
        report = load_report(url, RUN_ID)
        if "completed" not in report.summary() or not len(report.ledger):
            raise HarnessError("the report of the long run is not the run")
        for _ in report.ledger:
            pass
        if report.head_hash is None:
            raise HarnessError("the long run has no head")
        return
    args = {
        "export": ["export", RUN_ID, "--ledger", url],
        "show_json": ["runs", "show", RUN_ID, "--ledger", url, "--json"],
        "show_text": ["runs", "show", RUN_ID, "--ledger", url],
    }[reader]
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        code = main(args)
    if code != 0:
        raise HarnessError(f"codon {' '.join(args[:2])} exited {code} on the long run")


def _child(reader: str, url: str) -> dict[str, Any]:
    import codon_sdk.cli
    import codon_sdk.runtime  # noqa: F401

    with contextlib.redirect_stderr(io.StringIO()):
        baseline_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        tracemalloc.start()
        began = time.perf_counter()
        _read(reader, url)
        took = time.perf_counter() - began
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - baseline_rss
    return {"traced_peak": peak, "rss_growth": rss, "seconds": took}


def _measure(reader: str, url: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.groups.stream", reader, url]
    proc = subprocess.run(cmd, cwd=_REPO, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise HarnessError(f"the {reader} child failed: {proc.stderr[-2000:]}")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


#: (small, large) events of the runs each reader reads at full size (see the docstring)
FULL_SIZES = {
    "export": (100_000, 1_000_000),
    "report": (100_000, 1_000_000),
    "show_json": (20_000, 200_000),
    "show_text": (20_000, 200_000),
}
QUICK_SIZES = (20_000, 200_000)


def run(settings: Settings) -> list[Result]:
    plan = {r: QUICK_SIZES if settings.quick else FULL_SIZES[r] for r in READERS}
    folder = Path(tempfile.mkdtemp(prefix="codon-bench-stream-"))
    try:
        urls: dict[int, str] = {}
        written: dict[int, int] = {}  # events asked for -> events the run holds
        for events in sorted({n for pair in plan.values() for n in pair}):
            urls[events] = f"sqlite:///{folder / f'run-{events}.db'}"
            written[events] = build_run(urls[events], events)
        results: list[Result] = []
        for reader in READERS:
            labels = dict(zip(("small", "large"), plan[reader], strict=True))
            sizes = {label: written[n] for label, n in labels.items()}
            m = {label: _measure(reader, urls[n]) for label, n in labels.items()}
            for label in ("small", "large"):
                results.append(
                    Result(
                        GROUP,
                        f"{reader}_{label}",
                        m[label]["traced_peak"] / 1e6,
                        "MB",
                        None,
                        f"{sizes[label]:,} events: tracemalloc peak; peak RSS growth "
                        f"{fmt_number(m[label]['rss_growth'] / 1e6)} MB; "
                        f"{fmt_number(m[label]['seconds'])} s (traced)",
                    )
                )
            ratio = m["large"]["traced_peak"] / max(m["small"]["traced_peak"], 1)
            results.append(
                Result(
                    GROUP,
                    f"{reader}_ratio",
                    ratio,
                    "x",
                    None if reader == "show_text" else FLAT,
                    f"tracemalloc peak at {sizes['large']:,} over {sizes['small']:,} events "
                    "(flat: about 1x)",
                )
            )
        return results
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    print(json.dumps(_child(sys.argv[1], sys.argv[2])))
