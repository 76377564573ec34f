"""OpenTelemetry step spans: attributes, parents, errors, the SAQ job carrier, HTTP server spans.

Spans go to the SDK's ``InMemorySpanExporter`` on the process's one ``TracerProvider``,
sampled only inside ``recording()`` (the SAQ tests in tests/integration/test_saq_tracing.py
share it).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Sampler, SamplingResult
from opentelemetry.trace import SpanKind, StatusCode

from flowstar import LocalExecutionEngine, ManualClock, RetryPolicy, WorkflowRegistry, WorkflowStatus
from flowstar import tracing as ft
from flowstar.engine.runner import run_step
from flowstar.model.context import WorkflowContext
from flowstar.model.state import Token
from flowstar.saq.dispatcher import SAQDispatcher
from flowstar.saq.jobs import run_activation
from flowstar.testing import advance
from flowstar.web import WorkflowWebPlugin
from flowstar.web.tracing import tracing_plugin
from tests.unit.helpers import Fn, Set, linear
from tests.web.conftest import PREFIX, SECRET

ROOT = Path(__file__).resolve().parents[2]


class _Switch(Sampler):
    """Samples only while a test records: the process's provider can be set only once, and
    the other tests in the session should not pay for recorded spans nor keep them."""

    on = False

    def should_sample(self, parent_context: Any, *args: Any, **kwargs: Any) -> SamplingResult:
        return (ALWAYS_ON if self.on else ALWAYS_OFF).should_sample(parent_context, *args, **kwargs)

    def get_description(self) -> str:
        return "on while a test records"


_EXPORTER = InMemorySpanExporter()
_SWITCH = _Switch()


def _install_provider() -> None:
    """The session's SDK provider, set once (the API allows one), before any step runs here:
    as docs/tracing.md asks of a host, which configures tracing at start-up."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider(sampler=_SWITCH)
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)


_install_provider()


@contextlib.contextmanager
def recording() -> Iterator[InMemorySpanExporter]:
    """Record the spans started inside the block (the exporter keeps them after it)."""
    _EXPORTER.clear()
    _SWITCH.on = True
    try:
        yield _EXPORTER
    finally:
        _SWITCH.on = False


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    with recording() as exporter:
        yield exporter


def step_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    """The finished ``flowstar.step`` spans, in the order they ended."""
    return [s for s in exporter.get_finished_spans() if s.name == ft.STEP_SPAN]


def steps_of(spans: Sequence[ReadableSpan]) -> list[Any]:
    return [s.attributes[ft.STEP_NAME] for s in spans if s.attributes is not None]


tracer = trace.get_tracer("tests")


def _engine(*definitions: Any, clock: ManualClock | None = None) -> LocalExecutionEngine:
    registry = WorkflowRegistry()
    for definition in definitions:
        registry.register_definition(definition)
    return LocalExecutionEngine(registry, clock=clock)


# -- step spans on the local engine ---------------------------------------------------------


async def test_three_steps_make_three_spans_under_the_span_that_started_the_instance(
    spans: InMemorySpanExporter,
) -> None:
    engine = _engine(linear("three", Set("one", a=1), Set("two", b=2), Set("three", c=3), version="2.1.0"))
    with tracer.start_as_current_span("caller") as caller:
        instance = await engine.start_workflow("three")
    assert instance.status is WorkflowStatus.COMPLETED

    steps = step_spans(spans)
    assert steps_of(steps) == ["one", "two", "three"]
    parent = caller.get_span_context()
    for span in steps:
        assert span.parent is not None
        assert span.parent.span_id == parent.span_id
        assert span.context is not None
        assert span.context.trace_id == parent.trace_id
        assert span.kind is SpanKind.INTERNAL
        assert span.status.status_code is StatusCode.UNSET
        attributes = dict(span.attributes or {})
        assert attributes[ft.WORKFLOW_NAME] == "three"
        assert attributes[ft.INSTANCE_ID] == str(instance.id)
        assert attributes[ft.ATTEMPT] == 1
        assert attributes[ft.OUTCOME] == "succeeded"
        assert attributes[ft.WORKFLOW_VERSION] == "2.1.0"
    activations = [dict(s.attributes or {})[ft.ACTIVATION_ID] for s in steps]
    records = [r.id for r in await engine.get_history(instance.id)]  # a run's record has its id
    assert activations == records
    assert len(set(activations)) == 3


