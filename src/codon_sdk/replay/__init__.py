"""Replay and fork of recorded runs."""
