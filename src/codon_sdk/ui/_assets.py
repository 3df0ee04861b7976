"""The page assets shipped in the wheel (``codon_sdk/ui/assets/``): nothing is fetched."""

from __future__ import annotations

import importlib.resources

__all__ = ["read_asset"]


def read_asset(name: str) -> str:
    """One of the assets shipped in the wheel (``codon_sdk/ui/assets/``)."""
    return (importlib.resources.files("codon_sdk.ui") / "assets" / name).read_text("utf-8")