async def test_a_delayed_step_keeps_the_span_of_the_call_that_scheduled_it(
    clock: ManualClock, spans: InMemorySpanExporter
) -> None:
    """A retry back-off runs from the scheduler, under the span of the start that led to it."""
    failed: set[str] = set()

    def fail_once(context: WorkflowContext) -> str:
        if str(context.instance_id) not in failed:
            failed.add(str(context.instance_id))
            raise RuntimeError("the first attempt of each instance fails")
        return "ok"

    flaky = Fn("call", fail_once)
    flaky.retry_policy = RetryPolicy(max_attempts=2, initial_delay=5, jitter=0)
    engine = _engine(linear("flaky", flaky), clock=clock)
    with tracer.start_as_current_span("first caller") as first:
        one = await engine.start_workflow("flaky")
    with tracer.start_as_current_span("second caller") as second:
        two = await engine.start_workflow("flaky")
    await advance(engine, clock, 5)
    parents = {
        dict(s.attributes or {})[ft.INSTANCE_ID]: s.parent.span_id for s in step_spans(spans) if s.parent is not None
    }
    assert parents == {str(one.id): first.get_span_context().span_id, str(two.id): second.get_span_context().span_id}
    retried = [s for s in step_spans(spans) if dict(s.attributes or {})[ft.ATTEMPT] == 2]
    assert len(retried) == 2


async def test_run_step_names_the_activation_and_the_definition_version(spans: InMemorySpanExporter) -> None:
    context = WorkflowContext(workflow_name="orders", data={})
    result = await run_step(
        Set("charge", charged=True),
        context,
        attempt=3,
        policy=None,
        now=ManualClock().now,
        activation_id="tok-1",
        version="1.4.0",
    )
    assert result.status == "succeeded"
    [span] = step_spans(spans)
    attributes = dict(span.attributes or {})
    assert attributes[ft.ACTIVATION_ID] == "tok-1"
    assert attributes[ft.WORKFLOW_VERSION] == "1.4.0"
    assert attributes[ft.ATTEMPT] == 3
    assert attributes[ft.STEP_NAME] == "charge"
    assert attributes[ft.INSTANCE_ID] == str(context.instance_id)


async def test_spans_a_step_body_opens_are_children_of_its_step_span(spans: InMemorySpanExporter) -> None:

    def body(context: WorkflowContext) -> None:
        with tracer.start_as_current_span("charge card"):
            context.set("charged", True)

    engine = _engine(linear("pay", Fn("charge", body), Set("done", ok=True)))
    await engine.start_workflow("pay")
    [inner] = [s for s in spans.get_finished_spans() if s.name == "charge card"]
    [charge, _done] = step_spans(spans)
    assert charge.context is not None
    assert inner.parent is not None
    assert inner.parent.span_id == charge.context.span_id


def _raise(message: str) -> Any:
    def body(context: WorkflowContext) -> None:
        raise ValueError(message)

    return body


async def test_a_failing_step_span_has_error_status_and_the_exception(spans: InMemorySpanExporter) -> None:
    engine = _engine(linear("breaks", Set("ok", a=1), Fn("boom", _raise("card declined"))))
    instance = await engine.start_workflow("breaks")
    assert instance.status is WorkflowStatus.FAILED

    ok, boom = step_spans(spans)
    assert ok.status.status_code is StatusCode.UNSET
    assert boom.status.status_code is StatusCode.ERROR
    assert boom.status.description == "ValueError: card declined"
    assert dict(boom.attributes or {})[ft.OUTCOME] == "failed"
    assert dict(boom.attributes or {})[ft.RETRYING] is False
    [event] = boom.events
    assert event.name == "exception"
    assert dict(event.attributes or {})["exception.type"] == "ValueError"
    assert dict(event.attributes or {})["exception.message"] == "card declined"


