"""Running a step's body: guards, hooks, timeouts, retries decisions, groups."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from flowstar.engine.groups import ParallelGroup, StepGroup, gather
from flowstar.model.commands import COMMAND_TYPES, Complete
from flowstar.model.context import WorkflowContext, json_data
from flowstar.model.enums import StepStatus, StepType
from flowstar.model.errors import StepTimeoutError
from flowstar.model.gateways import BaseGateway
from flowstar.model.retry import NO_RETRY, RetryPolicy
from flowstar.model.steps import BaseStep, Step
from flowstar.model.transitions import InnerRecord, StepResult
from flowstar.tracing import record_step_error, traced_step

__all__ = ["describe_error", "failure", "output_of", "run_group", "run_step"]

Now = Callable[[], datetime]
Recorder = Callable[[InnerRecord], None]


def describe_error(error: BaseException) -> str:
    """``"TypeName: message"``, the form stored on records and events."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


async def _call_body(step: Step, context: WorkflowContext) -> Any:
    timeout = getattr(step, "timeout", None)
    if timeout is None:
        return await step.execute(context)
    try:
        return await asyncio.wait_for(step.execute(context), timeout)
    except TimeoutError as exc:
        raise StepTimeoutError(f"step {step.name!r} exceeded its {timeout}s timeout") from exc


async def _run_inner(step: Step, context: WorkflowContext, record: Recorder, now: Now) -> Any:
    started = now()
    try:
        if isinstance(step, StepGroup):
            result = await run_group(step, context, record, now)
        else:
            result = await _call_body(step, context)
    except Exception as exc:
        record(
            InnerRecord(
                step_name=step.name,
                step_type=StepType.MACHINE.value,
                status=StepStatus.FAILED,
                started_at=started,
                completed_at=now(),
                error=describe_error(exc),
            )
        )
        raise
    record(
        InnerRecord(
            step_name=step.name,
            step_type=StepType.MACHINE.value,
            status=StepStatus.SUCCEEDED,
            started_at=started,
            completed_at=now(),
            output=_json_output(step.name, result),
        )
    )
    return result


async def run_group(group: StepGroup, context: WorkflowContext, record: Recorder, now: Now | None = None) -> list[Any]:
    """Run a group's inner steps, reporting each through ``record``."""
    clock = now or _utcnow
    if not isinstance(group, ParallelGroup):
        return [await _run_inner(step, context, record, clock) for step in group.steps]
    branches = [context.branch() for _ in group.steps]
    results = await gather(*(_run_inner(s, b, record, clock) for s, b in zip(group.steps, branches, strict=True)))
    for branch in branches:
        context.update(branch.changes)
    if group.callback is not None:
        results.append(await _run_inner(group.callback, context, record, clock))
    return results


def _utcnow() -> datetime:
    from datetime import UTC

    return datetime.now(UTC)


def _json_output(step_name: str, result: Any) -> Any:
    return None if result is None else json_data(result, f"result of step {step_name!r}")


def output_of(step: Step, result: Any) -> Any:
    """A step's return value as JSON data; ``ContextSerializationError`` if it is none."""
    return json_data(result, f"result of step {step.name!r}")


async def failure(
    step: Step,
    context: WorkflowContext,
    error: Exception,
    *,
    attempt: int,
    policy: RetryPolicy | None,
    started: datetime,
    now: Now,
    inner: list[InnerRecord] | None = None,
) -> StepResult:
    """The outcome of a step that raised ``error``: hooks run, retry decided."""
    try:
        await step.on_failure(context, error)
    except Exception as hook_error:  # the step's own error is the one to report
        error.add_note(f"on_failure hook also failed: {describe_error(hook_error)}")
    effective = getattr(step, "retry_policy", None) or policy or NO_RETRY
    retry_at = None
    if effective.should_retry(error, attempt):
        retry_at = now() + timedelta(seconds=effective.delay(attempt, random.random()))  # noqa: S311
    return StepResult(
        status="failed",
        started_at=started,
        finished_at=now(),
        error=describe_error(error),
        retry_at=retry_at,
        # A step that fails for good keeps what it wrote (see ``apply_step_result``).
        changes=context.changes if retry_at is None else {},
        inner=inner if inner is not None else [],
    )


def _is_plain(step: Step) -> bool:
    """Whether running ``step`` is just awaiting ``execute``: no guard, gateway, group or timeout."""
    return (
        getattr(step.can_execute, "__func__", None) is _CAN_EXECUTE
        and not isinstance(step, (BaseGateway, StepGroup))
        and getattr(step, "timeout", None) is None
    )


async def _run_body(
    step: Step, context: WorkflowContext, inner: list[InnerRecord], now: Now
) -> tuple[bool, Any, list[str] | None]:
    """``(ran, result, targets)`` of a step that is not plain: guard, gateway, group, timeout."""
    if getattr(step.can_execute, "__func__", None) is not _CAN_EXECUTE and not await step.can_execute(context):
        return False, None, None
    if isinstance(step, BaseGateway):
        choice = await step.evaluate(context)
        return True, None, [choice] if isinstance(choice, str) else list(choice)
    if isinstance(step, StepGroup):
        return True, await run_group(step, context, inner.append, now), None
    return True, await _call_body(step, context), None


@traced_step
async def run_step(
    step: Step,
    context: WorkflowContext,
    *,
    attempt: int,
    policy: RetryPolicy | None,
    now: Now,
    activation_id: str | None = None,
    version: str | None = None,
) -> StepResult:
    """Run one activation's body and describe the outcome; never raises for step errors.

    ``policy`` is the workflow's retry policy (the step's own one wins).  ``activation_id``
    and ``version`` (the definition's) only name the execution on its trace span (see
    ``flowstar.tracing``, which wraps this function in a span when OpenTelemetry is
    installed and leaves it untouched otherwise).
    """
    started = now()
    inner: list[InnerRecord] = []
    targets = None
    command = None
    try:
        # Most steps are plain: awaiting their body directly saves a coroutine per step.
        if _is_plain(step):
            result = await step.execute(context)
        else:
            ran, result, targets = await _run_body(step, context, inner, now)
            if not ran:
                return StepResult(status="skipped", started_at=started, finished_at=now())
        if isinstance(result, COMMAND_TYPES):
            # What happens next, not an output; a completion's result is its output.
            command = result
            result = result.result if isinstance(result, Complete) else None
        output = None if result is None else output_of(step, result)
        if getattr(step.on_success, "__func__", None) is not _ON_SUCCESS:
            await step.on_success(context, result)
    except Exception as exc:
        record_step_error(exc)
        return await failure(step, context, exc, attempt=attempt, policy=policy, started=started, now=now, inner=inner)
    return StepResult(
        status="succeeded",
        started_at=started,
        finished_at=now(),
        changes=context.changes,
        output=output,
        targets=targets,
        inner=inner,
        command=command,
    )


# A hook whose bound method wraps one of these is ``BaseStep``'s no-op (not overridden by the
# class or the instance): it is not called.
_CAN_EXECUTE = BaseStep.can_execute
_ON_SUCCESS = BaseStep.on_success
