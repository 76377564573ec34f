"""What callers hand the engine, checked where it enters (pure): times, priorities, bulk ids,
comment texts, and how a database's refusal of a value is worded."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import exc as sa_exc

from flowstar import BaseHumanStep, ContextSerializationError, FormValidationError, ValidationError
from flowstar.db._errors import translate
from flowstar.flow import sleep
from flowstar.model.bulk import BulkFilter, BulkRequest
from flowstar.model.moments import aware
from flowstar.model.pages import InstanceQuery, TaskQuery
from flowstar.model.task_transitions import check_comment
from flowstar.model.waits import SignalStep
from tests.unit.helpers import Set, linear

PLUS_14 = timezone(timedelta(hours=14))
MINUS_14 = timezone(timedelta(hours=-14))


def test_an_aware_time_within_range_passes_unchanged() -> None:
    moment = datetime(2030, 1, 1, 9, tzinfo=PLUS_14)
    assert aware(moment, "at") is moment


@pytest.mark.parametrize(
    ("moment", "message", "detail"),
    [
        (datetime(2030, 1, 1), "at needs a time zone (add +00:00 or Z)", "at: 2030-01-01T00:00:00 has no time zone"),  # noqa: DTZ001
        (datetime(1, 1, 1, tzinfo=PLUS_14), "at is out of range", "at: 0001-01-01T00:00:00+14:00 is not within"),
        (datetime(9999, 12, 31, 23, tzinfo=MINUS_14), "at is out of range", "at: 9999-12-31T23:00:00-14:00 is not"),
    ],
)
def test_a_time_no_store_can_hold_is_refused(moment: datetime, message: str, detail: str) -> None:
    with pytest.raises(ValidationError) as refused:
        aware(moment, "at")
    assert str(refused.value) == message
    assert refused.value.errors[0].startswith(detail)


def test_the_queries_check_their_times_and_priority() -> None:
    naive = datetime(2030, 1, 1)  # noqa: DTZ001 - the naive time is the point
    for make, field in (
        (lambda: InstanceQuery(created_after=naive), "created_after"),
        (lambda: InstanceQuery(created_before=naive), "created_before"),
        (lambda: TaskQuery(due_before=naive), "due_before"),
    ):
        with pytest.raises(ValidationError, match=f"^{field} needs a time zone"):
            make()
    for priority in (-1, 101, True):
        with pytest.raises(ValidationError, match="min_priority must be an integer from 0 to 100"):
            TaskQuery(min_priority=priority)
    assert TaskQuery(min_priority=0, due_before=datetime(2030, 1, 1, tzinfo=UTC)).min_priority == 0


def test_a_bulk_filter_takes_the_ids_the_engine_hands_out() -> None:
    ids = [uuid.uuid4(), uuid.uuid4()]
    request = BulkRequest(kind="cancel", filter=BulkFilter(ids=ids))  # type: ignore[arg-type]
    request.check()
    assert request.filter.ids == tuple(str(i) for i in ids)
    with pytest.raises(ValidationError, match="filter.ids: '5' is not an id"):
        BulkRequest(kind="cancel", filter=BulkFilter(ids=[5])).check()  # type: ignore[list-item]
    naive = BulkRequest(kind="cancel", filter=BulkFilter(created_before=datetime(2030, 1, 1)))  # noqa: DTZ001
    with pytest.raises(ValidationError, match="^filter.created_before needs a time zone"):
        naive.check()


def test_a_text_is_named_for_what_it_is() -> None:
    assert check_comment("  looks good ") == "looks good"
    with pytest.raises(ValidationError, match="^a comment needs some text$"):
        check_comment(" ")
    with pytest.raises(ValidationError, match="^a reason needs some text$"):
        check_comment("", "reason")
    with pytest.raises(ValidationError, match="^a reason has at most"):
        check_comment("x" * 5000, "reason")


class _DriverError(Exception):
    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("driver_message", "sqlstate", "said"),
    [
        (
            "<class 'asyncpg.exceptions.CharacterNotInRepertoireError'>: invalid byte sequence for encoding"
            ' "UTF8": 0x00',
            "22021",
            "the database refused a value: text cannot contain the NUL character (\\u0000) in this database",
        ),
        (
            "<class 'asyncpg.exceptions.DataError'>: invalid input for query argument $2: 2147483648"
            " (value out of int32 range)",
            "22003",
            "the database refused a value: invalid value 2147483648 (value out of int32 range)",
        ),
    ],
)
def test_a_refused_value_is_said_without_driver_classes_or_placeholders(
    driver_message: str, sqlstate: str, said: str
) -> None:
    error = sa_exc.DataError("SELECT ...", {}, _DriverError(driver_message, sqlstate))
    translated = translate(error, "read tasks", write=False)
    assert isinstance(translated, ContextSerializationError)
    assert str(translated) == said


def _human(**options: Any) -> BaseHumanStep:
    return BaseHumanStep("h", **options)


@pytest.mark.parametrize(
    ("step", "problem"),
    [
        (lambda: SignalStep("s", timeout=math.nan), "signal step 's': timeout must be a number of seconds, got nan"),
        (lambda: SignalStep("s", timeout=10**12), "signal step 's': timeout must be at most 36600 days"),
        (lambda: _human(due_in="2 days"), "step 'h': due_in must be a timedelta, got '2 days'"),
        (lambda: _human(follow_up=timedelta(days=10**6)), "step 'h': follow_up must be at most 36600 days"),
    ],
)
def test_a_duration_no_wake_time_can_follow_is_refused_with_the_definition(step: Any, problem: str) -> None:
    """Before, such a step crashed its activation and left the instance running for good."""
    with pytest.raises(ValidationError) as refused:
        linear("w", step(), Set("after"))
    assert any(p.startswith(problem) for p in refused.value.errors), refused.value.errors


def test_a_code_first_sleep_too_long_to_wake_from_is_refused() -> None:
    with pytest.raises(ValidationError, match="sleep duration must be at most 36600 days"):
        sleep(10**12)


def test_a_form_checks_the_formats_its_schema_names() -> None:
    step = _human(form_schema={"type": "object", "properties": {"mail": {"type": "string", "format": "email"}}})
    with pytest.raises(FormValidationError, match="is not a 'email'"):
        step.validate_form({"mail": "not-an-address"})
    step.validate_form({"mail": "bob@example.com"})