async def test_each_attempt_is_a_span_and_a_retried_one_says_so(
    clock: ManualClock, spans: InMemorySpanExporter
) -> None:
    flaky = Fn("call", lambda c: 1 / 0 if flaky.runs == 1 else "ok")
    flaky.retry_policy = RetryPolicy(max_attempts=2, initial_delay=5, jitter=0)
    engine = _engine(linear("flaky", flaky, Set("end", e=1)), clock=clock)
    instance = await engine.start_workflow("flaky")
    await advance(engine, clock, 5)
    assert (await engine.get_instance(instance.id)).status is WorkflowStatus.COMPLETED

    first, second, end = step_spans(spans)
    assert [dict(s.attributes or {})[ft.ATTEMPT] for s in (first, second, end)] == [1, 2, 1]
    assert first.status.status_code is StatusCode.ERROR
    assert dict(first.attributes or {})[ft.RETRYING] is True
    assert second.status.status_code is StatusCode.UNSET
    assert steps_of([first, second, end]) == ["call", "call", "end"]


# -- the SAQ job carrier ----------------------------------------------------------------------


def _token(token_id: str) -> Token:
    return Token(id=token_id, step="one", created_at=datetime.now(UTC))


@pytest.mark.usefixtures("spans")
def test_a_job_dispatched_inside_a_span_carries_its_traceparent() -> None:
    dispatcher = SAQDispatcher(queue=None)  # type: ignore[arg-type]  # job_for never touches it
    with tracer.start_as_current_span("request") as span:
        job = dispatcher.job_for("inst-1", _token("tok-1"))
    context = span.get_span_context()
    carried = job.kwargs[ft.TRACE_KWARG]
    assert carried["traceparent"] == f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
    assert job.kwargs["instance_id"] == "inst-1"
    assert job.kwargs["token_id"] == "tok-1"


def test_a_job_dispatched_outside_any_span_has_the_old_kwargs() -> None:
    job = SAQDispatcher(queue=None).job_for("inst-1", _token("tok-1"))  # type: ignore[arg-type]
    assert job.kwargs == {"instance_id": "inst-1", "token_id": "tok-1"}


class _SeesContext:
    """The job function's engine: records the span context each activation ran under."""

    def __init__(self) -> None:
        self.seen: list[trace.SpanContext] = []

    async def execute_job(self, job: Any, instance_id: str, token_id: str) -> str:
        self.seen.append(trace.get_current_span().get_span_context())
        return "ran"


@pytest.mark.usefixtures("spans")
async def test_the_job_function_runs_under_the_carried_context_and_without_one_in_a_new_trace() -> None:
    engine = _SeesContext()
    ctx = {"flowstar": engine}
    with tracer.start_as_current_span("request") as request:
        carrier = ft.trace_carrier()
    with tracer.start_as_current_span("worker process"):
        assert await run_activation(ctx, instance_id="i", token_id="t1", trace_context=carrier) == "ran"
        assert await run_activation(ctx, instance_id="i", token_id="t2") == "ran"
    carried, bare = engine.seen
    assert carried.trace_id == request.get_span_context().trace_id
    assert carried.span_id == request.get_span_context().span_id
    assert carried.is_remote
    assert not bare.is_valid  # no parent at all: the job's step spans start a trace


# -- HTTP server spans ------------------------------------------------------------------------


def traced_app(engine: Any, how: str = "plugin") -> Litestar:
    """An app tracing its requests: with Litestar's plugin beside ours, or our ``tracing`` option."""
    if how == "option":
        web = WorkflowWebPlugin(path_prefix=PREFIX, engine=engine, secret_key=SECRET, enable_ui=False, tracing=True)
        return Litestar(plugins=[web])
    web = WorkflowWebPlugin(path_prefix=PREFIX, engine=engine, secret_key=SECRET, enable_ui=False)
    return Litestar(plugins=[web, tracing_plugin()])


def server_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    [span] = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    return span


