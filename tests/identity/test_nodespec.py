"""NodeSpec: the immutable identity record of a node function (API.md "Identity records")."""

from __future__ import annotations

import copy
import logging
import pickle
import re
from typing import Any

import pytest

from codon_sdk import NodeSpec, NodeSpecValidationError
from codon_sdk._warn import forget_warnings

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def f(a: int, b: str) -> float:
    return float(a) + len(b)


def node_fn(message: dict[str, Any], *, runtime: Any, context: Any) -> str:
    return str(message)


def other_fn(message: dict[str, Any], *, runtime: Any, context: Any) -> str:
    return repr(message)


def returns_int(message: dict[str, Any], *, runtime: Any, context: Any) -> int:
    return len(message)


def returns_str(message: dict[str, Any], *, runtime: Any, context: Any) -> str:
    return len(message)  # type: ignore[return-value]


def test_nodespec_has_the_documented_fields() -> None:
    """A NodeSpec carries id, spec_version, org_namespace, name, role, signature, schemas, model."""
    spec = NodeSpec(
        "summarise",
        "llm",
        node_fn,
        org_namespace="acme",
        model_name="gpt-4o",
        model_version="2024-05-13",
    )
    assert HEX64.match(spec.id)
    assert isinstance(spec.spec_version, str)
    assert spec.spec_version
    assert spec.org_namespace == "acme"
    assert spec.name == "summarise"
    assert spec.role == "llm"
    assert spec.callable_signature.startswith("node_fn(")
    assert spec.input_schema is not None
    assert spec.output_schema is not None
    assert spec.model_name == "gpt-4o"
    assert spec.model_version == "2024-05-13"


def test_callable_signature_matches_the_documented_example() -> None:
    """``f(a: int, b: str) -> float`` is rendered exactly as API.md shows it."""
    spec = NodeSpec("f", "math", f, org_namespace="acme")
    assert spec.callable_signature == "f(a: int, b: str) -> float"


def test_model_fields_default_to_none() -> None:
    """Without model_name/model_version both fields are None."""
    spec = NodeSpec("n", "r", node_fn, org_namespace="acme")
    assert spec.model_name is None
    assert spec.model_version is None


@pytest.mark.parametrize(
    "field", ["id", "name", "role", "org_namespace", "callable_signature", "model_name"]
)
def test_nodespec_is_immutable(field: str) -> None:
    """Assigning or deleting any field raises and leaves the record unchanged."""
    spec = NodeSpec("n", "r", node_fn, org_namespace="acme")
    before = getattr(spec, field)
    with pytest.raises((AttributeError, TypeError, ValueError)):
        setattr(spec, field, "tampered")
    with pytest.raises((AttributeError, TypeError, ValueError)):
        delattr(spec, field)
    assert getattr(spec, field) == before


def test_id_is_deterministic_for_the_same_inputs() -> None:
    """Two NodeSpecs of the same function and fields have the same id and compare equal."""
    one = NodeSpec("n", "r", node_fn, org_namespace="acme", model_name="m")
    two = NodeSpec("n", "r", node_fn, org_namespace="acme", model_name="m")
    assert one.id == two.id
    assert one == two
    assert hash(one) == hash(two)


@pytest.mark.parametrize(
    "changes",
    [
        {"name": "other"},
        {"role": "other"},
        {"org_namespace": "other-org"},
        {"model_name": "gpt-5"},
        {"model_version": "v2"},
        {"callable": other_fn},
    ],
    ids=lambda c: next(iter(c)),
)
def test_every_identity_field_changes_the_id(changes: dict[str, Any]) -> None:
    """Name, role, namespace, model name/version and the function itself all feed the id."""
    base: dict[str, Any] = {
        "name": "n",
        "role": "r",
        "callable": node_fn,
        "org_namespace": "acme",
        "model_name": "gpt-4o",
        "model_version": "v1",
    }
    assert NodeSpec(**base).id != NodeSpec(**{**base, **changes}).id


def test_return_annotation_feeds_the_output_schema_and_the_id() -> None:
    """Functions differing only in their return annotation get different schemas and ids."""
    as_int = NodeSpec("n", "r", returns_int, org_namespace="acme")
    as_str = NodeSpec("n", "r", returns_str, org_namespace="acme")
    assert as_int.output_schema != as_str.output_schema
    assert as_int.id != as_str.id


def test_input_schema_leaves_out_runtime_and_context() -> None:
    """The injected ``runtime`` and ``context`` keywords are not part of the input schema."""
    spec = NodeSpec("n", "r", node_fn, org_namespace="acme")
    assert "message" in str(spec.input_schema)
    assert "runtime" not in str(spec.input_schema)
    assert "context" not in str(spec.input_schema)


