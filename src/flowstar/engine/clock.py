"""Clocks: the system clock, and a manual one that tests advance by hand."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock"]


class Clock(Protocol):
    """Where the engine gets the time, and how it waits for a deadline."""

    def now(self) -> datetime:
        """The current time (timezone-aware, UTC)."""

    async def sleep_until(self, when: datetime, wake: asyncio.Event | None = None) -> None:
        """Return at ``when``, or earlier if ``wake`` is set."""


class SystemClock:
    """Wall-clock time."""

    # ``now()`` is ``datetime.now(UTC)``: a partial calls it without a Python frame, and the
    # engine asks for the time a few times per step.
    now = partial(datetime.now, UTC)

    async def sleep_until(self, when: datetime, wake: asyncio.Event | None = None) -> None:
        """Sleep until ``when`` or until ``wake`` is set."""
        delay = (when - self.now()).total_seconds()
        if delay <= 0:
            return
        if wake is None:
            await asyncio.sleep(delay)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=delay)


class ManualClock:
    """A clock that only moves when ``advance`` or ``set`` is called.

    Timers, retry back-offs and due dates then fire exactly when a test says so, without
    real sleeping.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2030, 1, 1, tzinfo=UTC)
        self._moved = asyncio.Event()

    def now(self) -> datetime:
        """The manual time."""
        return self._now

    def advance(self, delta: timedelta | float) -> datetime:
        """Move time forward by ``delta`` (a timedelta or seconds) and wake sleepers."""
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        if step < timedelta(0):
            raise ValueError("a clock cannot go backwards")
        return self.set(self._now + step)

    def set(self, when: datetime) -> datetime:
        """Jump to ``when`` and wake sleepers."""
        self._now = when
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()
        return when

    async def sleep_until(self, when: datetime, wake: asyncio.Event | None = None) -> None:
        """Return once the manual time reaches ``when`` (or ``wake`` is set)."""
        while self._now < when:
            if wake is not None and wake.is_set():
                return
            moved = self._moved
            waiters = [asyncio.ensure_future(moved.wait())]
            if wake is not None:
                waiters.append(asyncio.ensure_future(wake.wait()))
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
