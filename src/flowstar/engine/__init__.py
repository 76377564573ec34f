"""The engine and its ports."""
