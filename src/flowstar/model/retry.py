"""Retry policies: how often a failing step is tried again and how long to wait between."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta

from flowstar.model.errors import ValidationError
from flowstar.model.moments import duration_problem

__all__ = ["NO_RETRY", "RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempts with exponential back-off and jitter.

    Args:
        max_attempts: total tries, the first one included (1 = no retry).
        initial_delay: seconds (or a ``timedelta``) before the second attempt.
        backoff: factor applied to the delay after each failed attempt.
        max_delay: upper bound of any delay, in seconds (or a ``timedelta``).
        jitter: random spread as a fraction of the delay (0.1 = +/-10%), so that many
            instances failing together do not retry in lock-step.
        retry_on: exception types that are retried (a tuple or list, or one type); any
            other error fails at once.
    """

    max_attempts: int = 1
    initial_delay: float = 1.0
    backoff: float = 2.0
    max_delay: float = 300.0
    jitter: float = 0.1
    retry_on: tuple[type[BaseException], ...] = field(default=(Exception,))

    def __post_init__(self) -> None:
        for name in ("initial_delay", "max_delay"):
            if isinstance(value := getattr(self, name), timedelta):
                object.__setattr__(self, name, value.total_seconds())
        if isinstance(self.retry_on, type):  # one exception type, as "except ValueError:" reads
            object.__setattr__(self, "retry_on", (self.retry_on,))
        elif isinstance(self.retry_on, list | set | frozenset):
            object.__setattr__(self, "retry_on", tuple(self.retry_on))
        problems = _type_problems(self)
        if not problems:
            problems = _range_problems(self)
        if problems:
            raise ValidationError("invalid retry policy: " + "; ".join(problems), problems)

    def should_retry(self, error: BaseException, attempt: int) -> bool:
        """Whether a failure of ``attempt`` (1-based) with ``error`` gets another attempt."""
        return attempt < self.max_attempts and isinstance(error, self.retry_on)

    def delay(self, attempt: int, rand: float) -> float:
        """Seconds to wait after failed ``attempt``; ``rand`` is uniform in [0, 1)."""
        try:
            raw = self.initial_delay * self.backoff ** (attempt - 1)
        except OverflowError:  # after ~1000 attempts the float overflows; the cap applies anyway
            raw = self.max_delay if self.initial_delay > 0 else 0.0
        base = min(raw, self.max_delay)
        spread = base * self.jitter * (2 * rand - 1)
        return max(0.0, min(base + spread, self.max_delay))


def _type_problems(policy: RetryPolicy) -> list[str]:
    problems = []
    if not isinstance(policy.max_attempts, int) or isinstance(policy.max_attempts, bool):
        problems.append(f"max_attempts must be an integer, got {policy.max_attempts!r}")
    for name in ("initial_delay", "max_delay"):  # waited for as timers: a duration's limits apply
        if (problem := duration_problem(getattr(policy, name), name)) is not None:
            problems.append(problem)
    for name in ("backoff", "jitter"):
        value = getattr(policy, name)
        if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
            problems.append(f"{name} must be a number, got {value!r}")
    retry_on = policy.retry_on
    if not isinstance(retry_on, tuple) or not all(
        isinstance(kind, type) and issubclass(kind, BaseException) for kind in retry_on
    ):
        problems.append(f"retry_on must be a tuple of exception types, got {retry_on!r}")
    return problems


def _range_problems(policy: RetryPolicy) -> list[str]:
    problems = []
    if policy.max_attempts < 1:
        problems.append("max_attempts must be at least 1")
    if policy.initial_delay < 0 or policy.max_delay < 0:
        problems.append("delays must not be negative")
    if policy.backoff < 1:
        problems.append("backoff must be at least 1")
    if not 0 <= policy.jitter <= 1:
        problems.append("jitter must be between 0 and 1")
    return problems


NO_RETRY = RetryPolicy()
