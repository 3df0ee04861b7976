"""``RayExecutor``: each activation a Ray task (sync nodes) or a call on an async Ray actor.

The run stays in the driver: its recorder is the single writer of the ledger, so the
chain, the order and exactly-once completion hold as in process. Only the node function
runs on the cluster, from an :class:`~codon_sdk.runtime.ActivationTicket`; what it did
comes back as an :class:`~codon_sdk.runtime.ActivationOutcome` and is recorded here
(``runtime/_remote.py``). A worker process that dies mid-activation left nothing in the
ledger: it is a :class:`~codon_sdk.errors.WorkerLostError`, retried under the node's
retry policy (or :attr:`RayExecutor.retry_lost` for nodes that have none).
"""

from __future__ import annotations

import asyncio
import itertools
import pickle
import socket
import threading
from collections.abc import Callable, Mapping
from typing import Any

from codon_sdk._text import exception_text
from codon_sdk.errors import (
    ActivationTransferError,
    ExecutorUnavailableError,
    LeaseLostError,
    RunConflictError,
    WorkerLostError,
    WorkloadRegistrationError,
    WorkloadRuntimeError,
)
from codon_sdk.executors._submit import Submission
from codon_sdk.runtime import (
    ActivationCall,
    ActivationOutcome,
    ActivationTicket,
    CodonWorkload,
    ExecutionReport,
    Executor,
    ProcessSetup,
    RetryPolicy,
    SubmittedRun,
    align_setups,
    carried_setups,
    checked_resources,
    run_coroutine,
    start_submitted,
)

__all__ = ["RayExecutor"]

_DEFAULT: Any = object()
_CONNECT_TIMEOUT_S = 3.0
_lock = threading.Lock()
_remote: dict[str, Any] = {}  # the remote function and actor class, made once per process


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ExecutorUnavailableError(
            'RayExecutor needs Ray: pip install "codon-sdk[ray]"'
        ) from exc
    return ray


def _dumps(value: Any) -> bytes:
    """``value`` pickled as Ray pickles (cloudpickle: functions by value where needed)."""
    from ray import cloudpickle

    dumps: Callable[[Any], bytes] = cloudpickle.dumps
    return dumps(value)


def _pack(outcome: ActivationOutcome, node: str) -> tuple[str, Any]:
    """The outcome as bytes, or which part of it cannot cross back to the driver."""
    try:
        return "ok", _dumps(outcome)
    except Exception as exc:  # the node handed back something that does not pickle
        for part, value in _parts(outcome):
            try:
                _dumps(value)
            except Exception:
                return "transfer", (part, type(value).__qualname__, exception_text(exc))
        return "transfer", ("its outcome", type(outcome).__qualname__, exception_text(exc))


def _parts(outcome: ActivationOutcome) -> list[tuple[str, Any]]:
    parts: list[tuple[str, Any]] = [("the result it returned", outcome.result)]
    parts += [(f"the state value {k!r}", v) for k, v in outcome.state_set.items()]
    for op in outcome.ops:
        if op[0] == "emit":
            parts.append((f"a token it emitted to {op[1]!r}", op[2]))
        elif op[0] == "effect" and op[4] is not None:
            parts.append((f"the value of its effect {op[1]!r}", op[4][1]))
        elif op[0] == "event":
            parts.append((f"the metadata of its event {op[1]!r}", op[2]))
    return parts


def _run_ticket(ticket: ActivationTicket) -> tuple[str, Any]:
    return _pack(ticket.run(), ticket.node)


class _AsyncHost:
    """A Ray actor running many async activations at once on its event loop."""

    async def run(self, ticket: ActivationTicket) -> tuple[str, Any]:
        return _pack(await ticket.arun(), ticket.node)


def _remotes(ray: Any) -> tuple[Any, Any]:
    with _lock:
        if "task" not in _remote:
            _remote["task"] = ray.remote(max_retries=0)(_run_ticket)
            _remote["host"] = ray.remote(max_restarts=0, max_task_retries=0)(_AsyncHost)
        return _remote["task"], _remote["host"]


def _lost_errors(ray: Any) -> tuple[type[BaseException], ...]:
    names = (
        "WorkerCrashedError",
        "RayActorError",
        "NodeDiedError",
        "ObjectLostError",
        "LocalRayletDiedError",
    )
    exc = ray.exceptions
    return tuple(getattr(exc, n) for n in names if isinstance(getattr(exc, n, None), type))


