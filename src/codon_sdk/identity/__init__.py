"""Identity: canonical encoding, code identities of nodes, workflows and deployments.

What other layers and applications may use from here; the modules behind it are private.
"""

from codon_sdk.identity._canonical import TaggedValue
from codon_sdk.identity._types import register_type

__all__ = ["TaggedValue", "register_type"]
