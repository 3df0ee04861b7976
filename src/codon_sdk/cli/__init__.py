"""The ``codon`` command line: inspect, verify, replay and export run ledgers."""

from codon_sdk.cli._main import main

__all__ = ["main"]
