"""Telemetry vocabulary (documented import path)."""
