"""Redaction: one policy that masks secrets before they are hashed into the ledger or reach a span.

A :class:`Redactor` replaces each secret it finds with a marker naming the kind and
carrying a keyed hash, ``[REDACTED:api_key:3f9a1c2b7d4e]``: under one key the same
secret gets the same marker in ledger, spans and logs, so records stay correlatable
while the secret stays unreadable.

The detectors (the name is the marker's kind; on or off by default):

- ``private_key`` (on): PEM private key blocks, to the END line or the end of a cut-off
  key.
- ``api_key`` (on): ``sk-``/``sk-proj-``/``sk-ant-`` (OpenAI, Anthropic), ``sk_live_``/
  ``rk_live_``/``_test_`` (Stripe), ``AKIA``/``ASIA`` (AWS), ``ghp_``/
  ``gho_``/``ghu_``/``ghs_``/``ghr_``/``github_pat_`` (GitHub), ``AIza`` (Google),
  ``xox[abeprs]-`` (Slack); and high-entropy values (16+ characters, two of
  lower/upper/digit, >= 3 bits per character) assigned to credential names:
  ``api_key=``, ``"apiKey": "..."``, ``X-API-Key:``, ``client_secret``,
  ``access_token``, ``secret_key``...; AWS secret access keys within 300 characters of
  an access key id; Azure ``AccountKey=``/``SharedAccessKey=``, SAS ``sig=``, client
  secrets (``...Q~...``); Google ``ya29.`` tokens, ``GOCSPX-`` secrets.
- ``bearer_token`` (on): ``Authorization:`` credentials (``Bearer``/``Basic``/``Token``,
  in lower, capitalised or upper case); bare ``Bearer``/``BEARER`` + a 16+ character
  token with letters and digits; bare ``Basic`` + base64 of printable ``user:password``;
  bare JWTs (``eyJ...`` ``.eyJ...`` ``.sig``).
- ``password`` (on): ``password=``/``passwd:``/``"pwd": "..."``/``PGPASSWORD=`` values
  (any case and prefix; quoted or bare), password query parameters, and URL user-info
  passwords (``postgresql://user:password@host``).
- ``credential_key`` (on): values under credential-named dict keys, masked whole
  whatever their shape (:data:`DEFAULT_CREDENTIAL_KEYS`, or ``credential_keys=``;
  compared without case and ``_ - .`` separators, as a suffix).
- ``card_number`` (off): 13-19 digits starting 2-6, alone or in space/dash groups of 3+,
  passing the Luhn check.
- ``email`` (off): ASCII e-mail addresses.

E-mail addresses and card numbers are off by default because they are personal data,
not credentials: some users must keep them (whom a support agent answered is the audit
trail), others must drop them (GDPR, PCI DSS); ``Redactor(detectors=ALL_DETECTORS)``
turns them on. Credentials never belong in a trace, so those detectors are on.

Users add ``patterns={"employee_id": r"EMP-\\d{6}"}`` (compiled once; with a group named
``secret`` only that group is masked) and ``callables=[fn]``, ``fn(text)`` returning
``(start, end, kind)`` for each secret ``text[start:end]``. Overlapping findings merge
into one marker; on equal spans the earlier detector in the list wins, then patterns,
then callables.

The hash is HMAC-SHA256 of the secret's UTF-8 bytes (card numbers as their digits,
e-mail addresses in lower case, so formatting does not break correlation), truncated
to 12 hex digits (48 bits); the kind is not hashed. HMAC is a keyed pseudo-random
function: without the key a digest says nothing about the secret, and 48 bits are far
fewer than a credential holds, so not even the key holder can invert it, only test a
guess (keep the key as secret as the data: a card number can be guessed). Among the
secrets of one deployment an accidental collision is negligible. The key is ``key=``,
else the ``CODON_REDACTION_KEY`` environment variable (UTF-8), else a random key per
process, announced by one logged warning: markers then do not correlate across processes.

Speed: most strings hold no secret. Each built-in rule names characters ("gates") and
literals ("needles") every text it matches must contain; :meth:`Redactor.redact_text`
tests those with C-speed substring checks and returns the very same object when none
is present. User patterns are searched in every string (one that starts with a
literal, like ``EMP-``, at substring speed); user callables are called on every string.

Markers are never redacted again, and a string is rescanned until nothing more is
found, so redacting twice equals redacting once. Hooks never break a run: a callable
that raises or returns malformed spans is logged once (without the text or the
exception message, either may hold the secret) and its findings are skipped.

What happens to each kind found is the policy's ``actions``: ``mask`` (the marker above,
the secret dropped for good) or ``seal`` (kept AES-GCM-encrypted under a sealing key held
outside the database, so resume, replay and fork give code the real value back). With a
sealing key configured (``sealing_keys=``, ``CODON_SEALING_KEY``, ``CODON_SEALING_KEY_FILE``)
credential detectors seal by default; see ``_sealing.py`` and the sealed secrets guide.
"""

from codon_sdk.redaction._current import NOT_IN_A_RUN, current_redact, set_run_redaction_source
from codon_sdk.redaction._detectors import (
    ALL_DETECTORS,
    DEFAULT_CREDENTIAL_KEYS,
    DEFAULT_DETECTORS,
    MARKER_PATTERN,
)
from codon_sdk.redaction._keys import is_credential_key
from codon_sdk.redaction._logging import get_logger
from codon_sdk.redaction._policy import ACTIONS, PERSONAL_DATA_KINDS
from codon_sdk.redaction._redactor import (
    KEY_ENV_VAR,
    RedactionCallable,
    Redactor,
    default_redactor,
    set_default_redactor,
)
from codon_sdk.redaction._sealing import (
    SEALED_MARKER_PATTERN,
    SEALED_PREFIX,
    comparable,
)
from codon_sdk.redaction._sealing_keys import (
    SEALING_KEY_ENV_VAR,
    SEALING_KEY_FILE_ENV_VAR,
    SealingKeys,
    StaticSealingKeys,
    generate_sealing_key,
    sealing_keys_from_environment,
)

__all__ = [
    "ACTIONS",
    "ALL_DETECTORS",
    "DEFAULT_CREDENTIAL_KEYS",
    "DEFAULT_DETECTORS",
    "KEY_ENV_VAR",
    "MARKER_PATTERN",
    "NOT_IN_A_RUN",
    "PERSONAL_DATA_KINDS",
    "SEALED_MARKER_PATTERN",
    "SEALING_KEY_ENV_VAR",
    "SEALING_KEY_FILE_ENV_VAR",
    "RedactionCallable",
    "Redactor",
    "SealingKeys",
    "SEALED_PREFIX",
    "StaticSealingKeys",
    "comparable",
    "current_redact",
    "default_redactor",
    "generate_sealing_key",
    "get_logger",
    "is_credential_key",
    "sealing_keys_from_environment",
    "set_default_redactor",
    "set_run_redaction_source",
]
