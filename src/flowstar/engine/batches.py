"""Acting on many instances at once, a bounded number at a time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

__all__ = ["in_batches"]

T = TypeVar("T")
R = TypeVar("R")


async def in_batches(items: Sequence[T], act: Callable[[T], Awaitable[R]], size: int) -> list[R]:
    """``act`` on every item, ``size`` at a time; the results in the items' order.

    For items that are distinct instances: their commits overlap on the database instead of
    waiting for one another.
    """
    results: list[R] = []
    for start in range(0, len(items), size):
        results.extend(await asyncio.gather(*(act(item) for item in items[start : start + size])))
    return results
