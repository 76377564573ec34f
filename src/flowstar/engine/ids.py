"""Fast random ids in UUID form.

``str(uuid.uuid4())`` costs a few microseconds (the ``UUID`` constructor validates and
converts, and every call reads the kernel's random source), and the engine makes several ids
per step.  Here the random bytes come from ``os.urandom`` for 256 ids at a time, formatted
in one pass, and ``new_id`` hands them out one by one: the same canonical text and the same
128 random bits from the same source, which ``uuid.UUID`` and the database's UUID columns
read back unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import partial

__all__ = ["new_id"]

_IDS_PER_BLOCK = 256
# The block being handed out; a forked child empties its copy so that it never hands out
# the ids its parent will.
_block: list[str] = []


def _blocks() -> Iterator[str]:
    while True:
        digits = os.urandom(_IDS_PER_BLOCK * 16).hex()
        _block[:] = [
            f"{digits[i : i + 8]}-{digits[i + 8 : i + 12]}-{digits[i + 12 : i + 16]}-"
            f"{digits[i + 16 : i + 20]}-{digits[i + 20 : i + 32]}"
            for i in range(0, len(digits), 32)
        ]
        # Iterating the shared list (not a copy) is what lets ``_block.clear()`` end it.
        yield from _block


os.register_at_fork(after_in_child=_block.clear)

# ``next`` on a generator through a partial: no Python frame is created per id.
new_id = partial(next, _blocks())
new_id.__doc__ = "A random id in canonical UUID text form (128 random bits)."
