"""The manual clock that tests drive timers with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flowstar import ManualClock


def test_manual_clock() -> None:
    clock = ManualClock(datetime(2031, 5, 6, tzinfo=UTC))
    assert clock.now() == datetime(2031, 5, 6, tzinfo=UTC)
    assert clock.advance(timedelta(hours=1)) == datetime(2031, 5, 6, 1, tzinfo=UTC)
    assert clock.advance(30) == datetime(2031, 5, 6, 1, 0, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="cannot go backwards"):
        clock.advance(-1)
