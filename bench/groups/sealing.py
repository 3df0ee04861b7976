"""``sealing``: what sealing secrets costs per activation, beside masking them and no redaction.

A 5,000-step token loop whose every activation receives a payload holding an API
key, writes it into ``runtime.state`` and emits it on (so each activation records
the secret twice: in the token it emits and in its state change), run with three
policies, interleaved:

* ``disabled``: ``Redactor.disabled()`` (nothing scanned, the secret recorded as is);
* ``mask``: ``Redactor()`` without a sealing key (each secret becomes a mask marker);
* ``seal``: ``Redactor(sealing_keys=...)`` (each secret becomes an AES-256-GCM sealed
  marker: HMAC digest, synthetic nonce, encryption);

plus ``seal_clean``: the sealing policy on the same loop with a payload holding no
secret, the common case (only the pre-check runs). Reported: µs per activation of
each, and the per-activation cost of sealing over masking and over no redaction.
Then the other side: per recorded activation, what opening the sealed values costs when
a run is rebuilt for resume (``rebuild`` + ``open_rebuilt`` against ``rebuild`` alone, on
the sealing loop's own ledger).
No target: the figures inform the choice (the issue asks that ``make bench`` show them).
"""

from __future__ import annotations

import os
from typing import Any

from bench._harness import Contestant, HarnessError, Result, Settings, Stats, interleave
from codon_sdk import CodonWorkload
from codon_sdk.ledger._events import parse_entry
from codon_sdk.redaction import Redactor, StaticSealingKeys
from codon_sdk.runtime._rebuild import rebuild
from codon_sdk.runtime._unseal import open_rebuilt

__all__ = ["run"]

GROUP = "sealing"
NODE = "loop"
SECRET = "sk-proj-Q7wErTy2uIoP9aSdFgH4jKlZ8xCvBnM1"
CLEAN = "an ordinary customer message with no credential in it"


def _loop(policy: Redactor, text: str, steps: int) -> Any:
    last = steps - 1

    def loop(message: dict[str, Any], *, runtime: Any, context: Any) -> int:
        i: int = message["i"]
        runtime.state["key"] = message["key"]
        if i < last:
            runtime.emit(NODE, {"i": i + 1, "key": message["key"]})
        return i

    workload = CodonWorkload(
        name="bench-sealing", version="1.0", org_namespace="bench", redactor=policy
    )
    workload.add_node(loop, NODE, "worker")
    workload.add_edge(NODE, NODE)

    def run() -> Any:
        return workload.execute(
            {"i": 0, "key": text}, deployment_id="bench", max_steps=steps, run_id="bench-sealing"
        )

    return run


def _check(report: Any, steps: int, *, sealed: bool, secret: bool) -> None:
    if report.status != "completed" or len(report.node_results(NODE)) != steps:
        raise HarnessError(f"sealing loop ended {report.status!r}")
    text = b"\n".join(report.entries)
    if secret and sealed != (b"[SEALED:api_key:" in text):
        raise HarnessError("the sealing loop did not seal (or sealed when it should not)")


def run(settings: Settings) -> list[Result]:
    steps = 1_000 if settings.quick else 5_000
    reps = settings.reps(full=7, quick=3)
    keys = StaticSealingKeys(os.urandom(32))
    policies = {
        "disabled": (Redactor.disabled(), SECRET),
        "mask": (Redactor(key=b"bench-redaction-key", sealing_keys=None), SECRET),
        "seal": (Redactor(key=b"bench-redaction-key", sealing_keys=keys), SECRET),
        "seal_clean": (Redactor(key=b"bench-redaction-key", sealing_keys=keys), CLEAN),
    }
    if policies["mask"][0].seals:  # CODON_SEALING_KEY set in this environment
        policies["mask"] = (Redactor(key=b"bench-redaction-key", actions=_all_mask()), SECRET)
    loops = {name: _loop(policy, text, steps) for name, (policy, text) in policies.items()}
    entries: list[bytes] = []
    for name, fn in loops.items():  # warm-up, checked
        report = fn()
        _check(report, steps, sealed=name.startswith("seal"), secret=name != "seal_clean")
        if name == "seal":
            entries = list(report.entries)
    timings = interleave([Contestant(name, fn) for name, fn in loops.items()], reps)
    per = {name: [w / steps * 1e6 for w in t.wall] for name, t in timings.items()}
    stats = {name: Stats.of(v) for name, v in per.items()}
    over_mask = [s - m for s, m in zip(per["seal"], per["mask"], strict=True)]
    over_none = [s - d for s, d in zip(per["seal"], per["disabled"], strict=True)]
    results = [
        Result(
            GROUP,
            f"{name}_loop",
            stats[name].median,
            "µs/step",
            None,
            f"{steps:,} steps, the secret recorded 2x per step; {stats[name].describe()}"
            if name != "seal_clean"
            else f"sealing policy, no secret in the data; {stats[name].describe()}",
            tuple(per[name]),
        )
        for name in loops
    ]
    for label, added, what in (
        ("seal_over_mask", over_mask, "seal - mask per activation"),
        ("seal_over_disabled", over_none, "seal - disabled per activation"),
    ):
        s = Stats.of(added)
        results.append(
            Result(GROUP, label, s.median, "µs/step", None, f"{what}; {s.describe()}", tuple(added))
        )
    results += _opening(entries, policies["seal"][0], steps, reps)
    return results


def _opening(entries: list[bytes], policy: Redactor, steps: int, reps: int) -> list[Result]:
    def rebuilt_only() -> Any:
        return rebuild(parse_entry(e) for e in entries)

    def rebuilt_and_opened() -> Any:
        rebuilt = rebuild(parse_entry(e) for e in entries)
        open_rebuilt(rebuilt, entries, policy, action="resumed")
        if rebuilt.state.get("key") != SECRET:
            raise HarnessError("opening did not give the secret back")
        return rebuilt

    rebuilt_and_opened()
    timings = interleave(
        [Contestant("rebuild", rebuilt_only), Contestant("open", rebuilt_and_opened)], reps
    )
    added = [
        (o - r) / steps * 1e6
        for o, r in zip(timings["open"].wall, timings["rebuild"].wall, strict=True)
    ]
    s = Stats.of(added)
    return [
        Result(
            GROUP,
            "open_on_resume",
            s.median,
            "µs/step",
            None,
            f"rebuild + open sealed values - rebuild, per recorded activation; {s.describe()}",
            tuple(added),
        )
    ]


def _all_mask() -> dict[str, str]:
    return dict.fromkeys(("private_key", "api_key", "bearer_token"), "mask")
