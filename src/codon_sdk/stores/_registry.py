"""The store registry: which factory opens a ledger store URL, by the URL's scheme.

``open_store(url)`` looks the scheme up here. The built-in backends (``memory``,
``sqlite``, ``postgresql`` and its spellings) are registered by ``_open`` exactly
as a plug-in is. A backend plugs in one of two ways:

* in code: ``register_store("mystore", factory)``;
* from another distribution: an entry point in the group ``codon_sdk.stores``
  whose name is the scheme and whose value is the factory
  (``mystore = my_package.store:open_my_store`` under
  ``[project.entry-points."codon_sdk.stores"]``), loaded the first time a URL
  with that scheme is opened.

A factory is called as ``factory(url, **options)`` with the URL as given and the
keyword options passed to ``open_store``, and returns a
:class:`~codon_sdk.stores.LedgerStore`. Bytes read back from a store never reach
this module: only a URL the application was configured with chooses a plug-in.
"""

from __future__ import annotations

import importlib.metadata
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from codon_sdk.errors import InvalidStoreURLError, StorePluginError
from codon_sdk.stores._base import LedgerStore
from codon_sdk.stores._url import mask_url

__all__ = [
    "ENTRY_POINT_GROUP",
    "StoreFactory",
    "known_schemes",
    "open_url",
    "register_store",
    "unregister_store",
    "url_scheme",
    "is_shared_scheme",
]

StoreFactory: TypeAlias = Callable[..., LedgerStore]
"""``factory(url, **options) -> LedgerStore``: opens the store a URL of its scheme names."""

ENTRY_POINT_GROUP: Final = "codon_sdk.stores"
"""The entry-point group through which another distribution registers a store scheme."""

#: RFC 3986 scheme syntax (lower-cased: schemes are case-insensitive).
_SCHEME: Final = re.compile(r"[a-z][a-z0-9+.-]*\Z")
_BUILT_IN: Final = "built in"


@dataclass(frozen=True, slots=True)
class _Plugin:
    scheme: str
    factory: StoreFactory
    #: Where the registration came from, for messages.
    origin: str
    #: Whether ``shared_store`` keeps one store per URL for the process (for pooled servers).
    shared: bool

    def describe(self) -> str:
        return f"{_name(self.factory)} ({self.origin})"


_PLUGINS: dict[str, _Plugin] = {}
_LOCK = threading.RLock()


def _name(factory: object) -> str:
    module = getattr(factory, "__module__", None) or "?"
    qualname = getattr(factory, "__qualname__", None) or type(factory).__qualname__
    return f"{module}.{qualname}"


def _checked_scheme(scheme: object) -> str:
    if not isinstance(scheme, str) or not _SCHEME.match(scheme.lower()):
        raise StorePluginError(
            f"{scheme!r} is not a URL scheme a store can be registered under; use letters, "
            "digits, '+', '-' or '.', starting with a letter, without '://' (e.g. 'mystore')"
        )
    return scheme.lower()


def register_store(
    scheme: str,
    factory: StoreFactory,
    *,
    replace: bool = False,
    shared: bool = False,
) -> None:
    """Make ``open_store("<scheme>://...")`` open its store with ``factory(url, **options)``.

    ``factory`` returns a :class:`~codon_sdk.stores.LedgerStore` (anything else is
    refused when a URL is opened). A scheme names one backend: registering one that
    is taken raises :class:`~codon_sdk.errors.StorePluginError` naming the factory
    that holds it, unless ``replace=True`` (replacing on purpose, a built-in
    included); registering the very same factory again changes nothing.
    ``shared=True`` makes ``execute(store=url)`` keep one store per URL for the whole
    process instead of opening one per run (as PostgreSQL does: for backends whose
    opening is costly, such as a connection pool).
    """
    _add(_checked_scheme(scheme), factory, "register_store()", replace=replace, shared=shared)


def _add(name: str, factory: StoreFactory, origin: str, *, replace: bool, shared: bool) -> None:
    if not callable(factory):
        raise StorePluginError(
            f"the store factory for scheme {name!r} is {factory!r}, which is not callable; pass "
            "a function or class called as factory(url, **options) that returns a LedgerStore"
        )
    plugin = _Plugin(name, factory, origin, shared)
    with _LOCK:
        held = _PLUGINS.get(name)
        if held is not None and not replace and held.factory is not factory:
            raise StorePluginError(
                f"store scheme {name!r} is already registered to {held.describe()}; "
                f"{_name(factory)} cannot take it too: register it under another scheme, or "
                "pass replace=True to register_store to replace the registered factory on purpose"
            )
        _PLUGINS[name] = plugin


def unregister_store(scheme: str) -> None:
    """Forget the factory registered for ``scheme`` (no error if there is none).

    An entry point of that scheme is found again the next time a URL names it.
    """
    with _LOCK:
        _PLUGINS.pop(_checked_scheme(scheme), None)


def _entry_points(scheme: str) -> list[importlib.metadata.EntryPoint]:
    """The installed entry points of ``scheme`` (the same one seen twice on sys.path, once)."""
    found: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name.lower() == scheme:
            found.setdefault(ep.value, ep)
    return list(found.values())


