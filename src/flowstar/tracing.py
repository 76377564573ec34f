"""OpenTelemetry spans of workflow steps, and the trace context that SAQ jobs carry.

Each step execution is one span, ``flowstar.step``, opened around the engine's ``run_step``
(``traced_step``): spans that a step body opens nest under it, and it is the child of the span
that was current when the step's activation was dispatched.  Inside one process that is the
caller's context, which the inline dispatcher's tasks inherit; across SAQ the dispatcher
writes the W3C trace context into the job's kwargs (``trace_carrier``) and the job function
runs the activation under it (``job_context``), so the trace of the HTTP request that
started an instance goes on through the workers that run its steps.

Only the OpenTelemetry *API* is used: spans reach an exporter when the host configures an
SDK ``TracerProvider``; without one no step span is made (it could record nothing), though
a current context still travels with jobs.  Without the ``otel`` extra installed at all,
nothing here costs anything: the import below fails once, ``traced_step`` hands
``run_step`` back unchanged, and the other helpers do nothing.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from datetime import datetime

    from flowstar.model.context import WorkflowContext
    from flowstar.model.retry import RetryPolicy
    from flowstar.model.steps import Step
    from flowstar.model.transitions import StepResult

try:
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace
    from opentelemetry.trace import Span, Status, StatusCode
except ImportError:  # the ``otel`` extra is not installed: every helper is a no-op
    ENABLED = False
else:
    ENABLED = True

__all__ = [
    "ACTIVATION_ID",
    "ATTEMPT",
    "ENABLED",
    "INSTANCE_ID",
    "OUTCOME",
    "RETRYING",
    "STEP_NAME",
    "STEP_SPAN",
    "TRACE_KWARG",
    "TRACER_NAME",
    "WORKFLOW_NAME",
    "WORKFLOW_VERSION",
    "RunStep",
    "job_context",
    "record_step_error",
    "trace_carrier",
    "traced_step",
]

TRACER_NAME = "flowstar"
STEP_SPAN = "flowstar.step"
# The job kwarg holding the W3C trace context (``traceparent``, ``tracestate``) of a dispatch.
TRACE_KWARG = "trace_context"

# Attributes of a step span.
WORKFLOW_NAME = "flowstar.workflow.name"
WORKFLOW_VERSION = "flowstar.workflow.version"
INSTANCE_ID = "flowstar.instance.id"
STEP_NAME = "flowstar.step.name"
ACTIVATION_ID = "flowstar.activation.id"
ATTEMPT = "flowstar.step.attempt"
OUTCOME = "flowstar.step.outcome"  # succeeded, failed or skipped
RETRYING = "flowstar.step.retrying"  # on a failed attempt: whether another one is scheduled


class RunStep(Protocol):
    """The signature of ``flowstar.engine.runner.run_step``."""

    def __call__(
        self,
        step: Step,
        context: WorkflowContext,
        *,
        attempt: int,
        policy: RetryPolicy | None,
        now: Callable[[], datetime],
        activation_id: str | None = None,
        version: str | None = None,
    ) -> Awaitable[StepResult]: ...


def _no_carrier() -> None:
    """Without OpenTelemetry there is no trace context to send."""
    return None


def _ignore_error(error: BaseException) -> None:
    """Without OpenTelemetry there is no span to record ``error`` on."""


_NO_CONTEXT = contextlib.nullcontext()


def _no_job_context(carrier: Mapping[str, str] | None) -> contextlib.nullcontext[None]:
    """Without OpenTelemetry a job runs in whatever context SAQ gives it."""
    return _NO_CONTEXT


def _untraced(run: RunStep) -> RunStep:
    """Without OpenTelemetry ``run_step`` stays the very function the engine defines."""
    return run


if ENABLED:
    _tracer = trace.get_tracer(TRACER_NAME)
    # The API's providers while the host has configured no SDK.
    _NO_SDK = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
    # How long "no SDK" is believed before the API is asked again.
    _SDK_RECHECK = 1.0

    def _traced(run: RunStep) -> RunStep:
        """``run`` inside a ``flowstar.step`` span made current while the body runs."""

        async def in_span(step: Step, context: WorkflowContext, options: dict[str, Any]) -> StepResult:
            # ``run_step`` never raises for a step's error (it reports it in the result and
            # through ``record_step_error``): what would escape is the engine's own trouble.
            with _tracer.start_as_current_span(STEP_SPAN) as span:
                if span.is_recording():
                    span.set_attributes(_attributes(step.name, context, options))
                result = await run(step, context, **options)
                if span.is_recording():
                    _end_step(span, result)
                return result

        @functools.wraps(run)
        def traced(step: Step, context: WorkflowContext, **options: Any) -> Awaitable[StepResult]:
            if not _sdk_configured():
                # No SDK configured: the span would be a non-recording one that changes no
                # context, so none is made, and the step's own coroutine is handed back
                # (no second coroutine around it: that costs more than a plain step's body).
                return run(step, context, **options)
            return in_span(step, context, options)

        return traced

    _sdk = {"seen": False, "checked_at": float("-inf")}

    def _sdk_configured() -> bool:
        """Whether the host has set an SDK tracer provider.

        Asking the API costs an environment look-up per call while no SDK is set, so without
        one the answer is kept for ``_SDK_RECHECK`` seconds; once one is set it stays (the
        API lets a process set its provider once).
        """
        if _sdk["seen"]:
            return True
        now = time.monotonic()
        if now - _sdk["checked_at"] < _SDK_RECHECK:
            return False
        _sdk["checked_at"] = now
        _sdk["seen"] = not isinstance(trace.get_tracer_provider(), _NO_SDK)
        return bool(_sdk["seen"])

    def _attributes(step: str, context: WorkflowContext, options: Mapping[str, Any]) -> dict[str, str | int]:
        """What identifies a step execution (``options``: ``run_step``'s keyword arguments)."""
        attributes: dict[str, str | int] = {
            INSTANCE_ID: str(context.instance_id),
            STEP_NAME: step,
            ATTEMPT: options["attempt"],
        }
        version = options.get("version")
        activation_id = options.get("activation_id")
        if context.workflow_name is not None:
            attributes[WORKFLOW_NAME] = context.workflow_name
        if version is not None:
            attributes[WORKFLOW_VERSION] = version
        if activation_id is not None:
            attributes[ACTIVATION_ID] = activation_id
        return attributes

    def _end_step(span: Span, result: StepResult) -> None:
        """Put the step's outcome on its span; a failed attempt makes the span an error."""
        span.set_attribute(OUTCOME, result.status)
        if result.status == "failed":
            span.set_attribute(RETRYING, result.retry_at is not None)
            span.set_status(Status(StatusCode.ERROR, result.error))

    def _record_error(error: BaseException) -> None:
        """Record the exception a step raised on its span (the current one while it runs)."""
        trace.get_current_span().record_exception(error)

    def _carrier() -> dict[str, str] | None:
        """The current trace context as W3C headers; None when no span is current."""
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        return carrier or None

    @contextlib.contextmanager
    def _job_context(carrier: Mapping[str, str] | None) -> Iterator[None]:
        """Run under the context a job carried, or a new trace for a job that carried none.

        A job without one (the reconciler's re-dispatch, a job enqueued before tracing was
        installed) must not join whatever context the worker process happens to be in.
        """
        fresh = otel_context.Context()
        token = otel_context.attach(propagate.extract(carrier, context=fresh) if carrier else fresh)
        try:
            yield
        finally:
            otel_context.detach(token)

    traced_step: Callable[[RunStep], RunStep] = _traced
    record_step_error: Callable[[BaseException], None] = _record_error
    trace_carrier: Callable[[], dict[str, str] | None] = _carrier
    job_context: Callable[[Mapping[str, str] | None], contextlib.AbstractContextManager[None]] = _job_context
else:
    traced_step = _untraced
    record_step_error = _ignore_error
    trace_carrier = _no_carrier
    job_context = _no_job_context
