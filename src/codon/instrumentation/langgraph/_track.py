"""``track_node``: a NodeSpec and a span for a plain function."""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from codon.instrumentation.langgraph._context import current_activation
from codon.instrumentation.langgraph._spans import node_attributes
from codon_sdk.identity import NodeSpec
from codon_sdk.runtime import current_redact, current_runtime
from codon_sdk.telemetry import TRACER_NAME, record_error, run_attributes
from codon_sdk.telemetry import CodonBaseAttributes as Base
from codon_sdk.telemetry import GenAIAttributes as G

__all__ = ["track_node"]

F = TypeVar("F", bound=Callable[..., Any])


def track_node(
    name: str,
    role: str,
    *,
    org_namespace: str | None = None,
    model_name: str | None = None,
    model_version: str | None = None,
) -> Callable[[F], F]:
    """Decorator giving a function a :class:`~codon_sdk.NodeSpec` and a span per call.

    ``fn.nodespec`` is the function's NodeSpec (its id changes when its code does).
    Each call runs in a ``codon.node.<name>`` span carrying the node spec
    attributes (and the run's identity when called inside a Codon activation);
    an exception marks the span as an error and propagates unchanged. Used as a
    LangGraph node of an adapted graph, the function keeps its own code identity,
    its role and model become the node's defaults (``node_overrides`` win) and the
    adapter's node span is the only span. Works on ``async def`` functions too::

        @track_node("summarise", role="writer", model_name="gpt-4o-mini")
        def summarise(state: State) -> dict: ...
    """

    def decorate(fn: F) -> F:
        spec = NodeSpec(
            name,
            role,
            fn,
            org_namespace=org_namespace,
            model_name=model_name,
            model_version=model_version,
        )
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with _node_span(spec):
                    return await fn(*args, **kwargs)

            wrapper: Callable[..., Any] = async_wrapper
        else:

            @functools.wraps(fn)
            def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                with _node_span(spec):
                    return fn(*args, **kwargs)

            wrapper = sync_wrapper
        setattr(wrapper, "nodespec", spec)  # noqa: B010 - a function attribute
        return cast(F, wrapper)

    return decorate


@contextlib.contextmanager
def _node_span(spec: NodeSpec) -> Iterator[None]:
    activation = current_activation()
    if activation is not None and activation.node == spec.name and activation.span is not None:
        yield  # the adapter's span of this very node already covers the call
        return
    from codon_sdk import __version__

    attrs: dict[str, Any] = {}
    runtime = current_runtime()
    if runtime is not None:
        attrs.update(run_attributes(runtime.context))
    attrs.update(node_attributes(spec))
    attrs[Base.ORG_NAMESPACE.value] = spec.org_namespace
    tracer = trace.get_tracer(TRACER_NAME, __version__)
    with tracer.start_as_current_span(
        f"codon.node.{spec.name}",
        kind=SpanKind.INTERNAL,
        attributes=attrs,
        record_exception=False,  # raw: recorded below through the redaction policy
        set_status_on_exception=False,
    ) as span:
        try:
            yield
        except Exception as exc:
            span.set_attribute(G.ERROR_TYPE.value, type(exc).__qualname__)
            record_error(span, exc, current_redact())
            raise