def _entry_point_origin(ep: importlib.metadata.EntryPoint) -> str:
    dist = ep.dist
    where = "" if dist is None else f" of the distribution {dist.metadata['Name']} {dist.version}"
    return f"entry point {ep.name} = {ep.value} in group {ENTRY_POINT_GROUP!r}{where}"


def _load(scheme: str) -> _Plugin | None:
    """The plug-in an installed entry point registers for ``scheme`` (imported now), if any."""
    eps = _entry_points(scheme)
    if not eps:
        return None
    if len(eps) > 1:
        both = "; ".join(_entry_point_origin(ep) for ep in eps)
        raise StorePluginError(
            f"more than one installed store plug-in registers scheme {scheme!r}: {both}; "
            "uninstall all but one, or choose one in code with "
            "register_store(scheme, factory, replace=True)"
        )
    ep = eps[0]
    origin = _entry_point_origin(ep)
    try:
        factory = ep.load()
    except Exception as exc:
        raise StorePluginError(
            f"the store plug-in for scheme {scheme!r} ({origin}) failed to import: "
            f"{type(exc).__name__}: {exc}; install what it needs or fix the plug-in (its "
            "entry point must name module:factory), or uninstall the distribution that "
            "provides it"
        ) from exc
    if not callable(factory):
        raise StorePluginError(
            f"the store plug-in for scheme {scheme!r} ({origin}) names {factory!r}, which is "
            "not callable; its entry point must name a factory called as "
            "factory(url, **options) that returns a LedgerStore"
        )
    with _LOCK:
        held = _PLUGINS.get(scheme)
        if held is not None:  # registered by another thread meanwhile
            return held
        plugin = _Plugin(scheme, factory, origin, shared=False)
        _PLUGINS[scheme] = plugin
        return plugin


def url_scheme(url: object) -> str:
    """The lower-cased scheme of a store URL; ``InvalidStoreURLError`` if it has none."""
    if not isinstance(url, str) or "://" not in url:
        raise InvalidStoreURLError(
            f"not a ledger store URL: {url!r}; expected one of {', '.join(known_schemes())}"
        )
    return url.split("://", 1)[0].lower()


def _plugin(scheme: str) -> _Plugin | None:
    with _LOCK:
        plugin = _PLUGINS.get(scheme)
    if plugin is None and _SCHEME.match(scheme):
        plugin = _load(scheme)
    return plugin


def is_shared_scheme(url: object) -> bool:
    """Whether the URL's backend was registered ``shared`` (False for URLs that name none)."""
    if not isinstance(url, str) or "://" not in url:
        return False
    with _LOCK:
        plugin = _PLUGINS.get(url.split("://", 1)[0].lower())
    return plugin is not None and plugin.shared


#: How the built-in schemes are spelled in messages (other schemes show as ``scheme://``).
_EXAMPLES: Final = {
    "memory": ("memory://",),
    "sqlite": ("sqlite:///relative/path.db", "sqlite:////absolute/path.db"),
    "postgresql": ("postgresql://...",),
}


def known_schemes() -> list[str]:
    """Every scheme a URL may use, as examples: registered ones, then installed entry points."""
    with _LOCK:
        plugins = list(_PLUGINS.values())
    out: list[str] = []
    for plugin in plugins:
        if plugin.origin == _BUILT_IN and plugin.scheme not in _EXAMPLES:
            continue  # the other spellings of postgresql://
        out.extend(_EXAMPLES.get(plugin.scheme, (f"{plugin.scheme}://",)))
    registered = {p.scheme for p in plugins}
    installed = {ep.name.lower() for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    out.extend(f"{name}://" for name in sorted(installed - registered))
    return out


def open_url(url: str, options: dict[str, Any]) -> LedgerStore:
    """Open the store ``url`` names through the factory registered for its scheme."""
    scheme = url_scheme(url)
    plugin = _plugin(scheme)
    if plugin is None:
        raise InvalidStoreURLError(
            f"unknown ledger store scheme {scheme!r} in {mask_url(url)!r}; expected one of "
            f"{', '.join(known_schemes())}; a store from another distribution registers its "
            f"scheme under the entry-point group {ENTRY_POINT_GROUP!r} (install it), one in "
            "your code with codon_sdk.register_store(scheme, factory)"
        )
    store = plugin.factory(url, **options)
    if not isinstance(store, LedgerStore):
        raise StorePluginError(
            f"the store plug-in for scheme {scheme!r}, {plugin.describe()}, returned "
            f"{type(store).__module__}.{type(store).__qualname__} for {mask_url(url)!r}, "
            "which is not a LedgerStore; make the factory return an instance of a "
            "codon_sdk.stores.LedgerStore subclass"
        )
    return store


def register_built_in(scheme: str, factory: StoreFactory, *, shared: bool = False) -> None:
    """Register one of the SDK's own backends (as :func:`register_store` does, marked built in)."""
    _add(_checked_scheme(scheme), factory, _BUILT_IN, replace=False, shared=shared)
