"""Governance: policies that decide before each act, budgets, and rate limits per model.

::

    from codon_sdk import CodonWorkload
    from codon_sdk.governance import Budget, ModelAllowlist, RateLimit

    wl = CodonWorkload(name="agent", version="1")
    ...
    wl.add_policy(ModelAllowlist(["gpt-4o-mini"]))
    wl.add_budget(Budget(usd=2.0, llm_calls=50))
    wl.add_rate_limit(RateLimit(model="gpt-4o-mini", tokens_per_minute=200_000))

- :class:`Policy` (and the built-ins :class:`ModelAllowlist`, :class:`ToolAllowlist`,
  :class:`MaxTokensPerCall`, :class:`NoSensitiveData`) returns a :class:`Decision` for
  each :class:`Activation`, :class:`Effect` and :class:`LLMRequest` before it happens:
  a denial raises ``PolicyDeniedError`` in the node, an approval request pauses the run
  (an interrupt); each decision other than allow is a ``policy_decided`` ledger event
  naming the policy and its code identity.
- :class:`Budget` stops a run (status ``stopped``) before the act that would cross it,
  per run or per deployment (kept in the store).
- :class:`RateLimit` makes calls wait for room (``RateLimitWaitError`` past ``max_wait``).
- :func:`governance_of` reads what governance did in a run from its report.

The guide: docs/guides/governance.md.
"""

from codon_sdk.governance._budgets import MEASURES, Budget
from codon_sdk.governance._config import Governance, Governed
from codon_sdk.governance._policies import (
    ALLOW,
    Activation,
    Decision,
    Effect,
    LLMRequest,
    MaxTokensPerCall,
    ModelAllowlist,
    NoSensitiveData,
    Policy,
    ToolAllowlist,
    decide,
    estimate_tokens,
    policy_identity,
    request_texts,
)
from codon_sdk.governance._rates import Clock, RateLimit, Slot, limiter_for, wait_error
from codon_sdk.governance._summary import GovernanceSummary, governance_of

__all__ = [
    "ALLOW",
    "MEASURES",
    "Activation",
    "Budget",
    "Clock",
    "Decision",
    "Effect",
    "Governance",
    "GovernanceSummary",
    "Governed",
    "LLMRequest",
    "MaxTokensPerCall",
    "ModelAllowlist",
    "NoSensitiveData",
    "Policy",
    "RateLimit",
    "Slot",
    "ToolAllowlist",
    "decide",
    "estimate_tokens",
    "governance_of",
    "limiter_for",
    "policy_identity",
    "request_texts",
    "wait_error",
]
