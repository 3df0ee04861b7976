"""What a redaction policy does with each kind it finds: mask it for good, or seal it.

``mask`` replaces the secret by ``[REDACTED:<kind>:<digest>]``: it is gone, from the
ledger as from everything else. ``seal`` keeps it in the ledger encrypted (see
``_sealing.py``), so resume, replay and fork can give code the real value back.

The default: with a sealing key configured (``sealing_keys=``, ``CODON_SEALING_KEY``
or ``CODON_SEALING_KEY_FILE``) every credential detector seals; personal data
(``email``, ``card_number``), user patterns and callables mask. Without a key
everything masks. ``actions=`` overrides it per kind; naming an unknown kind or
action, or asking to seal with no key configured, is refused when the policy is built.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final

from codon_sdk.errors import ConfigurationError
from codon_sdk.redaction._sealing import Sealer
from codon_sdk.redaction._sealing_keys import (
    SEALING_KEY_ENV_VAR,
    SEALING_KEY_FILE_ENV_VAR,
    SealingKeys,
    sealing_keys_from_environment,
)

__all__ = ["ACTIONS", "PERSONAL_DATA_KINDS", "resolve_actions"]

ACTIONS: Final = ("mask", "seal")
"""What a policy can do with a kind it finds."""
PERSONAL_DATA_KINDS: Final = frozenset({"email", "card_number"})
"""Built-in kinds that are personal data, not credentials: masked unless ``actions`` says."""


def resolve_actions(
    actions: Mapping[str, str] | None,
    sealing_keys: SealingKeys | None,
    builtin_kinds: Iterable[str],
    pattern_kinds: Iterable[str],
) -> tuple[Sealer | None, Mapping[str, str]]:
    """The sealer (None without keys) and the action of every known kind."""
    if sealing_keys is not None and not isinstance(sealing_keys, SealingKeys):
        raise ConfigurationError(
            f"sealing_keys must have source, current() and get(key_id) (a SealingKeys), "
            f"not {type(sealing_keys).__name__}"
        )
    keys = sealing_keys if sealing_keys is not None else sealing_keys_from_environment()
    sealer = None if keys is None else Sealer(keys)
    builtin, patterns = tuple(builtin_kinds), tuple(pattern_kinds)
    default = "seal" if sealer is not None else "mask"
    resolved = {k: ("mask" if k in PERSONAL_DATA_KINDS else default) for k in builtin}
    resolved.update(dict.fromkeys(patterns, "mask"))
    for kind, action in (actions or {}).items():
        if kind not in resolved:
            raise ConfigurationError(
                f"actions names unknown redaction kind {kind!r}; known kinds: "
                f"{', '.join(resolved)} (a kind of patterns= is known once you add it)"
            )
        if action not in ACTIONS:
            raise ConfigurationError(
                f"actions[{kind!r}] is {action!r}; choose 'mask' (dropped for good) or 'seal' "
                "(kept encrypted under a sealing key)"
            )
        if action == "seal" and sealer is None:
            raise ConfigurationError(
                f"actions asks to seal {kind!r} but no sealing key is configured: set "
                f"{SEALING_KEY_ENV_VAR} or {SEALING_KEY_FILE_ENV_VAR}, or pass sealing_keys="
            )
        resolved[kind] = action
    return sealer, MappingProxyType(resolved)
