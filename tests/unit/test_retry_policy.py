"""RetryPolicy: back-off delays, which errors retry, and invalid policies."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from flowstar import RetryPolicy, StepTimeoutError, ValidationError


@pytest.mark.parametrize(
    ("attempt", "rand", "expected"),
    [
        (1, 0.5, 2.0),  # rand 0.5 means no jitter
        (2, 0.5, 6.0),
        (3, 0.5, 18.0),
        (1, 0.0, 1.8),  # -10%
        (3, 0.0, 16.2),
        (3, 0.75, 18.9),  # +5%
        (5, 0.5, 100.0),  # 2 * 3**4 = 162, capped
        (5, 0.99, 100.0),  # jitter never exceeds the cap
        (5, 0.0, 90.0),  # jitter applies below the cap
        (5000, 0.5, 100.0),  # no overflow after thousands of attempts
    ],
)
def test_delay_is_exponential_with_jitter_and_capped(attempt: int, rand: float, expected: float) -> None:
    policy = RetryPolicy(max_attempts=10, initial_delay=2.0, backoff=3.0, max_delay=100.0, jitter=0.1)
    assert policy.delay(attempt, rand) == pytest.approx(expected)


def test_delay_without_jitter_and_with_zero_delay() -> None:
    assert RetryPolicy(initial_delay=1, backoff=2, jitter=0).delay(4, 0.9) == 8.0
    assert RetryPolicy(initial_delay=0, jitter=0.5).delay(3, 0.9) == 0.0
    assert RetryPolicy(initial_delay=0, backoff=2).delay(5000, 0.5) == 0.0
    assert RetryPolicy(initial_delay=1, backoff=2, max_delay=50).delay(5000, 0.5) == 50.0


def test_jittered_delays_stay_within_their_band() -> None:
    policy = RetryPolicy(initial_delay=10, backoff=2, jitter=0.25, max_delay=1000)
    for i in range(100):
        delay = policy.delay(2, i / 100)
        assert 15.0 <= delay < 25.0


def test_should_retry_counts_attempts_and_filters_errors() -> None:
    policy = RetryPolicy(max_attempts=3, retry_on=(ConnectionError, TimeoutError))
    assert policy.should_retry(ConnectionError(), 1)
    assert policy.should_retry(ConnectionResetError(), 2)  # subclasses count
    assert policy.should_retry(StepTimeoutError("slow"), 1)
    assert not policy.should_retry(ConnectionError(), 3)  # attempts used up
    assert not policy.should_retry(ValueError(), 1)
    assert not RetryPolicy().should_retry(Exception(), 1)  # the default: one attempt


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"max_attempts": 0}, "max_attempts must be at least 1"),
        ({"initial_delay": -1}, "delays must not be negative"),
        ({"max_delay": -1}, "delays must not be negative"),
        ({"backoff": 0.5}, "backoff must be at least 1"),
        ({"jitter": 1.5}, "jitter must be between 0 and 1"),
        ({"max_attempts": "3"}, "max_attempts must be an integer, got '3'"),
        ({"max_attempts": True}, "max_attempts must be an integer, got True"),
        ({"initial_delay": "1"}, "initial_delay must be a timedelta or a number of seconds, got '1'"),
        ({"initial_delay": float("nan")}, "initial_delay must be a number of seconds, got nan"),
        ({"max_delay": float("inf")}, "max_delay must be at most 36600 days, got inf"),
        ({"backoff": "2"}, "backoff must be a number, got '2'"),
        ({"jitter": float("nan")}, "jitter must be a number, got nan"),
        ({"retry_on": "ValueError"}, "retry_on must be a tuple of exception types, got 'ValueError'"),
        ({"retry_on": (ValueError, int)}, "retry_on must be a tuple of exception types"),
    ],
)
def test_invalid_policies_are_refused(kwargs: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError) as info:
        RetryPolicy(**kwargs)
    assert problem in str(info.value)


def test_one_exception_type_and_timedelta_delays_are_accepted() -> None:
    policy = RetryPolicy(
        max_attempts=2, initial_delay=timedelta(seconds=3), max_delay=timedelta(minutes=1), retry_on=ValueError
    )
    assert (policy.initial_delay, policy.max_delay, policy.retry_on) == (3.0, 60.0, (ValueError,))
    assert policy.should_retry(ValueError(), 1)
    assert not policy.should_retry(KeyError(), 1)
