"""Identity: canonical encoding, and the code identities of nodes, workflows and deployments.

What other layers and applications use:

- canonical encoding (:func:`canonical_bytes`, :func:`dumps`, :func:`prepare` /
  :func:`revive` for values that go into the ledger and come back from it, tagged values
  only for types registered with :func:`register_type`: nothing read back chooses a
  module to import or a callable to call);
- :class:`NodeSpec` (a node's identity), :func:`generate_logic_id` and the records it
  hashes (:class:`AgentClass`, :class:`Topology`, :class:`NodeEdge`, :class:`LogicRequest`,
  :class:`Deployment`), :func:`code_hash`;
- explanations of an id and of the difference between two (:func:`explain_node`,
  :func:`diff_parts`, :func:`recorded_identity`).

The modules behind this face are private.
"""

from codon_sdk.identity._canonical import (
    LITERAL_DEPTH,
    MAX_DEPTH,
    TAG,
    Redact,
    TaggedValue,
    canonical_bytes,
    decode,
    dumps,
    json_canonical,
    key_masker,
    prepare,
    revive,
    unencodable,
)
from codon_sdk.identity._codehash import (
    code_hash,
)
from codon_sdk.identity._explain import (
    IdentityDiff,
    IdentityExplanation,
    IdentityPart,
    NodeChange,
    NodeIdentity,
    changed_joins,
    diff_parts,
    explain_node,
    recorded_identity,
)
from codon_sdk.identity._logic import (
    AgentClass,
    Deployment,
    LogicRequest,
    NodeEdge,
    Topology,
    agent_class_id,
    generate_logic_id,
)
from codon_sdk.identity._nodespec import (
    NODESPEC_VERSION,
    NodeSpec,
)
from codon_sdk.identity._types import (
    allowed_type,
    recorded_error,
    register_type,
    remember_type,
    type_path,
)

__all__ = [
    "AgentClass",
    "Deployment",
    "IdentityDiff",
    "IdentityExplanation",
    "IdentityPart",
    "LITERAL_DEPTH",
    "LogicRequest",
    "MAX_DEPTH",
    "NODESPEC_VERSION",
    "NodeChange",
    "NodeEdge",
    "NodeIdentity",
    "NodeSpec",
    "Redact",
    "TAG",
    "TaggedValue",
    "Topology",
    "agent_class_id",
    "allowed_type",
    "canonical_bytes",
    "changed_joins",
    "code_hash",
    "decode",
    "diff_parts",
    "dumps",
    "explain_node",
    "generate_logic_id",
    "json_canonical",
    "key_masker",
    "prepare",
    "recorded_error",
    "recorded_identity",
    "register_type",
    "remember_type",
    "revive",
    "type_path",
    "unencodable",
]
