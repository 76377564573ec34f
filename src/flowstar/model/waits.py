"""Steps that wait for something outside the process: a point in time or a callback."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar

from flowstar.model.enums import StepType
from flowstar.model.errors import StepExecutionError
from flowstar.model.steps import BaseStep

__all__ = ["TimerStep", "WebhookStep"]

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
