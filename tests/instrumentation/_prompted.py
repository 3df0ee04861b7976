"""A two-node agent calling the real ``openai`` client, in versions that differ in one prompt.

``ask`` asks the model about the ticket and emits the answer to ``review``, which
asks the model again. ``build_v2`` is the same agent after a prompt change in
``ask`` (the string literal in the node). The client reads the server's address
from ``PROMPTED_OPENAI_URL`` when called, so ``codon replay --workload
tests.instrumentation._prompted:build_v2`` loads the agent as written.
"""

from __future__ import annotations

import os
from typing import Any

import openai

from codon_sdk import CodonWorkload

__all__ = ["ASK_V1", "ASK_V2", "REVIEW", "URL_ENV", "build_v1", "build_v2"]

URL_ENV = "PROMPTED_OPENAI_URL"
ASK_V1 = "Classify this support ticket in one word:"
ASK_V2 = "Classify this support ticket, then explain why:"
REVIEW = "Check this classification:"


def _client() -> openai.OpenAI:
    return openai.OpenAI(
        base_url=os.environ[URL_ENV], api_key="sk-codon-test-SECRET-7f3a9c2e1b", max_retries=0
    )


def _chat(prompt: str) -> str:
    reply = _client().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}], temperature=0
    )
    return reply.choices[0].message.content or ""


def ask_v1(message: Any, *, runtime: Any, context: Any) -> str:
    answer = _chat(f"Classify this support ticket in one word: {message}")
    runtime.emit("review", answer)
    return answer


def ask_v2(message: Any, *, runtime: Any, context: Any) -> str:
    answer = _chat(f"Classify this support ticket, then explain why: {message}")
    runtime.emit("review", answer)
    return answer


def review(message: Any, *, runtime: Any, context: Any) -> str:
    return _chat(f"Check this classification: {message}")


def _build(ask: Any) -> CodonWorkload:
    workload = CodonWorkload(name="prompted", version="1.0", org_namespace="test-org")
    workload.add_node(ask, "ask", "classifier")
    workload.add_node(review, "review", "reviewer")
    workload.add_edge("ask", "review")
    return workload


def build_v1() -> CodonWorkload:
    return _build(ask_v1)


def build_v2() -> CodonWorkload:
    return _build(ask_v2)
