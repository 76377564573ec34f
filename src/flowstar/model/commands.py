"""Commands: what a step returns to say what happens next (the code-first front end's routing).

A step of a definition with ``routing="commands"`` returns one of these from ``execute``;
the transition (``PlanBuilder.follow``) carries it out:

- ``Goto(target)``: enter step ``target`` (a human step opens its task, a wait step waits);
- ``Complete(result)``: merge ``result`` into the data and end the instance (completed);
- ``Fail(reason)``: fail the instance at once (no retry: a retry is for exceptions);
- ``Sleep(seconds, next)``: a durable timer; when it fires, ``next`` runs (default: the
  same step again, the reminder loop);
- ``Wait(waits, next, timeout, on_timeout, lookback)``: wait for the first of several
  signals and events (``WaitFor``); the one that comes is merged into the data and ``next``
  runs; after ``timeout`` seconds with none, ``on_timeout`` runs.  A signal or event that
  arrived before the wait began counts when it is within ``lookback`` seconds (None: since
  the instance started).

Pure data (msgspec Structs, no behaviour), so a command can be checked, stored and compared.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = ["COMMAND_TYPES", "WAKEUP_KEY", "Command", "Complete", "Fail", "Goto", "Sleep", "Wait", "WaitFor"]

# The data key that tells the step run after a wait what ended it:
# {"kind": "signal" | "event" | "timeout" | "timer", "name": ...}.
WAKEUP_KEY = "_wakeup"


class Goto(msgspec.Struct, frozen=True, gc=False):
    """Go on with step ``target``."""

    target: str


class Complete(msgspec.Struct, frozen=True, gc=False):
    """End the instance as completed, after merging ``result`` into its data."""

    result: dict[str, Any] = msgspec.field(default_factory=dict)


class Fail(msgspec.Struct, frozen=True, gc=False):
    """End the instance as failed with ``reason`` (not retried)."""

    reason: str


class Sleep(msgspec.Struct, frozen=True, gc=False):
    """Wait ``seconds`` (durably), then run ``next`` (None: the step that slept)."""

    seconds: float
    next: str | None = None


class WaitFor(msgspec.Struct, frozen=True, gc=False):
    """One thing a ``Wait`` waits for: a signal, or an external event (optionally filtered).

    ``filter`` is a safe expression (the edge conditions' evaluator) over the event's
    payload, e.g. ``"context.get('amount', 0) > 100"`` (``context`` is the payload);
    events it rejects pass by.
    """

    kind: Literal["signal", "event"]
    name: str
    filter: str | None = None


class Wait(msgspec.Struct, frozen=True, gc=False):
    """Wait for the first of ``waits`` (or ``timeout`` seconds), then go on."""

    waits: tuple[WaitFor, ...]
    next: str | None = None
    timeout: float | None = None
    on_timeout: str | None = None
    lookback: float | None = None


Command = Goto | Complete | Fail | Sleep | Wait
COMMAND_TYPES = (Goto, Complete, Fail, Sleep, Wait)
