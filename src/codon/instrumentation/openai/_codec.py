"""How OpenAI responses, streams and errors are recorded: the ``codon.openai`` record format.

The format and the algorithm are :class:`codon_sdk.llm.StainlessCodec`'s (the
``openai`` client is built by Stainless); this module names what is OpenAI's own:
the package, its root error and the response headers worth keeping.
"""

from __future__ import annotations

import openai
from codon_sdk.llm import StainlessCodec

__all__ = [
    "CODEC",
    "FORMAT_KEY",
    "decode_object",
    "decode_stream",
    "encode_error",
    "encode_object",
    "encode_stream",
    "rebuild_error",
    "safe_headers",
    "scrub_exception",
]

CODEC = StainlessCodec(
    openai,
    label="OpenAI",
    base_error="OpenAIError",
    safe_headers=frozenset(
        {
            "content-type",
            "x-request-id",
            "retry-after",
            "retry-after-ms",
            "openai-processing-ms",
            "openai-version",
            "x-ratelimit-limit-requests",
            "x-ratelimit-limit-tokens",
            "x-ratelimit-remaining-requests",
            "x-ratelimit-remaining-tokens",
            "x-ratelimit-reset-requests",
            "x-ratelimit-reset-tokens",
        }
    ),
    default_url="https://api.openai.com/v1",
)
FORMAT_KEY = CODEC.format_key

encode_object = CODEC.encode_object
decode_object = CODEC.decode_object
encode_stream = CODEC.encode_stream
decode_stream = CODEC.decode_stream
encode_error = CODEC.encode_error
rebuild_error = CODEC.rebuild_error
safe_headers = CODEC.safe_headers
scrub_exception = CODEC.scrub_exception
