"""One OS process of the shared rate-limit test: from a common start time, makes LLM calls
under a rate limit whose window lives in PostgreSQL; prints when each call started and ended."""

from __future__ import annotations

import json
import sys
import time

sys.path.insert(0, sys.argv[4])

from _openai_support import FRANCE, instrumented, serving, sync_client, workload

from codon_sdk.governance import RateLimit


def main() -> None:
    url, start_at, calls = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    times: list[tuple[float, float]] = []
    with serving() as server, instrumented():
        client = sync_client(server)

        def ask(n: int, *, runtime, context):  # type: ignore[no-untyped-def]
            for _ in range(n):
                began = time.time()
                client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
                times.append((began, time.time()))
            return n

        wl = workload(("ask", ask), tracing=False)
        wl.add_rate_limit(RateLimit(model="gpt-4o-mini", requests_per_minute=4, window=1.0))
        time.sleep(max(0.0, start_at - time.time()))
        report = wl.execute(calls, deployment_id="shared-rate", store=url)
    print(json.dumps({"status": report.status, "times": times}), flush=True)


main()
