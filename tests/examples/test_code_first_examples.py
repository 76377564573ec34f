"""The code-first examples (``examples/code_first_*.py``): what each ``main()`` ends with.

Every ``main()`` gives the process-wide ``flowstar.flow.engine`` facade an engine of its
own and closes it; the autouse fixture checks that none is left for the next test.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from types import ModuleType

import pytest
from structlog.testing import capture_logs

from flowstar import ManualClock, WorkflowStatus
from flowstar.flow import FlowRun
from flowstar.flow import engine as facade
from tests.examples.conftest import run_example

Loader = Callable[[str], ModuleType]

COMPLETED = WorkflowStatus.COMPLETED
START = ManualClock().now()  # where every example's manual clock starts
# The first retry is due one second (give or take the 10% jitter) after the failure.
FIRST_RETRY = re.compile(r"after the first call: running at call_external_api, next attempt at 00:00:0[01]")


@pytest.fixture(autouse=True)
async def no_engine_left_in_the_facade() -> AsyncIterator[None]:
    """A test starts with the facade unset, and fails if its example left an engine in it.

    The engine's log lines are kept apart meanwhile: unconfigured, structlog prints them
    among the example's own output.
    """
    assert facade._engine is None, "an earlier test left an engine in flowstar.flow.engine"
    with capture_logs():
        yield
    left = facade._engine
    if left is not None:
        await facade.close()
        pytest.fail(f"the example left {left!r} in flowstar.flow.engine")


def printed(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The lines the example printed so far."""
    return capsys.readouterr().out.splitlines()


async def test_user_onboarding_sends_the_welcome_email(load_example: Loader) -> None:
    example = load_example("code_first_user_onboarding")
    run = await example.main()
    assert (run.status, run.current_step) == (COMPLETED, "send_welcome_email")
    assert run.data == {"user_id": 123, "email_sent": True, "profile_completed": False}
    assert example.sent == [123]


async def test_order_fulfillment_ships_a_large_order_only_after_its_approval(
    load_example: Loader, capsys: pytest.CaptureFixture[str]
) -> None:
    small, large = await load_example("code_first_order_fulfillment").main()
    assert small.status is COMPLETED
    assert small.data == {
        "order_id": 1,
        "order_total": 250.0,
        "payment_confirmed": True,
        "approved_by": "",
        "items_reserved": True,
        "shipped": True,
    }
    assert printed(capsys)[1] == "order 2: waiting at require_approval, waiting for order_approved"
    assert (large.status, large.current_step) == (COMPLETED, "ship_order")
    assert (large.context.approved_by, large.context.items_reserved, large.context.shipped) == ("dana", True, True)


@pytest.mark.parametrize("review_decision", ["approved", "denied"])
async def test_loan_application_routes_by_credit_score(
    load_example: Loader, capsys: pytest.CaptureFixture[str], review_decision: str
) -> None:
    runs = await load_example("code_first_loan_application").main(review_decision)
    outcomes = {score: (run.status, run.context.state, run.context.decision) for score, run in runs.items()}
    assert outcomes == {
        750: (COMPLETED, "approved", "approved"),
        650: (COMPLETED, review_decision, review_decision),
        500: (COMPLETED, "denied", "denied"),
    }
    assert [run.current_step for run in runs.values()] == ["approved_state", "record_review", "denied_state"]
    assert printed(capsys)[0] == "score 650: waiting at manual_review_state"


async def test_api_integration_retries_until_the_api_answers(
    load_example: Loader, capsys: pytest.CaptureFixture[str]
) -> None:
    example = load_example("code_first_api_integration")
    run = await example.main(failures=4)
    assert run.status is COMPLETED
    assert example.api.calls == 5
    assert run.data["outcome"] == "imported"
    assert run.context.operation_result == "imported 3 items"
    assert run.context.api_response == {"endpoint": "/orders", "items": 3}
    assert FIRST_RETRY.fullmatch(printed(capsys)[0])


async def test_api_integration_fails_after_the_steps_own_ten_attempts(load_example: Loader) -> None:
    example = load_example("code_first_api_integration")
    run = await example.main(failures=20)
    assert run.status is WorkflowStatus.FAILED
    assert example.api.calls == 10  # the step's Retry, not the workflow's five attempts
    assert run.error == "step 'call_external_api' failed after 10 attempt(s): Exception: API call failed: 503"
    assert run.instance.failed_step == "call_external_api"


async def test_api_integration_recovers_from_the_expected_error(load_example: Loader) -> None:
    example = load_example("code_first_api_integration")
    run = await example.main(failures=0, items=0)
    assert (run.status, run.current_step, run.data["outcome"]) == (COMPLETED, "error_recovery_step", "recovered")
    assert (run.context.error_details, run.context.operation_result) == ("nothing to import", "")
    assert example.api.calls == 1


async def test_document_approval_escalates_a_review_that_takes_three_days(
    load_example: Loader, capsys: pytest.CaptureFixture[str]
) -> None:
    example = load_example("code_first_document_approval")
    prompt, slow = await example.main()
    assert example.emails == [("rita", 1), ("rita", 2)]
    # Document 1 is as its review left it after the three days: its timeout did not fire.
    assert review(prompt) == (COMPLETED, "approve_document", "approved", True, "Looks good", False)
    assert printed(capsys)[1] == "document 2: waiting at escalate_review, escalated=True"
    assert review(slow) == (COMPLETED, "request_revision", "revision requested", False, "Needs a summary", True)


def review(run: FlowRun) -> tuple[object, ...]:
    """Status, step, outcome, and the review's fields of a document approval run."""
    ctx = run.context
    return (run.status, run.current_step, run.data["outcome"], ctx.approved, ctx.reviewer_notes, ctx.escalated)


