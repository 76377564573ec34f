"""``Retry``: the code-first spelling of a ``RetryPolicy``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flowstar.flow.commands import Duration, seconds_of
from flowstar.model.retry import RetryPolicy

__all__ = ["Retry"]


@dataclass(frozen=True)
class Retry:
    """How often a step that raises is tried again, with exponential back-off.

    Args:
        max_attempts: total tries, the first included (1 = no retry).
        base_delay: the wait before the second attempt (a ``timedelta`` or seconds).
        max_delay: the longest wait between two attempts.
        backoff_factor: each wait is this many times the one before.
        jitter: random spread of each wait, as a fraction of it (0.1 = +/-10%).
        retry_on: the exception types that are retried; others fail the step at once.
    """

    max_attempts: int = 3
    base_delay: Duration = timedelta(seconds=1)
    max_delay: Duration = timedelta(minutes=5)
    backoff_factor: float = 2.0
    jitter: float = 0.1
    retry_on: tuple[type[BaseException], ...] = (Exception,)

    def __post_init__(self) -> None:
        self.policy()  # invalid settings fail where the Retry is written

    def policy(self) -> RetryPolicy:
        """The runtime's ``RetryPolicy`` for these settings.

        Raises:
            ValidationError: an invalid setting (no attempts, a negative delay, ...).
        """
        return RetryPolicy(
            max_attempts=self.max_attempts,
            initial_delay=seconds_of(self.base_delay, "base_delay"),
            backoff=self.backoff_factor,
            max_delay=seconds_of(self.max_delay, "max_delay"),
            jitter=self.jitter,
            retry_on=self.retry_on,
        )
