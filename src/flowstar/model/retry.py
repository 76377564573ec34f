"""Retry policies: how often a failing step is tried again and how long to wait between."""

from __future__ import annotations

from dataclasses import dataclass, field

from flowstar.model.errors import ValidationError

__all__ = ["NO_RETRY", "RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempts with exponential back-off and jitter.

    Args:
        max_attempts: total tries, the first one included (1 = no retry).
        initial_delay: seconds before the second attempt.
        backoff: factor applied to the delay after each failed attempt.
        max_delay: upper bound of any delay, in seconds.
        jitter: random spread as a fraction of the delay (0.1 = +/-10%), so that many
            instances failing together do not retry in lock-step.
        retry_on: exception types that are retried; any other error fails at once.
    """

    max_attempts: int = 1
    initial_delay: float = 1.0
    backoff: float = 2.0
    max_delay: float = 300.0
    jitter: float = 0.1
    retry_on: tuple[type[BaseException], ...] = field(default=(Exception,))

    def __post_init__(self) -> None:
        problems = []
        if self.max_attempts < 1:
            problems.append("max_attempts must be at least 1")
        if self.initial_delay < 0 or self.max_delay < 0:
            problems.append("delays must not be negative")
        if self.backoff < 1:
            problems.append("backoff must be at least 1")
        if not 0 <= self.jitter <= 1:
            problems.append("jitter must be between 0 and 1")
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


NO_RETRY = RetryPolicy()
