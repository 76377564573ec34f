"""Fast random ids in UUID form.

``str(uuid.uuid4())`` costs a few microseconds (the ``UUID`` constructor validates and
converts, and every call reads the kernel's random source), and the engine makes several ids
per step.  Here the random bytes come from ``os.urandom`` for 256 ids at a time and are laid
out as canonical UUID text for the whole block at once: each of the 32 hex digits of an id
is copied into place for all 256 ids by one strided slice assignment, so formatting costs no
Python operation per id.  ``new_id`` then hands the ids out one by one: the same canonical
text and the same 128 random bits from the same source, which ``uuid.UUID`` and the
database's UUID columns read back unchanged.
"""

from __future__ import annotations

import os
from functools import partial
from itertools import chain, repeat

__all__ = ["new_id"]

_IDS_PER_BLOCK = 256
_WIDTH = 37  # 36 characters of canonical UUID text and a newline
# Where each of an id's 32 hex digits goes in its text (the other places hold dashes).
_DIGIT_PLACES = tuple(i for i in range(36) if i not in (8, 13, 18, 23))


def _format_block(random_bytes: bytes) -> list[str]:
    """Canonical UUID text for each 16 bytes of ``random_bytes``."""
    count = len(random_bytes) // 16
    digits = random_bytes.hex().encode()
    text = bytearray(b"-" * (_WIDTH * count))
    for digit, place in enumerate(_DIGIT_PLACES):
        text[place::_WIDTH] = digits[digit::32]
    text[36::_WIDTH] = b"\n" * count
    return text.decode().split()


def _new_block(_: object) -> list[str]:
    block = _format_block(os.urandom(_IDS_PER_BLOCK * 16))
    _current[:] = [block]
    return block


# The block being handed out, so that a forked child can empty its copy: the child must
# never hand out the ids its parent will.  Emptying the list ends its iteration.
_current: list[list[str]] = []
os.register_at_fork(after_in_child=lambda: _current[0].clear() if _current else None)

# ``next`` through a partial on C iterators only (a chain over the blocks, each a list): no
# Python frame runs per id, only one per block.
new_id = partial(next, chain.from_iterable(map(_new_block, repeat(None))))
new_id.__doc__ = "A random id in canonical UUID text form (128 random bits)."
