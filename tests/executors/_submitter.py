"""A process that submits one run and stays alive until it is killed.

``python -m executors._submitter RAY_ADDRESS STORE_URL STAMP_FILE LEASE_S``: submits
``STAMPED`` on ``STAMP_FILE`` with a driver that asks for a ``driver`` resource the test
cluster does not have (so the driver task never starts), prints the run id, then sleeps.
"""

from __future__ import annotations

import os
import sys
import time

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # before ray is imported
os.environ["RAY_AUTH_MODE"] = "disabled"


def main(address: str, store: str, path: str, lease: str) -> None:
    from codon_sdk.executors import RayExecutor
    from executors._workloads import STAMPED

    executor = RayExecutor(address=address, driver_resources={"driver": 1})
    handle = STAMPED.submit(
        path, store=store, executor=executor, deployment_id="dev", lease_ttl=float(lease)
    )
    print(handle.run_id, flush=True)
    time.sleep(600)


if __name__ == "__main__":
    main(*sys.argv[1:5])
