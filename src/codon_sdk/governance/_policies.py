"""Policies: rules that see each act of a run before it happens and decide on it.

A :class:`Policy` is asked before each node activation (:meth:`Policy.check_activation`),
each recorded effect (:meth:`Policy.check_effect`: ``runtime.effect`` calls, ``now`` and
``random`` included) and each instrumented LLM call (:meth:`Policy.check_llm_call`,
which sees the provider, the model, the request and an estimate of its tokens and cost)
before it is made. Each returns a :class:`Decision`: :meth:`Decision.allow`,
:meth:`Decision.deny` with a reason, or :meth:`Decision.require_approval` with a question.
Methods a policy does not override allow. A policy that raises is a denial, with the
exception named in the reason: an error never lets an act through.

Built-ins: :class:`ModelAllowlist`, :class:`ToolAllowlist`, :class:`MaxTokensPerCall` and
:class:`NoSensitiveData` (the redaction detectors, asked whether a request to a model holds
secrets or personal data).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

from codon_sdk._text import exception_text
from codon_sdk.errors import ConfigurationError
from codon_sdk.identity import code_hash
from codon_sdk.redaction import ALL_DETECTORS, MARKER_PATTERN, Redactor

__all__ = [
    "ALLOW",
    "Activation",
    "Decision",
    "Effect",
    "LLMRequest",
    "MaxTokensPerCall",
    "ModelAllowlist",
    "NoSensitiveData",
    "Policy",
    "ToolAllowlist",
    "Subjects",
    "decide",
    "estimate_tokens",
    "output_limit",
    "policy_identity",
    "request_texts",
]

DECISION_KINDS: Final = ("allow", "deny", "require_approval")


@dataclass(frozen=True, slots=True)
class Decision:
    """What a policy decided: ``kind`` is ``allow``, ``deny`` or ``require_approval``."""

    kind: str
    reason: str = ""
    question: str = ""

    @classmethod
    def allow(cls) -> Decision:
        return ALLOW

    @classmethod
    def deny(cls, reason: str) -> Decision:
        """Refuse the act; the node gets ``PolicyDeniedError`` naming ``reason``."""
        if not isinstance(reason, str) or not reason.strip():
            raise ConfigurationError(f"a denial needs a non-empty reason, got {reason!r}")
        return cls("deny", reason=reason)

    @classmethod
    def require_approval(cls, question: str) -> Decision:
        """Pause the run (an interrupt) until a human answers ``question``: resume with
        ``input=True`` (or ``{"approved": True}``) to let the act happen, anything else
        to deny it."""
        if not isinstance(question, str) or not question.strip():
            raise ConfigurationError(f"an approval needs a non-empty question, got {question!r}")
        return cls("require_approval", question=question)

    @property
    def allowed(self) -> bool:
        return self.kind == "allow"


ALLOW: Final = Decision("allow")


@dataclass(frozen=True, slots=True, kw_only=True)
class Activation:
    """A node activation about to run."""

    node: str
    token_id: str
    payload: Any
    run_id: str
    context: Mapping[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class Effect:
    """A recorded effect about to be made (``runtime.effect(name, fn, ...)``)."""

    node: str
    token_id: str
    name: str
    request: Any
    run_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LLMRequest:
    """An LLM call about to be sent: provider, model, the request's parameters (messages,
    ``max_tokens``...) and estimates (input tokens from the text, output tokens from the
    request's output limit, 0 when it sets none; cost at the price table's rate, None when
    the model has no price)."""

    node: str
    token_id: str
    name: str
    provider: str | None
    model: str | None
    request: Mapping[str, Any]
    run_id: str
    estimated_input_tokens: int
    estimated_output_tokens: int
    estimated_cost_usd: float | None

    @property
    def estimated_tokens(self) -> int:
        return self.estimated_input_tokens + self.estimated_output_tokens


class Policy:
    """Base of policies: override the checks you need; the others allow.

    ``name`` (default: the class name) is what the ledger and errors call the policy;
    its code identity (``policy_identity``) is the hash of the checks' code.
    """

    name: str = ""

    def check_activation(self, activation: Activation) -> Decision:
        return ALLOW

    def check_effect(self, effect: Effect) -> Decision:
        return ALLOW

    def check_llm_call(self, call: LLMRequest) -> Decision:
        return ALLOW

    @property
    def label(self) -> str:
        return self.name or type(self).__name__


_CHECKS: Final = ("check_activation", "check_effect", "check_llm_call")
_identities: dict[type, str] = {}


def policy_identity(policy: Policy) -> str:
    """Hex SHA-256 over the code of the policy's three checks (the identity package's code
    hash of each): a changed rule is a new identity; moving or reformatting it is not."""
    kind = type(policy)
    found = _identities.get(kind)
    if found is None:
        import hashlib

        digest = hashlib.sha256()
        for check in _CHECKS:
            digest.update(code_hash(getattr(kind, check)).encode("ascii"))
        found = _identities[kind] = digest.hexdigest()
    return found


def decide(policy: Policy, check: str, subject: Any) -> Decision:
    """Ask ``policy``; a policy that raises or answers something else than a Decision denies."""
    try:
        decision = getattr(policy, check)(subject)
    except Exception as exc:
        return Decision("deny", reason=f"the policy raised {exception_text(exc)}")
    if not isinstance(decision, Decision) or decision.kind not in DECISION_KINDS:
        return Decision(
            "deny", reason=f"the policy returned {decision!r}, not a Decision (deny by default)"
        )
    return decision


# --------------------------------------------------------------------------- built-ins


def _names(kind: str, values: Iterable[str] | str) -> frozenset[str]:
    if isinstance(values, str):
        values = (values,)
    out = frozenset(values)
    if not out or not all(isinstance(v, str) and v for v in out):
        raise ConfigurationError(
            f"{kind} must be a non-empty collection of non-empty strings, got {values!r}"
        )
    return out


class ModelAllowlist(Policy):
    """Only these models may be called (exact names, as the request gives them)."""

    models: frozenset[str]
    name = "model_allowlist"

    def __init__(self, models: Iterable[str] | str) -> None:
        self.models = _names("ModelAllowlist models", models)

    def check_llm_call(self, call: LLMRequest) -> Decision:
        if call.model in self.models:
            return ALLOW
        allowed = ", ".join(sorted(self.models))
        return Decision.deny(f"model {call.model!r} is not in the allowlist ({allowed})")


_RECORDED_BUILTINS: Final = frozenset({"now", "random"})


class ToolAllowlist(Policy):
    """Only these recorded effects (tools) may be made, by effect name (``runtime.now()``
    and ``runtime.random()`` always may). LLM calls are governed by
    :class:`ModelAllowlist`, not by this list."""

    tools: frozenset[str]
    name = "tool_allowlist"

    def __init__(self, tools: Iterable[str] | str) -> None:
        self.tools = _names("ToolAllowlist tools", tools)

    def check_effect(self, effect: Effect) -> Decision:
        if effect.name in self.tools or effect.name in _RECORDED_BUILTINS:
            return ALLOW
        allowed = ", ".join(sorted(self.tools))
        return Decision.deny(f"tool {effect.name!r} is not in the allowlist ({allowed})")


class MaxTokensPerCall(Policy):
    """No LLM call may ask for more than ``limit`` tokens (estimated input plus requested
    output); a call that sets no output limit is denied when ``require_output_limit``."""

    limit: int
    require_output_limit: bool
    name = "max_tokens_per_call"

    def __init__(self, limit: int, *, require_output_limit: bool = False) -> None:
        if type(limit) is not int or limit < 1:
            raise ConfigurationError(
                f"MaxTokensPerCall limit must be a positive number of tokens, got {limit!r}"
            )
        self.limit = limit
        self.require_output_limit = bool(require_output_limit)

    def check_llm_call(self, call: LLMRequest) -> Decision:
        if self.require_output_limit and output_limit(call.request) is None:
            return Decision.deny("the call sets no output limit (max_tokens)")
        if call.estimated_tokens > self.limit:
            return Decision.deny(
                f"the call asks for about {call.estimated_tokens} tokens "
                f"({call.estimated_input_tokens} in, {call.estimated_output_tokens} out), "
                f"over the limit of {self.limit} per call"
            )
        return ALLOW


_SENSITIVE_KEY: Final = b"codon-governance-detector"  # markers are only counted, never kept


class NoSensitiveData(Policy):
    """Deny sending a request to a model when the redaction detectors find secrets or
    personal data in its text (all detectors by default, e-mail and card numbers
    included; ``detectors=`` narrows them, ``redactor=`` brings your own patterns)."""

    redactor: Redactor
    name = "no_sensitive_data"

    def __init__(
        self, *, detectors: Iterable[str] = ALL_DETECTORS, redactor: Redactor | None = None
    ) -> None:
        if redactor is None:
            try:
                redactor = Redactor(detectors=tuple(detectors), key=_SENSITIVE_KEY)
            except ValueError as exc:
                raise ConfigurationError(f"NoSensitiveData: {exc}") from exc
        self.redactor = redactor

    def check_llm_call(self, call: LLMRequest) -> Decision:
        kinds: set[str] = set()
        for text in request_texts(call.request):
            redacted = self.redactor.redact_text(text)
            if redacted is not text and redacted != text:
                kinds.update(m.group("kind") for m in MARKER_PATTERN.finditer(redacted))
        if not kinds:
            return ALLOW
        return Decision.deny(
            f"the request to {call.model!r} holds {', '.join(sorted(kinds))} "
            "(found by the redaction detectors); it was not sent"
        )


# --------------------------------------------------------------------------- requests

_TEXT_KEYS: Final = ("messages", "input", "prompt", "instructions", "system")
_OUTPUT_KEYS: Final = ("max_tokens", "max_completion_tokens", "max_output_tokens")
_DEPTH: Final = 12


def request_texts(request: Mapping[str, Any]) -> Iterator[str]:
    """Every string of an LLM request's content (messages, input, prompt, instructions)."""
    for key in _TEXT_KEYS:
        if key in request:
            yield from _strings(request[key], 0)


def _strings(value: Any, depth: int) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif depth < _DEPTH and isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item, depth + 1)
    elif depth < _DEPTH and isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item, depth + 1)


def output_limit(request: Mapping[str, Any]) -> int | None:
    """The output token limit the request sets, if any."""
    for key in _OUTPUT_KEYS:
        value = request.get(key)
        if type(value) is int and value >= 0:
            return value
    return None


def estimate_tokens(request: Mapping[str, Any]) -> tuple[int, int]:
    """(input, output) token estimates: four characters a token, the output limit or 0."""
    chars = sum(len(text) for text in request_texts(request))
    return (chars + 3) // 4, output_limit(request) or 0


@dataclass(slots=True)
class Subjects:
    """Policies by scope: the workload's and each node's (see ``Governance.add_policy``)."""

    everywhere: list[Policy] = field(default_factory=list)
    per_node: dict[str, list[Policy]] = field(default_factory=dict)

    def of(self, node: str) -> list[Policy]:
        return self.everywhere + self.per_node.get(node, [])

    kinds: ClassVar[tuple[str, ...]] = _CHECKS
