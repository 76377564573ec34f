"""A guard for reader loops against cancellations lost inside redis-py on Python 3.11."""

from __future__ import annotations

import asyncio

__all__ = ["raise_if_cancel_requested"]


def raise_if_cancel_requested() -> None:
    """Raise ``CancelledError`` if someone asked to cancel the current task.

    On Python 3.11 ``asyncio.wait_for`` returns the result instead of raising when the
    cancellation arrives just as the awaited operation completes (fixed in 3.12), and
    redis-py sends every command through ``wait_for`` when the client has a socket timeout
    (the default in redis-py 8).  A consumer loop cancelled at that moment would carry on
    forever; the request is still counted by ``Task.cancelling()``, so loops check it.

    Raises:
        asyncio.CancelledError: A cancellation was requested and not withdrawn.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
