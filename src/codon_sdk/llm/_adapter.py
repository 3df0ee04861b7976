"""What a provider tells the LLM-call layer: the adapter protocol and the facts it returns.

The layer (``_calls``, ``_streams``, ``_patching``) does everything a provider has
in common: it reserves the effect slot, serves a recorded answer on resume and
replay or calls the client and records what came back, wraps streams so their
span ends exactly once, prices usage and keeps the patches. A provider says only
what is its own, through a :class:`ProviderAdapter`:

- who it is (``name`` for effect names and ledger keys, ``label`` for messages),
  and which provider a client is (``gen_ai.provider.name``) and which secrets it
  holds (scrubbed from every span, ledger entry and log);
- how to describe a request (:class:`RequestInfo`) and a response or the chunks
  of a stream (:class:`ResponseInfo`), including token usage;
- how to tell a stream from a response, and how responses, streams and errors
  are recorded and rebuilt (a :class:`RecordCodec`);
- which client methods to wrap (:class:`Target`, given to ``_patching.Patcher``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from opentelemetry.util.types import AttributeValue

from codon_sdk.telemetry import TokenUsage

__all__ = [
    "ClientAdapter",
    "Describer",
    "ProviderAdapter",
    "RecordCodec",
    "RequestInfo",
    "ResponseInfo",
    "Target",
]


@dataclass(slots=True, kw_only=True)
class RequestInfo:
    """One request: its operation, model, recorded parameters and span attributes."""

    operation: str  # the ledger's llm.operation: "chat" | "responses" | "embeddings" | ...
    model: str | None
    stream: bool
    params: dict[str, Any]
    attributes: dict[str, AttributeValue]

    @property
    def span_operation(self) -> str:
        """``gen_ai.operation.name``: ``embeddings``, else ``chat``."""
        return "embeddings" if self.operation == "embeddings" else "chat"


@dataclass(slots=True, kw_only=True)
class ResponseInfo:
    """What a response (or a stream's chunks) said about the call."""

    model: str | None = None
    id: str | None = None
    finish_reasons: tuple[str, ...] = ()
    usage: TokenUsage | None = None
    attributes: dict[str, AttributeValue] = field(default_factory=dict)


class RecordCodec(Protocol):
    """How a provider's responses, streams and errors go into the ledger and come back."""

    def encode_object(self, obj: Any, *, headers: Mapping[str, str] | None = None) -> Any: ...

    def decode_object(self, record: Any) -> Any: ...

    def encode_stream(
        self, chunks: list[Any], outcome: str, error: Mapping[str, Any] | None
    ) -> Any: ...

    def decode_stream(self, record: Any) -> tuple[list[Any], str, Mapping[str, Any] | None]: ...

    def encode_error(self, exc: BaseException, secrets: tuple[str, ...]) -> dict[str, Any]: ...

    def rebuild_error(self, info: Mapping[str, Any]) -> BaseException: ...

    def recorded_headers(self, record: Any) -> dict[str, str]: ...

    def safe_headers(self, headers: Any) -> dict[str, str]: ...

    def scrub_exception(self, exc: BaseException, secrets: tuple[str, ...]) -> None: ...


class ProviderAdapter(Protocol):
    """One LLM provider, as the LLM-call layer needs it (see the module docstring)."""

    @property
    def name(self) -> str:
        """Short name: effects are ``<name>.<operation>[.stream]``, errors ``<name>_error``."""
        ...

    @property
    def label(self) -> str:
        """The provider as messages and logs name it (``"OpenAI"``)."""
        ...

    @property
    def codec(self) -> RecordCodec: ...

    def provider(self, client: Any) -> str:
        """``gen_ai.provider.name`` for calls made through ``client``."""
        ...

    def secrets(self, client: Any) -> tuple[str, ...]:
        """The credentials ``client`` holds, scrubbed from everything recorded."""
        ...

    def is_stream(self, value: Any) -> bool:
        """Whether the client returned a stream (recorded when it ends)."""
        ...

    def describe_request(
        self, operation: str, kwargs: Mapping[str, Any], secrets: tuple[str, ...], *, capture: bool
    ) -> RequestInfo: ...

    def describe_response(
        self, operation: str, value: Any, secrets: tuple[str, ...], *, capture: bool
    ) -> ResponseInfo: ...

    def describe_chunks(
        self, operation: str, chunks: list[Any], secrets: tuple[str, ...], *, capture: bool
    ) -> ResponseInfo: ...


class Describer(Protocol):
    """What a provider's describing module offers (``describe_request`` and its twins)."""

    def describe_request(
        self, operation: str, kwargs: Mapping[str, Any], secrets: tuple[str, ...], *, capture: bool
    ) -> RequestInfo: ...

    def describe_response(
        self, operation: str, value: Any, secrets: tuple[str, ...], *, capture: bool
    ) -> ResponseInfo: ...

    def describe_chunks(
        self, operation: str, chunks: list[Any], secrets: tuple[str, ...], *, capture: bool
    ) -> ResponseInfo: ...


class ClientAdapter:
    """The parts of a :class:`ProviderAdapter` every client library shares, written once: a
    subclass names the client attributes that hold credentials, the stream classes and
    its :class:`Describer`, and sets ``name``, ``label``, ``codec`` and ``provider``."""

    credential_attributes: ClassVar[tuple[str, ...]] = ("api_key",)
    stream_types: ClassVar[tuple[type, ...]] = ()
    describer: ClassVar[Describer]

    def secrets(self, client: Any) -> tuple[str, ...]:
        found = []
        for name in self.credential_attributes:
            value = getattr(client, name, None)
            if isinstance(value, str) and len(value) >= 4:
                found.append(value)
        return tuple(found)

    def is_stream(self, value: Any) -> bool:
        return isinstance(value, self.stream_types)

    def describe_request(
        self, operation: str, kwargs: Mapping[str, Any], secrets: tuple[str, ...], *, capture: bool
    ) -> RequestInfo:
        return self.describer.describe_request(operation, kwargs, secrets, capture=capture)

    def describe_response(
        self, operation: str, value: Any, secrets: tuple[str, ...], *, capture: bool
    ) -> ResponseInfo:
        return self.describer.describe_response(operation, value, secrets, capture=capture)

    def describe_chunks(
        self, operation: str, chunks: list[Any], secrets: tuple[str, ...], *, capture: bool
    ) -> ResponseInfo:
        return self.describer.describe_chunks(operation, chunks, secrets, capture=capture)


Driver = Callable[..., Any]
"""``driver(patch, resource, args, kwargs)``: what a patched method does."""


@dataclass(frozen=True, slots=True)
class Target:
    """One client method to wrap: ``<module>.<cls>.<method>``, reached from a client by ``path``.

    ``driver`` is what the wrapper calls (None: the layer's recorded-call driver,
    sync or async as ``is_async`` says); a helper such as a ``.stream()`` method
    that builds on the wrapped ``create`` gives its own.
    """

    module: str
    cls: str
    path: tuple[str, ...]  # from the client to the resource
    operation: str
    is_async: bool
    method: str = "create"
    driver: Driver | None = None
