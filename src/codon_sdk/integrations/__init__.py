"""The one door for integrations: what a plug-in that records calls made inside Codon
nodes (an LLM client instrumentation, a tool framework) may use.

::

    from codon_sdk.integrations import integration

    door = integration("acme-llm")  # once, when the plug-in is installed

    def call(request):
        if door.activation() is None:  # not inside a node: just make the call
            return send(request)
        slot = door.effect("llm.acme", request=request)
        if slot.recorded is not None:  # resume or replay: the ledger answers
            return slot.served()
        try:
            reply = send(request)
        except Exception as exc:
            slot.record_error(exc)
            raise
        slot.record(reply)
        return reply

- :func:`integration` registers a plug-in by name and asks the engine to publish each
  activation's handle (which costs every activation a context-variable switch, so it is
  off until an integration is installed);
- :meth:`Integration.activation` is the running node's :class:`NodeRuntime`, or None;
  :meth:`Integration.effect` reserves the activation's next recorded effect
  (:class:`EffectSlot`): serve ``slot.recorded`` when the ledger has it, else call and
  ``slot.record(...)`` / ``slot.record_error(...)``;
- :meth:`Integration.carry` sends a process set-up (``instrument_openai()``) to the remote
  workers of this process's activations (``RayExecutor``), so calls inside remote
  activations are recorded as they are here; :meth:`Integration.stop_carrying` ends it;
- :meth:`Integration.redact` is the redaction hook for what leaves the process (span
  attributes, logs): the running node's policy, else the default one;
- GenAI call spans (:class:`GenAICall`, :func:`llm_call_scope`), usage
  (:class:`TokenUsage`, :func:`extract_usage`) and cost (:func:`cost_of`) come from
  ``codon_sdk.telemetry``, re-exported here; the provider-neutral LLM-call layer built on
  this door is ``codon_sdk.llm``.
"""

from __future__ import annotations

from codon_sdk.integrations._door import Integration, integration, integrations
from codon_sdk.runtime import EffectSlot, NodeRuntime
from codon_sdk.telemetry import (
    GenAICall,
    TokenUsage,
    cost_of,
    extract_usage,
    llm_call_scope,
    record_error,
)

__all__ = [
    "EffectSlot",
    "GenAICall",
    "Integration",
    "NodeRuntime",
    "TokenUsage",
    "cost_of",
    "extract_usage",
    "integration",
    "integrations",
    "llm_call_scope",
    "record_error",
]
