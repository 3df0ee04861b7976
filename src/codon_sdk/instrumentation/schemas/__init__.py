"""Identity and telemetry schemas (documented import paths)."""
