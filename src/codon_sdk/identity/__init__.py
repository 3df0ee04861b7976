"""Identity: canonical encoding, code identities of nodes, workflows and deployments.

What other layers and applications may use from here; the modules behind it are private.
"""

from codon_sdk.identity._canonical import TaggedValue
from codon_sdk.identity._explain import (
    IdentityDiff,
    IdentityExplanation,
    IdentityPart,
    NodeChange,
    NodeIdentity,
    diff_parts,
    explain_node,
    recorded_identity,
)
from codon_sdk.identity._types import register_type

__all__ = [
    "IdentityDiff",
    "IdentityExplanation",
    "IdentityPart",
    "NodeChange",
    "NodeIdentity",
    "TaggedValue",
    "diff_parts",
    "explain_node",
    "recorded_identity",
    "register_type",
]
