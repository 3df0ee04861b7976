"""Store URLs made safe to show: :func:`mask_url`, for messages, logs and ``store.url``.

Its own module, below both ``_open`` (which names URLs in its errors) and the backends
(which keep a masked URL), so that neither has to import the other for it.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit, urlunsplit

from codon_sdk.redaction import default_redactor, is_credential_key

__all__ = ["mask_url"]


def mask_url(url: str) -> str:
    """The URL with its password (in the user info, or a query parameter such as
    ``?password=`` or ``sslpassword=``) replaced by ``***``, then through the default
    redaction policy: safe for messages, logs and ``store.url``."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparseable URL>"
    query = _masked_query(parts.query)
    if parts.password is not None:
        user = parts.username or ""
        host = parts.hostname or ""
        url = urlunsplit((parts.scheme, f"{user}:***@{host}{port}", parts.path, query, ""))
    elif query != parts.query:
        url = urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
    return default_redactor().redact_text(url)


def _masked_query(query: str) -> str:
    """``query`` with the value of every parameter named like a credential as ``***``."""
    if not query:
        return query
    pairs = []
    for pair in query.split("&"):
        name, eq, _ = pair.partition("=")
        pairs.append(f"{name}=***" if eq and is_credential_key(unquote(name)) else pair)
    return "&".join(pairs)
