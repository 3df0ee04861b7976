"""OpenAI instrumentation: spans, metrics, cost, and recorded effects for the ``openai`` client.

::

    from codon.instrumentation.openai import instrument_openai

    instrument_openai()  # every client; or instrument_openai(client) for one

    def answer(message, *, runtime, context):
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=[...])
        return reply.choices[0].message.content

Covered: ``chat.completions.create``, ``responses.create`` and
``embeddings.create``, sync and async, plain, streamed (``stream=True`` and the
client's ``.stream()`` helpers) and through ``with_raw_response``.

- **Spans**: each call is a CLIENT span ``chat <model>`` (the Responses API too)
  or ``embeddings <model>``, a child of the current span (the node span when
  the workload traces), with the GenAI semantic-convention attributes
  (``gen_ai.operation.name``, ``gen_ai.provider.name="openai"``, request
  parameters, ``gen_ai.response.model``/``id``/``finish_reasons``,
  ``gen_ai.usage.*``, ``server.address``/``port``, ``error.type`` on failure)
  and ``codon.gen_ai.cost.usd``. A streamed call's span ends exactly once, when
  the stream is exhausted, closed or fails. Message content is left out unless
  ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`` (or
  ``capture_content=True``).
- **Metrics**: ``gen_ai.client.token.usage`` and ``gen_ai.client.operation.duration``.
- **Cost**: from ``codon_sdk.llm.PRICES`` (override with ``codon_sdk.llm.set_model_price``);
  an unknown model gets no cost and one logged warning.
- **Recorded effects**: inside a Codon node each call is an effect (request
  parameters, response, token usage and cost in the ledger), so resume and
  replay return the recorded response, stream or error without the network.
  Errors surface as the client raises them, with the same class on replay.
- The API key and client headers never reach spans, the ledger or logs.

Not covered: ``parse()`` (structured outputs) and ``with_streaming_response``
(passed through untraced; inside a node it is not recorded, and a replay
refuses it rather than calling out).
"""

from __future__ import annotations

try:
    import openai as _openai  # noqa: F401
except ImportError as err:  # pragma: no cover - exercised without the extra
    raise ImportError(
        'codon.instrumentation.openai needs the openai package: pip install "codon-sdk[openai]"'
    ) from err

from ._patch import instrument_openai, uninstrument_openai

__all__ = ["instrument_openai", "uninstrument_openai"]
