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
- ``StartChild(workflow, data, next, result_key)``: start an instance of another workflow
  and wait for it to end; its outcome (``flowstar.model.children``) is merged into the
  data under ``result_key`` and ``next`` runs.  The engine starts the child before it
  commits the step (``Engine._prepare``): a transition only ever sees the wait it becomes.

Pure data (msgspec Structs, no behaviour), so a command can be checked, stored and compared.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = [
    "COMMAND_TYPES",
    "WAKEUP_KEY",
    "Command",
    "Complete",
    "Fail",
    "Goto",
    "Sleep",
    "StartChild",
    "Wait",
    "WaitFor",
]

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


class StartChild(msgspec.Struct, frozen=True, gc=False):
    """Start an instance of ``workflow`` with ``data``; when it ends, run ``next``.

    ``version`` pins the child's version (None: the latest active one).  The child's
    outcome lands in the data under ``result_key``.
    """

    workflow: str
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    next: str | None = None
    version: str | None = None
    result_key: str = "child"


Command = Goto | Complete | Fail | Sleep | Wait | StartChild
COMMAND_TYPES = (Goto, Complete, Fail, Sleep, Wait, StartChild)