def _reachable(address: str) -> None:
    """Fail fast, naming the address, when nothing listens there (``ray.init`` waits long)."""
    if address in ("auto", "local") or "://" in address:
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), _CONNECT_TIMEOUT_S):
            return
    except (OSError, ValueError) as exc:
        raise ExecutorUnavailableError(
            f"cannot reach the Ray cluster at {address!r} ({exc}); start it with "
            f"`ray start --head --port {port or '<port>'}` or pass the address its head "
            "printed (host:port)"
        ) from exc


class RayExecutor(Executor):
    """Run each activation on a Ray cluster (``pip install "codon-sdk[ray]"``).

    ``address`` is the cluster's head (``"127.0.0.1:6380"``; None: the one this process
    is connected to, else a new local one); ``ray_init_kwargs`` go to ``ray.init``.
    Sync nodes run as Ray tasks, with the node's ``add_node(resources=...)``
    (``num_cpus``, ``num_gpus``, ``memory``, or any custom resource); async nodes
    without resources run on ``async_hosts`` async actors, many at once, so a
    ``max_concurrency`` fan-out of awaiting nodes needs no process per activation.
    ``retry_lost`` is the retry policy of nodes that have none, for lost workers
    (default: two more attempts, no delay); None leaves such nodes to fail.
    ``driver_resources`` is what a submitted run's driver task asks of the cluster
    (``{"driver": 1}`` to keep drivers on the nodes that offer a custom ``driver``
    resource; default none: ``num_cpus=0``, so it never holds a CPU its activations need).

    The ``ray`` connection is per process and stays open across runs: call
    :meth:`shutdown` to disconnect.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        async_hosts: int = 1,
        retry_lost: RetryPolicy | None = _DEFAULT,
        driver_resources: Mapping[str, float] | None = None,
        **ray_init_kwargs: Any,
    ) -> None:
        if type(async_hosts) is not int or async_hosts < 1:
            raise ValueError(f"async_hosts must be a positive integer, got {async_hosts!r}")
        self.driver_resources = {"num_cpus": 0.0, **(_driver_resources(driver_resources) or {})}
        self.address = address
        self.async_hosts = async_hosts
        self.ray_init_kwargs = ray_init_kwargs
        if retry_lost is _DEFAULT:
            retry_lost = RetryPolicy(max_attempts=3, initial_delay=0.0, retry_on=(WorkerLostError,))
        self.retry_lost = retry_lost
        self._hosts: list[Any] = []
        self._turn = itertools.count()
        self._ray: Any = None

    def __repr__(self) -> str:
        return f"RayExecutor(address={self.address!r})"

    # ------------------------------------------------------------------ connection

    def start(self) -> None:
        ray = _ray()
        if self.address is not None:
            _reachable(self.address)
        if not ray.is_initialized():
            kwargs = {"log_to_driver": False, **self.ray_init_kwargs}
            try:
                ray.init(address=self.address, **kwargs)
            except Exception as exc:
                raise ExecutorUnavailableError(
                    f"cannot connect to the Ray cluster at {self.address or '(a new local one)'!r}"
                    f": {exception_text(exc)}"
                ) from exc
        self._ray = ray

    def shutdown(self) -> None:
        """Disconnect this process from Ray (the cluster itself keeps running)."""
        self._hosts.clear()
        if self._ray is not None and self._ray.is_initialized():
            self._ray.shutdown()
        with _lock:
            _remote.clear()

    # ------------------------------------------------------------------ activations

    async def run(self, activation: ActivationCall) -> Any:
        ray = self._ray
        if ray is None:
            self.start()
            ray = self._ray
        task, host_class = _remotes(ray)
        ticket = activation.ticket()
        resources = activation.resources
        host = None
        try:
            if activation.is_async and not resources:
                host = self._host(host_class)
                ref = host.run.remote(ticket)
            else:
                ref = task.options(**_options(resources)).remote(ticket)
        except Exception as exc:  # the ticket (input, context, state, function) does not pickle
            raise _input_error(activation, ticket, exc) from exc
        try:
            kind, data = await asyncio.wrap_future(ref.future())
        except _lost_errors(ray) as exc:
            if host is not None:
                self._hosts.remove(host)
            raise WorkerLostError(
                f"node {activation.node!r} (token {activation.token_id}, attempt "
                f"{activation.attempt}): the Ray worker running it died before it answered "
                f"({type(exc).__name__}); nothing of that attempt was recorded"
            ) from exc
        except ray.exceptions.RayError as exc:
            raise ActivationTransferError(
                f"node {activation.node!r} could not run on the Ray cluster: "
                f"{exception_text(exc)}; the workers need the node's module importable "
                "(install it there, or pass runtime_env= to RayExecutor)"
            ) from exc
        if kind != "ok":
            part, type_name, text = data
            raise ActivationTransferError(
                f"node {activation.node!r}: {part} is a {type_name}, which cannot cross from "
                f"the Ray worker to the driver ({text}); return plain data (dicts, lists, "
                "strings, numbers) or a type that pickles"
            )
        outcome: ActivationOutcome = pickle.loads(data)  # from our own worker, never a store
        return activation.apply(outcome)

    # ------------------------------------------------------------------ whole runs

    def submit(
        self,
        workload: Any,
        payload: Any,
        *,
        store: str,
        run_id: str | None = None,
        **options: Any,
    ) -> Submission:
        """Run the whole run on the cluster (see ``CodonWorkload.submit``).

        The run's start is recorded in ``store`` here, before the driver task is sent: a
        driver that never starts, or dies before it takes the run over, leaves a stale
        run that ``codon worker`` resumes (``runtime/_handover.py``).
        """
        if not isinstance(store, str):
            raise TypeError(
                f"submit needs the store as a URL every Ray worker can open (a PostgreSQL "
                f"URL for a cluster), got {store!r}"
            )
        self.start()
        ray = self._ray
        try:
            _dumps(workload)  # refused before anything is recorded
        except Exception as exc:
            raise ActivationTransferError(
                f"the workload {getattr(workload, 'name', workload)!r} cannot be sent to the "
                f"Ray cluster: it does not pickle ({exception_text(exc)})"
            ) from exc
        submitted = start_submitted(workload, payload, store=store, run_id=run_id, **options)
        with _lock:
            driver = _remote.get("driver")
            if driver is None:
                driver = _remote["driver"] = ray.remote(max_retries=0)(drive_submitted)
        ref = driver.options(**_options(self.driver_resources)).remote(
            workload, submitted, carried_setups()
        )
        return Submission(submitted, ref, _lost_errors(ray))

    def _host(self, host_class: Any) -> Any:
        while len(self._hosts) < self.async_hosts:
            self._hosts.append(host_class.options(max_concurrency=10_000).remote())
        return self._hosts[next(self._turn) % len(self._hosts)]


def drive_submitted(
    workload: CodonWorkload, submitted: SubmittedRun, setups: tuple[ProcessSetup, ...] = ()
) -> str:
    """The body of a submitted run's Ray task: take the run over from its submitter and
    drive it here, activations on the cluster, with the submitter's plug-ins
    (``instrument_openai()``) set up here and carried on. ``"taken"`` when a
    ``codon worker`` took the run over first (the task started after the lease expired)."""
    align_setups(setups)
    try:
        run = submitted.take_over(workload, executor=RayExecutor())
    except RunConflictError as exc:
        if isinstance(exc, LeaseLostError):  # pragma: no cover - only raised while running
            raise
        return "taken"
    if isinstance(run, ExecutionReport):
        return run.status
    try:
        report = run_coroutine(run.execute)
    except WorkloadRuntimeError:
        return "failed"
    return report.status


def _driver_resources(given: Mapping[str, float] | None) -> dict[str, float] | None:
    try:
        return checked_resources("(submitted runs' driver)", given)
    except WorkloadRegistrationError as exc:
        what = str(exc).split(": ", 1)[-1]  # without the node name checked_resources gives
        raise ValueError(f"driver_resources: {what}") from None


def _options(resources: dict[str, float]) -> dict[str, Any]:
    """``add_node(resources=...)`` as Ray task options."""
    opts: dict[str, Any] = {}
    custom: dict[str, float] = {}
    for key, amount in resources.items():
        if key in ("num_cpus", "num_gpus", "memory"):
            opts[key] = amount
        else:
            custom[key] = amount
    if custom:
        opts["resources"] = custom
    return opts


def _input_error(activation: ActivationCall, ticket: ActivationTicket, exc: Exception) -> Exception:
    parts = (
        ("its input", ticket.payload),
        ("the node function", ticket.fn),
        ("the run's context", ticket.context),
        ("the shared state", ticket.state),
    )
    for part, value in parts:
        try:
            _dumps(value)
        except Exception:
            return ActivationTransferError(
                f"node {activation.node!r}: {part} is a {type(value).__qualname__}, which "
                f"cannot cross from the driver to a Ray worker ({exception_text(exc)}); pass "
                "plain data (dicts, lists, strings, numbers) or a type that pickles"
            )
    return ActivationTransferError(
        f"node {activation.node!r} cannot be sent to a Ray worker: {exception_text(exc)}"
    )
