"""What the adapter is told: per-node identity overrides and the runtime configuration."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from codon_sdk.errors import WorkloadRegistrationError
from codon_sdk.runtime import DEFAULT_MAX_EVENT_BYTES, DURABILITY_MODES
from codon_sdk.stores import LedgerStore

__all__ = ["NodeOverride", "RuntimeSettings", "coerce_overrides"]


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeOverride:
    """Identity settings for one LangGraph node; ``None`` keeps the adapter's default.

    Every field goes into the node's :class:`~codon_sdk.NodeSpec`, so changing one
    changes the node's id and the graph's logic id.

    Attributes:
        role: what the node does, for people and dashboards (``"planner"``,
            ``"retriever"``...). Defaults: ``"node"`` for a function, ``"subgraph"``
            for a compiled graph used as a node, ``"entry"`` for ``__start__`` and
            ``"exit"`` for ``__end__``.
        model_name: the model the node calls, e.g. ``"gpt-4o-mini"``.
        model_version: the model version or snapshot, e.g. ``"2024-07-18"``.
        org_namespace: the organisation owning the node, instead of the graph's
            ``org_namespace`` (or ``ORG_NAMESPACE``).
    """

    role: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    org_namespace: str | None = None

    @classmethod
    def coerce(cls, node: str, value: Any) -> NodeOverride:
        """A :class:`NodeOverride` from itself or a mapping of its fields."""
        if isinstance(value, NodeOverride):
            return value
        if not isinstance(value, Mapping):
            raise WorkloadRegistrationError(
                f"node_overrides[{node!r}] must be a NodeOverride or a mapping of its fields "
                f"(role, model_name, model_version, org_namespace), got {type(value).__name__}"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(str(k) for k in value if k not in known)
        if unknown:
            raise WorkloadRegistrationError(
                f"node_overrides[{node!r}] has unknown field(s) {unknown}; "
                f"a NodeOverride has {sorted(known)}"
            )
        for key, field_value in value.items():
            if field_value is not None and not isinstance(field_value, str):
                raise WorkloadRegistrationError(
                    f"node_overrides[{node!r}][{key!r}] must be a string or None, "
                    f"got {field_value!r}"
                )
        return cls(**dict(value))


def coerce_overrides(
    overrides: Mapping[str, NodeOverride | Mapping[str, Any]] | None, nodes: Sequence[str]
) -> dict[str, NodeOverride]:
    """Validate ``node_overrides`` against the graph's node names."""
    if overrides is None:
        return {}
    if not isinstance(overrides, Mapping):
        raise WorkloadRegistrationError(
            f"node_overrides must map node names to NodeOverride, got {type(overrides).__name__}"
        )
    unknown = sorted(str(name) for name in overrides if name not in nodes)
    if unknown:
        raise WorkloadRegistrationError(
            f"node_overrides name node(s) the graph does not have: {unknown}; "
            f"its nodes are {sorted(nodes)}"
        )
    return {name: NodeOverride.coerce(name, value) for name, value in overrides.items()}


_DEFAULT_ACTOR_KEYS = ("actor", "user_id")


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeSettings:
    """How the adapted graph's runs are recorded (``runtime_config=`` of ``from_langgraph``).

    Keys of ``runtime_config`` (all optional):

    ``deployment_id``
        recorded with every run (default ``"default"``).
    ``durability``
        ``"sync"``, ``"batch"`` or ``"exit"``: when ledger events reach the store (see
        ``codon_sdk.runtime._writer``). Default: ``"exit"`` for the in-memory store
        (a crash loses it anyway, so writing as the run goes buys nothing), ``"batch"``
        for any other store.
    ``enable_tracing``
        OpenTelemetry spans for runs and node activations (default ``True``; through
        the global tracer provider, so nothing is exported until one is set up).
    ``max_event_bytes``
        the largest ledger event allowed (default 16 MiB).
    ``actor_keys``
        the keys looked up, in order, in ``config["configurable"]`` and then in
        ``config["metadata"]`` to find who resumed an interrupted run
        (default ``("actor", "user_id")``).
    ``record_start_checkpoint``
        record the thread's checkpoint when a run starts on a thread that already has
        state, so the run can be replayed from it (default ``True``).
    """

    deployment_id: str = "default"
    durability: str | None = None
    enable_tracing: bool = True
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    actor_keys: tuple[str, ...] = _DEFAULT_ACTOR_KEYS
    record_start_checkpoint: bool = True
    store: str | LedgerStore | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> RuntimeSettings:
        if config is None:
            return cls()
        if not isinstance(config, Mapping):
            raise WorkloadRegistrationError(
                f"runtime_config must be a mapping, got {type(config).__name__}"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(str(k) for k in config if k not in known)
        if unknown:
            raise WorkloadRegistrationError(
                f"runtime_config has unknown key(s) {unknown}; known keys: {sorted(known)}"
            )
        values = dict(config)
        if "actor_keys" in values:
            keys = values["actor_keys"]
            if isinstance(keys, str) or not all(isinstance(k, str) for k in keys):
                raise WorkloadRegistrationError(
                    f"runtime_config['actor_keys'] must be a sequence of strings, got {keys!r}"
                )
            values["actor_keys"] = tuple(keys)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if not isinstance(self.deployment_id, str) or not self.deployment_id.strip():
            raise WorkloadRegistrationError(
                f"runtime_config['deployment_id'] must be a non-empty string, "
                f"got {self.deployment_id!r}"
            )
        if self.durability is not None and self.durability not in DURABILITY_MODES:
            raise WorkloadRegistrationError(
                f"runtime_config['durability'] must be one of {', '.join(DURABILITY_MODES)}, "
                f"got {self.durability!r}"
            )
        for label in ("enable_tracing", "record_start_checkpoint"):
            if not isinstance(getattr(self, label), bool):
                raise WorkloadRegistrationError(
                    f"runtime_config[{label!r}] must be True or False, got {getattr(self, label)!r}"
                )
        if type(self.max_event_bytes) is not int or self.max_event_bytes < 1:
            raise WorkloadRegistrationError(
                f"runtime_config['max_event_bytes'] must be a positive integer, "
                f"got {self.max_event_bytes!r}"
            )
