"""Times and durations that come in from callers: with a time zone, and within what every
store can hold.

Stores keep times in UTC.  A time without a time zone cannot be compared with stored ones
(Python refuses, and the SQL column types cannot convert it), and a time whose UTC value
falls outside years 1..9999 cannot be converted at all: both are the caller's mistake and
are refused here, before any store sees them.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from flowstar.model.errors import ValidationError

__all__ = ["MAX_WAIT", "aware", "duration_problem"]

MAX_WAIT = timedelta(days=100 * 366)
"""The longest duration a step may wait or allow: a wake time much further off is no datetime."""


def aware(value: datetime, what: str) -> datetime:
    """``value`` if it has a time zone and converts to UTC; ``what`` names it in the error.

    Raises:
        ValidationError: no time zone, or a UTC time outside years 1..9999.
    """
    if value.utcoffset() is None:
        raise ValidationError(
            f"{what} needs a time zone (add +00:00 or Z)", [f"{what}: {value.isoformat()} has no time zone"]
        )
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValidationError(
            f"{what} is out of range", [f"{what}: {value.isoformat()} is not within years 1 to 9999 in UTC"]
        ) from None
    return value


def duration_problem(value: object, what: str) -> str | None:
    """Why ``value`` (a ``timedelta`` or a number of seconds) is no duration flowstar can wait;
    None when it is one.  The sign is the caller's rule (some durations may be 0)."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        return f"{what} must be a timedelta or a number of seconds, got {value!r}"
    if math.isnan(seconds):
        return f"{what} must be a number of seconds, got {value!r}"
    if abs(seconds) > MAX_WAIT.total_seconds():
        return f"{what} must be at most {MAX_WAIT.days} days, got {value!r}"
    return None
