"""Checks of what a workload is given at registration and at run time: node signatures,
retry and timeout settings, run ids, actors and compatible node ids. Each refuses a bad
value with a message that names it and says what it must look like."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from codon_sdk.errors import WorkloadRegistrationError
from codon_sdk.identity import NodeSpec
from codon_sdk.runtime._policy import RetryPolicy

__all__ = [
    "check_node_signature",
    "checked_actor",
    "checked_run_id",
    "checked_timeout",
    "compatible_ids",
    "retry_policy",
]


def retry_policy(node: str, retry: RetryPolicy | int | None) -> RetryPolicy | None:
    if retry is None or isinstance(retry, RetryPolicy):
        return retry
    if type(retry) is int and retry >= 1:
        return RetryPolicy(max_attempts=retry)
    raise WorkloadRegistrationError(
        f"retry of node {node!r} must be a RetryPolicy or a positive number of attempts, "
        f"got {retry!r}"
    )


def checked_timeout(node: str, timeout: float | None) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise WorkloadRegistrationError(
            f"timeout of node {node!r} must be a positive number of seconds, got {timeout!r}"
        )
    return float(timeout)


def checked_run_id(run_id: str | None) -> str:
    if run_id is None:
        return uuid.uuid4().hex
    if not isinstance(run_id, str) or not run_id.strip() or len(run_id) > 200:
        raise ValueError(
            f"run_id must be a non-empty string of at most 200 characters, got {run_id!r}"
        )
    if any(not ch.isprintable() for ch in run_id):
        raise ValueError(f"run_id must contain printable characters only, got {run_id!r}")
    return run_id


def check_node_signature(name: str, function: Callable[..., Any]) -> None:
    """A node is called as ``fn(message, runtime=..., context=...)``: say so at registration
    rather than with a raw ``TypeError`` in the middle of a run."""
    try:
        sig = inspect.signature(function)
    except (TypeError, ValueError):  # a builtin without a signature: it will tell at run time
        return
    try:
        sig.bind(None, runtime=None, context=None)
    except TypeError as exc:
        shown = getattr(function, "__name__", type(function).__name__)
        raise WorkloadRegistrationError(
            f"node {name!r}: {shown}{sig} cannot be called as a node ({exc}). A node takes the "
            "message and two keyword arguments: def "
            f"{shown if shown.isidentifier() else 'node'}(message, *, runtime, context): ...; "
            "for a LangGraph graph, use LangGraphWorkloadAdapter.from_langgraph"
        ) from None


def compatible_ids(node: str, given: Iterable[str | NodeSpec]) -> frozenset[str]:
    if isinstance(given, (str, NodeSpec)):
        given = [given]
    ids: set[str] = set()
    for item in given:
        node_id = item.id if isinstance(item, NodeSpec) else item
        if (
            not isinstance(node_id, str)
            or len(node_id) != 64
            or any(c not in "0123456789abcdef" for c in node_id)
        ):
            raise WorkloadRegistrationError(
                f"compatible_with of node {node!r} takes NodeSpec ids (64 lower-case hex digits, "
                f"as `codon identity` prints them) or NodeSpecs, got {item!r}"
            )
        ids.add(node_id)
    return frozenset(ids)


def checked_actor(actor: str | None) -> str | None:
    """``actor`` checked before it is recorded: it is shown to every operator who reads the run."""
    if actor is None:
        return None
    if not isinstance(actor, str) or not actor.strip() or len(actor) > 200:
        raise ValueError(
            f"actor must be a non-empty string of at most 200 characters, got {actor!r}"
        )
    if not actor.isprintable():
        raise ValueError(
            "actor must contain printable characters only (no newlines, control characters "
            f"or terminal escapes), got {actor!r}"
        )
    return actor