@pytest.mark.parametrize("how", ["plugin", "option"])
async def test_post_instances_is_a_server_span_whose_trace_holds_the_step_spans(
    spans: InMemorySpanExporter, how: str
) -> None:
    engine = _engine(linear("web3", Set("one", a=1), Set("two", b=2), Set("three", c=3)))
    async with AsyncTestClient(traced_app(engine, how)) as client:
        response = await client.post(f"{PREFIX}/instances", json={"definition_name": "web3"})
        assert response.status_code == 200, response.text
        await engine.settled(response.json()["id"])
    server = server_span(spans)
    assert server.name == f"POST {PREFIX}/instances"
    assert server.context is not None
    steps = step_spans(spans)
    assert steps_of(steps) == ["one", "two", "three"]
    for span in steps:
        assert span.context is not None
        assert span.context.trace_id == server.context.trace_id
        assert span.parent is not None
        assert span.parent.span_id == server.context.span_id
    # Only the request's own span: no per-message receive/send spans.
    assert [s.name for s in spans.get_finished_spans() if s.name.startswith("POST")] == [server.name]


# -- without the otel extra -------------------------------------------------------------------

_WITHOUT_OTEL = textwrap.dedent(
    """
    import asyncio, sys
    sys.modules["opentelemetry"] = None  # ``import opentelemetry`` now fails, as when not installed
    from flowstar import tracing
    from flowstar.engine import runner
    from datetime import UTC, datetime
    from flowstar.model.state import Token
    from flowstar.saq.dispatcher import SAQDispatcher
    from tests.unit.helpers import Set, linear
    from flowstar import LocalExecutionEngine, WorkflowRegistry

    assert tracing.ENABLED is False
    assert not hasattr(runner.run_step, "__wrapped__"), "run_step must be the engine's own function"
    job = SAQDispatcher(queue=None).job_for("i", Token(id="t", step="one", created_at=datetime.now(UTC)))
    assert job.kwargs == {"instance_id": "i", "token_id": "t"}

    async def main():
        registry = WorkflowRegistry()
        registry.register_definition(linear("plain", Set("one", a=1), Set("two", b=2)))
        done = await LocalExecutionEngine(registry).start_workflow("plain")
        print(done.status.value, sorted(done.context.data.items()))

    asyncio.run(main())
    """
)


_API_ONLY = textwrap.dedent(
    """
    import asyncio
    from datetime import UTC, datetime
    from opentelemetry import context, propagate, trace
    from flowstar import LocalExecutionEngine, WorkflowRegistry
    from flowstar.model.state import Token
    from flowstar.saq.dispatcher import SAQDispatcher
    from tests.unit.helpers import Fn, linear

    PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    seen = []
    registry = WorkflowRegistry()
    registry.register_definition(linear("w", Fn("one", lambda c: seen.append(trace.get_current_span()))))

    async def main():
        # An upstream trace context, as the ASGI middleware extracts it without an SDK.
        token = context.attach(propagate.extract({"traceparent": PARENT}))
        try:
            done = await LocalExecutionEngine(registry).start_workflow("w")
            job = SAQDispatcher(queue=None).job_for("i", Token(id="t", step="one", created_at=datetime.now(UTC)))
        finally:
            context.detach(token)
        [span] = seen
        print(done.status.value, span.is_recording(), f"{span.get_span_context().trace_id:032x}")
        print(job.kwargs["trace_context"]["traceparent"])

    asyncio.run(main())
    """
)


def _run_script(script: str) -> str:
    """Run ``script`` in a fresh interpreter (no tracer provider set) and return its output."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_without_opentelemetry_run_step_is_untouched_and_workflows_run() -> None:
    assert _run_script(_WITHOUT_OTEL) == "completed [('a', 1), ('b', 2)]"


def test_with_the_api_but_no_sdk_steps_make_no_span_and_the_context_still_travels() -> None:
    assert _run_script(_API_ONLY).splitlines() == [
        "completed False 0af7651916cd43dd8448eb211c80319c",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    ]


def test_with_opentelemetry_run_step_is_wrapped_in_a_span() -> None:
    assert ft.ENABLED is True
    assert run_step.__wrapped__.__name__ == "run_step"  # type: ignore[attr-defined]
