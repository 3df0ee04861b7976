"""Workloads whose nodes call the real ``openai`` client, for the remote-LLM tests.

Importable, so Ray workers load the nodes (and this module's set-ups) by reference.
The server's URL comes in the run's context; the client is made inside the node, in
whatever process runs it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import openai

from codon_sdk import CodonWorkload

API_KEY = "sk-codon-test-SECRET-7f3a9c2e1b"
FRANCE: Any = [
    {"role": "system", "content": "You are a concise geography assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]
FRANCE_ANSWER = "The capital of France is Paris."


def _ask(context: Any) -> str:
    with openai.OpenAI(base_url=context["llm_url"], api_key=API_KEY, max_retries=0) as client:
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE, temperature=0)
    return str(reply.choices[0].message.content)


def geography(question: str, *, runtime: Any, context: Any) -> dict[str, Any]:
    return {"answer": _ask(context), "pid": os.getpid()}


def geography_flow() -> CodonWorkload:
    wl = CodonWorkload(name="Geography", version="1.0", org_namespace="codon-tests")
    wl.add_node(geography, "geography", "llm")
    return wl


def checked(question: str, *, runtime: Any, context: Any) -> dict[str, Any]:
    """Asks the model, then waits for a person to approve its answer (notes its pid in the
    file ``context["pid_file"]``: the result stays the same wherever it runs)."""
    Path(context["pid_file"]).write_text(str(os.getpid()))
    answer = _ask(context)
    verdict = runtime.interrupt("approve the answer?", payload={"answer": answer})
    return {"answer": answer, "verdict": verdict}


def checked_flow() -> CodonWorkload:
    wl = CodonWorkload(name="CheckedGeography", version="1.0", org_namespace="codon-tests")
    wl.add_node(checked, "checked", "llm")
    return wl


def broken_setup(*, reason: str) -> None:
    """A carried set-up that cannot run where the workers are."""
    raise ImportError(f"no module named {reason!r}")
