"""Backends implementing the engine's ports."""
