"""Ids of instances, activations, tasks and records: RFC 9562 UUIDv7 in canonical text.

A UUIDv7 starts with its creation time in milliseconds, so ids made later sort later:
B-tree inserts stay at the right edge of the index and lists page by keyset.  The standard
library has ``uuid7`` only from Python 3.14; ``uuid-utils`` (Rust's ``uuid`` crate) makes
one in about 0.3 us, ten times less than ``str(uuid.uuid4())``.  Its ``uuid7`` keeps a
counter within each millisecond (so ids of one process are strictly increasing even in a
burst), and it reseeds its random generator in a forked child, so parent and child draw
different random bits from the moment of the fork.
"""

from __future__ import annotations

from uuid_utils import uuid7

__all__ = ["new_id"]


def new_id() -> str:
    """A new UUIDv7 (RFC 9562) in canonical lowercase text form.

    Returns:
        36 characters, ``xxxxxxxx-xxxx-7xxx-yxxx-xxxxxxxxxxxx``; text order is creation order
        within a process.
    """
    return str(uuid7())
