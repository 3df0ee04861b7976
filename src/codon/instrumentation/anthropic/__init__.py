"""Anthropic instrumentation: spans, metrics, cost, recorded effects for the ``anthropic`` client.

::

    from codon.instrumentation.anthropic import instrument_anthropic

    instrument_anthropic()  # every client; or instrument_anthropic(client) for one

    def answer(message, *, runtime, context):
        reply = client.messages.create(model="claude-sonnet-4-5", max_tokens=512, messages=[...])
        return reply.content[0].text

Covered: the Messages API, ``messages.create`` sync and async, plain, streamed
(``stream=True`` and the ``messages.stream()`` helper) and through
``with_raw_response``.

- **Spans**: each call is a CLIENT span ``chat <model>``, a child of the current
  span (the node span when the workload traces), with the GenAI attributes
  (``gen_ai.operation.name="chat"``, ``gen_ai.provider.name="anthropic"``,
  request parameters, ``gen_ai.response.model``/``id``/``finish_reasons``,
  ``gen_ai.usage.input_tokens`` (cache reads and writes included),
  ``gen_ai.usage.output_tokens``, ``gen_ai.usage.cache_read.input_tokens``,
  ``gen_ai.usage.cache_creation.input_tokens``, ``server.address``/``port``,
  ``error.type`` on failure) and ``codon.gen_ai.cost.usd``. A streamed call's
  span ends exactly once. Message content is left out unless
  ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`` (or
  ``capture_content=True``). Recent ``anthropic`` clients trace their own calls
  too: their span is a child of this one (turn it off with
  ``open_telemetry=False`` or ``ANTHROPIC_OPEN_TELEMETRY=false``).
- **Metrics**: ``gen_ai.client.token.usage`` and ``gen_ai.client.operation.duration``.
- **Cost**: from ``codon_sdk.llm.PRICES`` (Claude models, cache reads and writes
  at their own prices); an unknown model gets no cost and one logged warning.
- **Recorded effects**: inside a Codon node each call is an effect
  (``anthropic.messages``, ``anthropic.messages.stream``), so resume and replay
  return the recorded message, stream or error without the network.
- The API key and client headers never reach spans, the ledger or logs.

Not covered: ``messages.parse()`` and ``stream(output_format=...)`` (structured
outputs), ``count_tokens``, batches, the beta namespace and
``with_streaming_response`` (passed through untraced; a replay refuses the last).
"""

from __future__ import annotations

try:
    import anthropic as _anthropic  # noqa: F401
except ImportError as err:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "codon.instrumentation.anthropic needs the anthropic package: "
        'pip install "codon-sdk[anthropic]"'
    ) from err

from ._patch import instrument_anthropic, uninstrument_anthropic

__all__ = ["instrument_anthropic", "uninstrument_anthropic"]
