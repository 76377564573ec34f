"""Steps that wait for something outside the process: a point in time or a callback."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal

from flowstar.model.commands import Wait, WaitFor
from flowstar.model.conditions import Condition
from flowstar.model.enums import StepType
from flowstar.model.errors import StepExecutionError, UnsafeExpressionError
from flowstar.model.moments import duration_problem
from flowstar.model.steps import BaseStep

__all__ = ["EventStep", "SignalStep", "TimerStep", "WebhookStep"]

DurationLike = timedelta | float | int | Callable[[Mapping[str, Any]], timedelta | float]
UntilLike = str | Callable[[Mapping[str, Any]], datetime]


class TimerStep(BaseStep):
    """Waits a duration, or until a time computed from the context.

    Waiting holds no worker and no asyncio task: it is a deadline stored with the instance.

    Args:
        name: step name.
        duration: a ``timedelta``, seconds, or a function of the context data returning one.
        until: a context key holding an ISO-8601 time, or a function of the context data
            returning a ``datetime``.
    """

    step_type: ClassVar[StepType] = StepType.TIMER
    duration: DurationLike | None = None
    until: UntilLike | None = None

    def __init__(
        self,
        name: str | None = None,
        description: str | None = None,
        *,
        duration: DurationLike | None = None,
        until: UntilLike | None = None,
    ) -> None:
        super().__init__(name, description)
        if duration is not None:
            self.duration = duration
        if until is not None:
            self.until = until

    def problems(self) -> list[str]:
        """A timer needs exactly one of ``duration`` and ``until``."""
        found = super().problems()
        if (self.duration is None) == (self.until is None):
            found.append(f"timer step {self.name!r}: give exactly one of duration or until")
        return found

    def wake_at(self, data: Mapping[str, Any], now: datetime) -> datetime:
        """When the timer fires, for context ``data`` at time ``now``.

        Raises:
            StepExecutionError: the wake time cannot be computed (the workflow then fails).
        """
        try:
            return self._wake_at(data, now)
        except StepExecutionError:
            raise
        except Exception as exc:  # a user callable raised, or returned the wrong type
            raise StepExecutionError(f"timer {self.name!r}: {type(exc).__name__}: {exc}") from exc

    def _wake_at(self, data: Mapping[str, Any], now: datetime) -> datetime:
        if self.until is not None:
            return self._until(data)
        value = self.duration(data) if callable(self.duration) else self.duration
        if isinstance(value, timedelta):
            return now + value
        if isinstance(value, int | float):
            return now + timedelta(seconds=value)
        raise StepExecutionError(f"timer {self.name!r}: duration gave {value!r}, not a timedelta")

    def _until(self, data: Mapping[str, Any]) -> datetime:
        if isinstance(self.until, str):
            raw = data.get(self.until)
            if not isinstance(raw, str):
                raise StepExecutionError(
                    f"timer {self.name!r}: context key {self.until!r} holds {raw!r}, not an ISO time"
                )
            try:
                when = datetime.fromisoformat(raw)
            except ValueError as exc:
                raise StepExecutionError(f"timer {self.name!r}: {exc}") from exc
        elif self.until is not None:
            when = self.until(data)
            if not isinstance(when, datetime):
                raise StepExecutionError(f"timer {self.name!r}: until gave {when!r}, not a datetime")
        else:  # pragma: no cover - guarded by problems()
            raise StepExecutionError(f"timer {self.name!r} has no until")
        if when.tzinfo is None:
            raise StepExecutionError(f"timer {self.name!r}: wake time {when} has no time zone")
        return when


class WebhookStep(BaseStep):
    """Waits for an external callback; its JSON payload is merged into the context.

    Args:
        name: step name.
        result_key: put the payload under this context key instead of merging its fields.
    """

    step_type: ClassVar[StepType] = StepType.WEBHOOK
    result_key: str | None = None

    def __init__(
        self, name: str | None = None, description: str | None = None, *, result_key: str | None = None
    ) -> None:
        super().__init__(name, description)
        if result_key is not None:
            self.result_key = result_key

    def payload_to_changes(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The context writes the callback's payload makes."""
        if self.result_key:
            return {self.result_key: dict(payload)}
        return dict(payload)


def _seconds(value: timedelta | float | None) -> float | None:
    return value.total_seconds() if isinstance(value, timedelta) else value