def test_org_namespace_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an explicit namespace, ORG_NAMESPACE supplies it."""
    monkeypatch.setenv("ORG_NAMESPACE", "env-org")
    assert NodeSpec("n", "r", node_fn).org_namespace == "env-org"


def test_explicit_namespace_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """An explicit org_namespace beats ORG_NAMESPACE."""
    monkeypatch.setenv("ORG_NAMESPACE", "env-org")
    assert NodeSpec("n", "r", node_fn, org_namespace="mine").org_namespace == "mine"


def test_missing_namespace_falls_back_to_unknown_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """No namespace anywhere: ``"unknown"`` and a logged warning (not an exception), said
    once per process however many nodes are built."""
    monkeypatch.delenv("ORG_NAMESPACE", raising=False)
    forget_warnings()
    with caplog.at_level(logging.WARNING):
        spec = NodeSpec("n", "r", node_fn)
        for i in range(4):
            NodeSpec(f"n{i}", "r", node_fn)
    assert spec.org_namespace == "unknown"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "ORG_NAMESPACE" in warnings[0].getMessage()


def test_an_interrupt_in_a_run_without_a_store_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from codon_sdk import CodonWorkload

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        return runtime.interrupt("approve?")

    wl = CodonWorkload(name="no-store", version="1", org_namespace="tests")
    wl.add_node(ask, "ask", "human")
    forget_warnings()
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            assert wl.execute("x", deployment_id="dev").status == "interrupted"
        assert wl.execute("x", deployment_id="dev", store="memory://").status == "interrupted"
    said = [r.getMessage() for r in caplog.records if "no durable store" in r.getMessage()]
    assert len(said) == 1, said
    assert "cannot be resumed" in said[0]


@pytest.mark.parametrize("name", ["", "   ", None, 42])
def test_invalid_name_is_a_validation_error(name: Any) -> None:
    """An empty or non-string name raises NodeSpecValidationError quoting the value."""
    with pytest.raises(NodeSpecValidationError) as info:
        NodeSpec(name, "r", node_fn, org_namespace="acme")
    assert repr(name) in str(info.value)


def test_invalid_role_is_a_validation_error() -> None:
    """An empty role raises NodeSpecValidationError."""
    with pytest.raises(NodeSpecValidationError):
        NodeSpec("n", "", node_fn, org_namespace="acme")


def test_non_callable_is_a_validation_error() -> None:
    """A non-callable raises NodeSpecValidationError naming its type."""
    with pytest.raises(NodeSpecValidationError, match="int"):
        NodeSpec("n", "r", 42, org_namespace="acme")  # type: ignore[arg-type]


def test_nodespec_validation_error_is_a_value_error() -> None:
    """NodeSpecValidationError can be caught as ValueError."""
    assert issubclass(NodeSpecValidationError, ValueError)


def test_nodespec_survives_copy_and_deepcopy() -> None:
    """copy.copy and copy.deepcopy of a NodeSpec give an equal record with the same id."""
    spec = NodeSpec("n", "r", node_fn, org_namespace="acme")
    assert copy.copy(spec).id == spec.id
    assert copy.deepcopy(spec).id == spec.id


def test_nodespec_survives_pickle() -> None:
    """A NodeSpec pickles (multiprocessing, caches) and comes back equal."""
    spec = NodeSpec("n", "r", node_fn, org_namespace="acme")
    restored = pickle.loads(pickle.dumps(spec))
    assert restored == spec
    assert restored.callable_signature == spec.callable_signature


def test_lambda_and_callable_objects_get_stable_ids() -> None:
    """Lambdas and callable instances are accepted and get the same id twice."""

    class Upper:
        def __call__(self, message: str, *, runtime: Any, context: Any) -> str:
            return message.upper()

    def make() -> list[NodeSpec]:
        return [
            NodeSpec("l", "r", lambda m, *, runtime, context: m, org_namespace="acme"),
            NodeSpec("c", "r", Upper(), org_namespace="acme"),
        ]

    first, second = make(), make()
    assert [s.id for s in first] == [s.id for s in second]
    assert all(HEX64.match(s.id) for s in first)


def test_nodespec_carries_a_code_hash_of_the_function() -> None:
    """code_hash is a hex SHA-256 of what the function does: equal for the same function,
    different for another body, and part of the id."""
    one = NodeSpec("n", "r", node_fn, org_namespace="acme")
    again = NodeSpec("other-name", "other-role", node_fn, org_namespace="acme")
    different = NodeSpec("n", "r", other_fn, org_namespace="acme")
    assert HEX64.match(one.code_hash)
    assert one.code_hash == again.code_hash
    assert one.code_hash != different.code_hash
