"""Option values that Typer cannot check alone: JSON payloads, durations, times.

Each refusal is one line on stderr naming the option (``fail``), so a typo in a payload or
a date reads as a typo and not as a traceback.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import msgspec

from flowstar.cli._output import fail

__all__ = ["parse_duration", "parse_payload", "parse_time"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PART = re.compile(r"(\d+)([smhdw])")


def parse_payload(text: str | None, option: str = "--payload") -> dict[str, Any]:
    """A JSON object from ``text`` (``{}`` when not given)."""
    if text is None:
        return {}
    try:
        value = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        fail(f"{option} is not valid JSON: {exc}")
    if not isinstance(value, dict):
        fail(f"{option} must be a JSON object, not {type(value).__name__}: {text}")
    return value


def parse_duration(text: str, option: str) -> timedelta:
    """``90s``, ``30m``, ``2h``, ``1d``, ``1w`` or combinations such as ``1h30m``."""
    compact = text.strip().lower()
    parts = _PART.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        fail(f"{option} {text!r} is not a duration like 90s, 30m, 2h, 1d, 1w or 1h30m")
    return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in parts))


def parse_time(text: str, option: str) -> datetime:
    """An ISO 8601 time with its time zone (``2026-05-01T09:00:00+02:00``, ``...Z``)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{option} {text!r} is not an ISO 8601 time (2026-05-01T09:00:00+00:00)")
    if value.tzinfo is None:
        fail(f"{option} {text!r} needs a time zone (add +00:00 or Z)")
    return value
