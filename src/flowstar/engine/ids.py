"""Fast random ids in UUID form.

``str(uuid.uuid4())`` costs a few microseconds (the ``UUID`` constructor validates and
converts), and the engine makes several ids per step.  Formatting 16 random bytes directly
gives the same canonical text, which ``uuid.UUID`` and the database's UUID columns read back
unchanged.
"""

from __future__ import annotations

from os import urandom

__all__ = ["new_id"]


def new_id() -> str:
    """A random id in canonical UUID text form (128 random bits)."""
    h = urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