async def test_event_workflows_start_at_the_event_time_plus_their_offset(load_example: Loader) -> None:
    example = load_example("code_first_event_workflows")
    runs = {run.name: run for run in await example.main()}
    assert sorted(runs) == ["order_processing_workflow", "post_meeting_followup", "pre_appointment_reminder"]
    assert all(run.status is COMPLETED for run in runs.values())
    noon = START.replace(hour=12)
    ran_at = {name: run.instance.completed_at for name, run in runs.items()}
    assert ran_at == {
        "order_processing_workflow": noon,  # at once
        "pre_appointment_reminder": noon + timedelta(hours=2),  # an hour before 15:00
        "post_meeting_followup": noon + timedelta(hours=1, minutes=30),  # 30 minutes after 13:00
    }
    order = runs["order_processing_workflow"].context
    assert (order.order_id, order.processed) == (1001, True)
    reminder = runs["pre_appointment_reminder"].context
    assert (reminder.entity_id, reminder.patient) == ("appt-7", "Ann")
    assert example.sent == ["13:30 follow-up on meeting-3 to bo, cy", "14:00 reminder to Ann (appt-7)"]


async def test_reminders_remind_three_times_a_day_apart_then_escalate(load_example: Loader) -> None:
    run = await load_example("code_first_reminders").main()
    assert (run.status, run.current_step) == (COMPLETED, "escalate")
    assert (run.context.reminders_sent, run.context.escalated) == (3, True)
    times = [datetime.fromisoformat(t) for t in run.context.reminder_times]
    assert times == [START, START + timedelta(days=1), START + timedelta(days=2)]


async def test_signals_reach_every_waiting_form_and_only_the_paid_order(
    load_example: Loader, capsys: pytest.CaptureFixture[str]
) -> None:
    forms, paid, unpaid = await load_example("code_first_signals").main()
    assert printed(capsys)[0] == "the form signal woke 2 instances"
    assert [(form.context.user_id, form.status, form.context.user_name) for form in forms] == [
        (1, COMPLETED, "John"),
        (2, COMPLETED, "John"),
    ]
    assert forms[1].context.form_data == {"name": "John", "phone": "555-1234"}
    assert forms[1].context.submission_time == "2030-01-01T00:00:00+00:00"

    assert (paid.status, paid.current_step) == (COMPLETED, "fulfill_order")
    ctx = paid.context
    assert (ctx.event_name, ctx.entity_id, ctx.amount, ctx.fulfilled) == ("payment_received", "payment-55", 19.9, True)
    assert ctx.event_id

    assert (unpaid.status, unpaid.current_step) == (WorkflowStatus.FAILED, "cancel_order")
    assert unpaid.error == "step 'cancel_order' failed the workflow: no payment within 48 hours"
    assert (unpaid.context.event_id, unpaid.context.fulfilled) == ("", False)


async def test_two_examples_run_one_after_the_other_each_on_its_own_engine(load_example: Loader) -> None:
    first = await load_example("code_first_loan_application").main()
    second = await load_example("code_first_user_onboarding").main()
    assert first[750].status is COMPLETED
    assert second.status is COMPLETED
    assert first[750].id != second.id


SCRIPT_OUTPUT: dict[str, list[str | re.Pattern[str]]] = {
    "code_first_user_onboarding": ["status: completed, email sent: True"],
    "code_first_order_fulfillment": [
        "order 1: completed, shipped=True",
        "order 2: waiting at require_approval, waiting for order_approved",
        "order 2: completed, approved by dana, shipped=True",
    ],
    "code_first_loan_application": [
        "score 650: waiting at manual_review_state",
        "score 750: completed, state approved, decision approved",
        "score 650: completed, state approved, decision approved",
        "score 500: completed, state denied, decision denied",
    ],
    "code_first_api_integration": [
        FIRST_RETRY,
        "completed after 5 calls: imported 3 items",
    ],
    "code_first_document_approval": [
        "document 1: completed, approved: Looks good",
        "document 2: waiting at escalate_review, escalated=True",
        "document 2: completed, revision requested: Needs a summary",
    ],
    "code_first_event_workflows": [
        "order 1001: completed",
        "13:30 follow-up on meeting-3 to bo, cy",
        "14:00 reminder to Ann (appt-7)",
    ],
    "code_first_reminders": [
        "sent 1, next at 2030-01-02 00:00:00+00:00",
        "completed: sent 3 at 2030-01-01T00:00:00+00:00, 2030-01-02T00:00:00+00:00, 2030-01-03T00:00:00+00:00",
    ],
    "code_first_signals": [
        "the form signal woke 2 instances",
        "profile form of user 1: completed, user name John",
        "profile form of user 2: completed, user name John",
        "order 7: completed, payment_received payment-55 of 19.9, fulfilled=True",
        "order 8: failed: step 'cancel_order' failed the workflow: no payment within 48 hours",
    ],
    "code_first_review_action": [
        "expense 42: waiting at await_review",
        "without reviewer_notes: 422 (/reviewer_notes this field is required)",
        "with every field: 200, the instance is completed",
        "expense 42: completed, reviewed with priority high: Approved",
    ],
}
"""What ``python examples/<name>.py`` prints, line by line (a pattern where the time varies)."""


@pytest.mark.parametrize("name", sorted(SCRIPT_OUTPUT))
def test_runs_as_a_script(name: str) -> None:
    result = run_example(name)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(SCRIPT_OUTPUT[name]), result.stdout
    for line, expected in zip(lines, SCRIPT_OUTPUT[name], strict=True):
        if isinstance(expected, re.Pattern):
            assert expected.fullmatch(line), line
        else:
            assert line == expected
