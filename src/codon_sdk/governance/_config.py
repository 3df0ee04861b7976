"""What a workload is governed by, and the three methods that set it (``add_policy``,
``add_budget``, ``add_rate_limit``), mixed into ``CodonWorkload``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from codon_sdk.errors import ConfigurationError, WorkloadRegistrationError
from codon_sdk.governance._budgets import Budget
from codon_sdk.governance._policies import Policy, Subjects
from codon_sdk.governance._rates import RateLimit

__all__ = ["Governance", "Governed"]


@dataclass(slots=True)
class Governance:
    """A workload's policies (everywhere and per node), budgets and rate limits."""

    policies: Subjects = field(default_factory=Subjects)
    budgets: list[Budget] = field(default_factory=list)
    rate_limits: list[RateLimit] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.policies.everywhere or self.policies.per_node or self.budgets or self.rate_limits
        )


class Governed:
    """The governance methods of a workload (see the governance guide)."""

    _governance: Governance | None = None

    @property
    def governance(self) -> Governance:
        """The workload's policies, budgets and rate limits (not part of its logic id)."""
        if self._governance is None:
            self._governance = Governance()
        return self._governance

    def add_policy(self, policy: Policy, *, node: str | None = None) -> None:
        """Ask ``policy`` before every activation, effect and LLM call of the workload's
        runs (``node=``: of that node only). Policies are asked in the order added."""
        if not isinstance(policy, Policy):
            raise ConfigurationError(
                f"add_policy takes a codon_sdk.governance.Policy (subclass it, or use a "
                f"built-in such as ModelAllowlist), got {type(policy).__qualname__}"
            )
        subjects = self.governance.policies
        if node is None:
            subjects.everywhere.append(policy)
            return
        nodes: dict[str, Any] = getattr(self, "_nodes", {})
        if node not in nodes:
            raise WorkloadRegistrationError(
                f"add_policy(node={node!r}): no such node; add the node first "
                f"(known: {', '.join(sorted(nodes)) or 'none'})"
            )
        subjects.per_node.setdefault(node, []).append(policy)

    def add_budget(self, budget: Budget) -> None:
        """Limit what each run (``Budget(per="run")``) or the deployment's runs together
        (``per="deployment"``, kept in the run's store) may spend."""
        if not isinstance(budget, Budget):
            raise ConfigurationError(
                f"add_budget takes a codon_sdk.governance.Budget, got {type(budget).__qualname__}"
            )
        held = self.governance.budgets
        if any(b.per == budget.per and b.name == budget.name for b in held):
            raise ConfigurationError(
                f"the workload already has a {budget.label}; give the new one another name="
            )
        held.append(budget)

    def add_rate_limit(self, limit: RateLimit) -> None:
        """Make the LLM calls that ``limit`` matches wait for room under it."""
        if not isinstance(limit, RateLimit):
            raise ConfigurationError(
                f"add_rate_limit takes a codon_sdk.governance.RateLimit, got "
                f"{type(limit).__qualname__}"
            )
        self.governance.rate_limits.append(limit)
