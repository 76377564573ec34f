"""Compiling @workflow classes: the definition's steps, edges, checks and options."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Literal

import msgspec
import pytest

from flowstar import BaseHumanStep, BaseMachineStep, RetryPolicy, ValidationError, WorkflowRegistry, default_registry
from flowstar.flow import Retry, complete, event_workflow, fail, get_context, goto, sleep, step, wait, wait_for_event
from flowstar.flow import workflow as flow_workflow
from flowstar.model.definition import EventTrigger


def edges_of(cls: type) -> set[tuple[str, str]]:
    return {(e.source, e.target) for e in cls.definition.edges}


def test_steps_in_class_order_with_the_start_step_and_command_routing(registry: WorkflowRegistry) -> None:
    @flow_workflow("orders", version="2.1.0", registry=registry)
    class Orders:
        """Takes an order to the door."""

        @step()
        def ship(self):
            return complete()

        @step(start=True)
        def pay(self):
            """Charge the card."""
            return goto(self.ship)

    definition = Orders.definition
    assert list(definition.steps) == ["ship", "pay"]
    assert definition.initial_step == "pay"
    assert (definition.name, definition.version, definition.routing) == ("orders", "2.1.0", "commands")
    assert definition.description == "Takes an order to the door."
    assert definition.steps["pay"].description == "Charge the card."
    assert all(isinstance(s, BaseMachineStep) for s in definition.steps.values())
    assert registry.get_definition("orders") is definition
    assert definition.metadata["front_end"] == "code"
    assert definition.metadata["class"].endswith("Orders")


def test_without_start_the_first_step_starts(registry: WorkflowRegistry) -> None:
    @flow_workflow("first", registry=registry)
    class First:
        @step
        def a(self):
            return goto("b")

        @step
        def b(self):
            return complete()

    assert First.definition.initial_step == "a"


def test_registers_in_the_default_registry_without_registry() -> None:
    @flow_workflow("flow_default_registry_probe", version="9.9.9")
    class Probe:
        @step(start=True)
        def only(self):
            return complete()

    assert default_registry().get_definition("flow_default_registry_probe", "9.9.9") is Probe.definition
    default_registry().deactivate("flow_default_registry_probe", "9.9.9")


def test_edges_are_read_from_the_source(registry: WorkflowRegistry) -> None:
    @flow_workflow("loans", registry=registry)
    class Loans:
        @step(start=True)
        def check_credit(self):
            ctx = get_context()
            if ctx["score"] > 700:
                return goto(self.approved)
            if ctx["score"] > 600:
                return goto("manual_review")
            return goto(self.denied)

        @step()
        def manual_review(self):
            return wait.for_signal("review_done", timeout=timedelta(days=1), on_timeout=self.denied)

        @step()
        def approved(self):
            return complete()

        @step()
        async def reminder(self):
            if get_context()["n"] < 3:
                return sleep(60)
            return sleep(timedelta(hours=1), next=self.denied)

        @step()
        def denied(self):
            return fail("denied")

    assert edges_of(Loans) == {
        ("check_credit", "approved"),
        ("check_credit", "manual_review"),
        ("check_credit", "denied"),
        ("manual_review", "denied"),  # on_timeout
        ("manual_review", "approved"),  # the default next: the step declared after it
        ("reminder", "reminder"),  # sleep without next runs the step again
        ("reminder", "denied"),
    }
    assert Loans.definition.terminal_steps == {"approved", "denied"}
    mermaid = Loans.definition.to_mermaid()
    assert "check_credit" in mermaid
    assert "-->" in mermaid


def test_targets_computed_at_run_time_leave_just_the_node(registry: WorkflowRegistry) -> None:
    @flow_workflow("dynamic", registry=registry)
    class Dynamic:
        @step(start=True)
        def route(self):
            return goto(get_context()["where"])

        @step()
        def end(self):
            return complete()

    assert edges_of(Dynamic) == set()
    assert set(Dynamic.definition.steps) == {"route", "end"}


def test_awaited_sleep_and_builtin_any_are_not_commands(registry: WorkflowRegistry) -> None:
    import asyncio

    @flow_workflow("not_commands", registry=registry)
    class NotCommands:
        @step(start=True)
        async def work(self):
            await asyncio.sleep(0)
            if any([1]):
                return goto(self.done)
            return complete()

        @step()
        def done(self):
            return complete()

    assert edges_of(NotCommands) == {("work", "done")}


def test_wait_any_takes_its_way_out_from_its_own_arguments(registry: WorkflowRegistry) -> None:
    @flow_workflow("any_wait", registry=registry)
    class AnyWait:
        @step(start=True)
        def ask(self):
            return wait.any(
                wait.for_signal("yes"),
                wait_for_event("paid", filter="amount > 10"),
                timeout=60,
                on_timeout=self.expired,
                next=self.answered,
            )

        @step()
        def middle(self):
            return complete()

        @step()
        def answered(self):
            return complete()

        @step()
        def expired(self):
            return complete()

    assert edges_of(AnyWait) == {("ask", "expired"), ("ask", "answered")}


def test_a_wait_in_the_last_step_without_next_is_refused() -> None:
    with pytest.raises(ValidationError, match="'finish' waits without next= but no step is declared after it"):

        @flow_workflow("dangling_wait", registry=WorkflowRegistry())
        class Dangling:
            @step(start=True)
            def begin(self):
                return goto(self.finish)

            @step()
            def finish(self):
                return wait.for_signal("never")


def test_a_wait_in_the_last_step_with_next_is_fine(registry: WorkflowRegistry) -> None:
    @flow_workflow("looping_wait", registry=registry)
    class Looping:
        @step(start=True)
        def begin(self):
            return complete()

        @step()
        def finish(self):
            return wait.for_signal("again", next=self.begin)

    assert ("finish", "begin") in edges_of(Looping)


def test_unknown_literal_targets_are_refused() -> None:
    with pytest.raises(ValidationError) as caught:

        @flow_workflow("typo", registry=WorkflowRegistry())
        class Typo:
            @step(start=True)
            def begin(self):
                return goto("shipp")

            @step()
            def ship(self):
                return wait.for_signal("x", timeout=5, on_timeout="nowhere", next=self.ship)

    assert caught.value.errors == [
        "step 'begin' goes to 'shipp', which is not a step",
        "step 'ship' goes to 'nowhere', which is not a step",
    ]


def test_no_steps_or_two_starts_are_refused() -> None:
    with pytest.raises(ValidationError, match="has no @step methods"):

        @flow_workflow("empty", registry=WorkflowRegistry())
        class Empty:
            pass

    with pytest.raises(ValidationError, match="more than one start step: a, b"):

        @flow_workflow("two_starts", registry=WorkflowRegistry())
        class TwoStarts:
            @step(start=True)
            def a(self):
                return complete()

            @step(start=True)
            def b(self):
                return complete()


def test_retry_policies_map_onto_the_runtime(registry: WorkflowRegistry) -> None:
    @flow_workflow(
        "api",
        default_retry=Retry(max_attempts=5, base_delay=timedelta(seconds=2), max_delay=timedelta(minutes=5)),
        registry=registry,
    )
    class Api:
        @step(start=True, retry=Retry(max_attempts=10, base_delay=1, backoff_factor=3.0), timeout=timedelta(seconds=30))
        def call(self):
            return complete()

        @step()
        def other(self):
            return complete()

    assert Api.definition.retry_policy == RetryPolicy(max_attempts=5, initial_delay=2.0, backoff=2.0, max_delay=300.0)
    call = Api.definition.steps["call"]
    assert call.retry_policy == RetryPolicy(max_attempts=10, initial_delay=1.0, backoff=3.0, max_delay=300.0)
    assert call.timeout == 30.0
    assert Api.definition.steps["other"].retry_policy is None


def test_bad_retry_settings_fail_where_written() -> None:
    with pytest.raises(ValidationError, match="max_attempts must be at least 1"):
        Retry(max_attempts=0)
    with pytest.raises(ValidationError, match="base_delay must be a finite, non-negative time"):
        Retry(base_delay=-1)


class Review(msgspec.Struct):
    notes: str
    score: int = 3


@dataclasses.dataclass
class Checklist:
    done: bool


def test_a_step_with_parameters_is_a_human_step_with_a_form(registry: WorkflowRegistry) -> None:
    @flow_workflow("expenses", registry=registry)
    class Expenses:
        @step(start=True)
        def start_review(self):
            return goto(self.await_review)

        @step(
            title="Review the expense",
            assignee_group="managers",
            candidate_users=["ann"],
            action="expense_submit_review",
        )
        def await_review(self, reviewer_notes: str, priority: Literal["low", "medium", "high"] = "medium"):
            return complete()

        @step(form=Review)
        def second_look(self):
            return complete()

    human = Expenses.definition.steps["await_review"]
    assert isinstance(human, BaseHumanStep)
    assert human.runs_on_completion is True
    assert (human.title, human.assignee_group, list(human.candidate_users)) == (
        "Review the expense",
        "managers",
        ["ann"],
    )
    assert human.form_schema == {
        "title": "Await review",
        "type": "object",
        "properties": {
            "reviewer_notes": {"type": "string"},
            "priority": {"enum": ["high", "low", "medium"], "default": "medium"},
        },
        "required": ["reviewer_notes"],
    }
    assert human.problems() == []
    struct_form = Expenses.definition.steps["second_look"]
    assert isinstance(struct_form, BaseHumanStep)
    assert struct_form.form_schema is not None
    assert struct_form.form_schema["required"] == ["notes"]
    assert struct_form.title == "Second look"
    assert Expenses.definition.metadata["actions"] == {"expense_submit_review": "await_review"}
    assert isinstance(Expenses.definition.steps["start_review"], BaseMachineStep)


def test_task_options_on_a_step_without_input_are_refused() -> None:
    with pytest.raises(ValidationError, match="takes no input: action, assignee"):

        @flow_workflow("no_input", registry=WorkflowRegistry())
        class NoInput:
            @step(start=True, action="go")
            def begin(self):
                return complete()


def test_variadic_parameters_are_refused() -> None:
    with pytest.raises(ValidationError, match="parameter 'rest' must be a named parameter"):

        @flow_workflow("variadic", registry=WorkflowRegistry())
        class Variadic:
            @step(start=True)
            def begin(self, *rest: str):
                return complete()


def test_the_context_schema_is_the_input_schema(registry: WorkflowRegistry) -> None:
    @flow_workflow("typed", registry=registry)
    class Typed:
        @dataclasses.dataclass
        class Context:
            order_id: int
            note: str = ""

        @step(start=True)
        def only(self):
            return complete()

    schema = Typed.definition.input_schema
    assert schema is not None
    assert schema["required"] == ["order_id"]
    assert schema["properties"]["order_id"] == {"type": "integer"}
    Typed.definition.validate_input({"order_id": 1})
    with pytest.raises(ValidationError):
        Typed.definition.validate_input({"order_id": "x"})


def test_event_workflows_carry_their_trigger(registry: WorkflowRegistry) -> None:
    @event_workflow("appointment_due", offset_minutes=-60, registry=registry)
    class PreAppointmentReminder:
        @step(start=True)
        def send_reminder(self):
            return complete()

    definition = PreAppointmentReminder.definition
    assert definition.name == "pre_appointment_reminder"
    assert definition.trigger == EventTrigger(event="appointment_due", offset_seconds=-3600.0)
    assert definition.input_schema is None


def test_a_context_that_is_no_model_is_refused() -> None:
    with pytest.raises(ValidationError, match="Context must be a pydantic model, a msgspec Struct or a dataclass"):

        @flow_workflow("bad_context", registry=WorkflowRegistry())
        class BadContext:
            class Context:
                order_id: int

            @step(start=True)
            def only(self):
                return complete()


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: flow_workflow("r", default_retry="x"), "workflow(default_retry=...) takes a Retry(...), got 'x'"),
        (lambda: event_workflow("due", default_retry=3), "event_workflow(default_retry=...) takes a Retry(...), got 3"),
        (lambda: step(retry=5), "@step(retry=...) takes a Retry(...), got 5"),
        (lambda: Retry(retry_on="ValueError"), "retry_on must be a tuple of exception types, got 'ValueError'"),
        (lambda: flow_workflow("f", registry=WorkflowRegistry())(len), "@workflow('f') decorates a class"),
    ],
)
def test_options_of_the_wrong_type_are_refused_where_they_are_written(build, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        build()
    assert message in str(info.value)


def test_one_exception_type_is_a_retry_on_tuple() -> None:
    assert Retry(retry_on=ValueError).policy().retry_on == (ValueError,)


def test_a_form_that_is_no_type_with_fields_is_refused() -> None:
    with pytest.raises(ValidationError, match="step 'review': no form schema .* is not a type with fields"):

        @flow_workflow("form_int", registry=WorkflowRegistry())
        class FormInt:
            @step(start=True, form=int)
            def review(self):
                return complete()
