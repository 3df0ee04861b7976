"""``codon replay RUN_ID --workload MODULE:ATTR [--live NODE]...``: exit 0 identical, 1 diverged
(a changed decision, or an effect or LLM call asked for something else than was recorded)."""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import sys
from typing import Any

from codon_sdk.cli._common import EXIT_FAILED, EXIT_OK, CliError, emit_json, opened_store
from codon_sdk.errors import ReplayError
from codon_sdk.runtime import CodonWorkload

__all__ = ["load_workload", "replay"]


def load_workload(spec: str) -> CodonWorkload:
    """Import ``module:attr`` (from the current directory too) and find the workload in it.

    ``attr`` may be a CodonWorkload, an object with a ``.workload`` (a LangGraph
    adapter's wrapped graph), or a function of no arguments returning either.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise CliError(
            f"--workload must look like MODULE:ATTR (e.g. agents.support:workload), got {spec!r}"
        )
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CliError(f"cannot import module {module_name!r} for --workload: {exc}") from exc
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise CliError(f"module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    for candidate in (obj, getattr(obj, "workload", None)):
        if isinstance(candidate, CodonWorkload):
            return candidate
    if inspect.isfunction(obj) and not _required_params(obj):
        try:
            made = obj()
        except Exception as exc:
            raise CliError(f"{spec}() failed while building the workload: {exc}") from exc
        for candidate in (made, getattr(made, "workload", None)):
            if isinstance(candidate, CodonWorkload):
                return candidate
    raise CliError(f"{spec} is not a CodonWorkload (got {type(obj).__name__})")


def _required_params(fn: Any) -> list[str]:
    return [
        p.name
        for p in inspect.signature(fn).parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]


def replay(args: argparse.Namespace) -> int:
    workload = load_workload(args.workload)
    with opened_store(args.ledger) as store:
        try:
            outcome = workload.replay(args.run_id, store=store, live=args.live, force=args.force)
        except ReplayError as exc:
            raise CliError(str(exc)) from exc
    if args.json:
        emit_json(outcome.to_dict())
    else:
        print(outcome.summary())
    return EXIT_OK if outcome.identical and not outcome.untrusted else EXIT_FAILED