class _NamedWait(BaseStep):
    """A step that waits for a named signal or event (see ``SignalStep``, ``EventStep``)."""

    wait_kind: ClassVar[Literal["signal", "event"]]
    # Not ``timeout``: that is every step's time limit for running its body.
    wait_timeout: timedelta | float | None = None
    on_timeout: str | None = None
    lookback: timedelta | float | None = None

    def __init__(
        self,
        name: str | None,
        description: str | None,
        *,
        timeout: timedelta | float | None,
        on_timeout: str | None,
        lookback: timedelta | float | None,
    ) -> None:
        super().__init__(name, description)
        for attr, value in (("wait_timeout", timeout), ("on_timeout", on_timeout), ("lookback", lookback)):
            if value is not None:
                setattr(self, attr, value)

    @property
    def awaited(self) -> str:
        """The name of the signal or event waited for (the ``signal``/``event`` attribute, else the step's)."""
        named: str | None = getattr(self, self.wait_kind, None)
        return named or self.name

    def problems(self) -> list[str]:
        """A positive timeout, on_timeout only with a timeout, a lookback not negative."""
        found = super().problems()
        for what, value in (("timeout", self.wait_timeout), ("lookback", self.lookback)):
            problem = (
                duration_problem(value, f"{self.wait_kind} step {self.name!r}: {what}") if value is not None else None
            )
            if problem is not None:
                return [*found, problem]
        timeout, lookback = _seconds(self.wait_timeout), _seconds(self.lookback)
        if timeout is not None and timeout <= 0:
            found.append(f"{self.wait_kind} step {self.name!r}: timeout must be positive")
        if self.on_timeout is not None and timeout is None:
            found.append(f"{self.wait_kind} step {self.name!r}: on_timeout needs a timeout")
        if lookback is not None and lookback < 0:
            found.append(f"{self.wait_kind} step {self.name!r}: lookback must not be negative")
        if not self.awaited:
            found.append(f"{self.wait_kind} step {self.name!r}: no {self.wait_kind} name")
        return found

    def waits(self) -> tuple[WaitFor, ...]:
        """What the step waits for: its one signal or event."""
        return (WaitFor(kind=self.wait_kind, name=self.awaited, filter=getattr(self, "filter", None)),)

    def command(self) -> Wait:
        """The wait entering the step opens (it goes on along its edges: no ``next``)."""
        return Wait(
            self.waits(),
            timeout=_seconds(self.wait_timeout),
            on_timeout=self.on_timeout,
            lookback=_seconds(self.lookback),
        )


class SignalStep(_NamedWait):
    """Waits for a signal (``engine.signal(name, payload)``); the payload is merged into the context.

    A signal sent before the instance reached the step counts when it is within ``lookback``
    (default: since the instance started) and the instance has not consumed it already.

    Args:
        name: step name.
        signal: the signal's name (default: the step's name).
        timeout: give up waiting after this long (a ``timedelta`` or seconds).
        on_timeout: the step entered on timeout (it needs an edge to it); without one the
            step goes on along its edges with ``_wakeup`` saying ``timeout``.
        lookback: how far back a signal sent before the wait began counts.
    """

    step_type: ClassVar[StepType] = StepType.SIGNAL
    wait_kind: ClassVar[Literal["signal", "event"]] = "signal"
    signal: str | None = None

    def __init__(
        self,
        name: str | None = None,
        description: str | None = None,
        *,
        signal: str | None = None,
        timeout: timedelta | float | None = None,
        on_timeout: str | None = None,
        lookback: timedelta | float | None = None,
    ) -> None:
        super().__init__(name, description, timeout=timeout, on_timeout=on_timeout, lookback=lookback)
        if signal is not None:
            self.signal = signal


class EventStep(_NamedWait):
    """Waits for an external event (``engine.report_event``), optionally filtered by its payload.

    The event's payload is merged into the context with ``event_id``, ``event_name`` and
    ``entity_id``.  ``filter`` is a safe expression over the payload, written as an edge condition
    (``"context.get('amount', 0) > 100"``, where ``context`` is the payload).

    Args:
        name: step name.
        event: the event's name (default: the step's name).
        filter: events whose payload does not satisfy it pass by.
        timeout, on_timeout, lookback: as for ``SignalStep``.
    """

    step_type: ClassVar[StepType] = StepType.EVENT
    wait_kind: ClassVar[Literal["signal", "event"]] = "event"
    event: str | None = None
    filter: str | None = None

    def __init__(
        self,
        name: str | None = None,
        description: str | None = None,
        *,
        event: str | None = None,
        filter: str | None = None,
        timeout: timedelta | float | None = None,
        on_timeout: str | None = None,
        lookback: timedelta | float | None = None,
    ) -> None:
        super().__init__(name, description, timeout=timeout, on_timeout=on_timeout, lookback=lookback)
        if event is not None:
            self.event = event
        if filter is not None:
            self.filter = filter

    def problems(self) -> list[str]:
        """A wait's problems, and a filter that is not a safe expression."""
        found = super().problems()
        if self.filter is not None:
            try:
                Condition(self.filter)
            except UnsafeExpressionError as exc:
                found.append(f"event step {self.name!r}: filter: {exc}")
        return found
