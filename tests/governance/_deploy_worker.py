"""One OS process of the two-process deployment budget test: runs LLM calls against its own
protocol server under a deployment budget kept in PostgreSQL; prints the requests it sent."""

from __future__ import annotations

import sys

sys.path.insert(0, sys.argv[3])

from _openai_support import FRANCE, instrumented, serving, sync_client, workload

from codon_sdk.governance import Budget


def main() -> None:
    url, calls = sys.argv[1], int(sys.argv[2])
    with serving() as server, instrumented():
        client = sync_client(server)

        def ask(n: int, *, runtime, context):  # type: ignore[no-untyped-def]
            for _ in range(n):
                client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
            return n

        wl = workload(("ask", ask), tracing=False)
        wl.add_budget(Budget(per="deployment", name="shared", llm_calls=5))
        report = wl.execute(calls, deployment_id="prod-eu", store=url)
        print(report.status, len(server.requests), flush=True)


main()
