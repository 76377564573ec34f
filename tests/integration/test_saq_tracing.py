"""Traces across SAQ: the trace context a dispatch carries in the job's kwargs reaches the
worker, so the steps of an instance started inside a span (an HTTP request's, say) are spans
of that trace, also when a job enqueues the next ones; a job with no context starts a new
trace, whatever context the worker itself runs in."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from tests.integration.saq_support import SaqEnv, engine_of, inprocess_worker, wait_for
from tests.integration.saq_workflows import FANOUT
from tests.unit.test_tracing import recording, server_span, step_spans, steps_of, traced_app, tracer
from tests.web.conftest import PREFIX

from flowstar import WorkflowStatus
from flowstar import tracing as ft


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    with recording() as exporter:
        yield exporter


def by_instance(spans: list[ReadableSpan]) -> dict[str, list[ReadableSpan]]:
    grouped: dict[str, list[ReadableSpan]] = defaultdict(list)
    for span in spans:
        grouped[str(dict(span.attributes or {})[ft.INSTANCE_ID])].append(span)
    return grouped


def assert_children_of(spans: list[ReadableSpan], trace_id: int, span_id: int) -> None:
    for span in spans:
        assert span.context is not None
        assert span.context.trace_id == trace_id, steps_of([span])
        assert span.parent is not None
        assert span.parent.span_id == span_id


async def _reconciled(worker: Any) -> None:
    """Wait for the worker's first reconciler pass: on a fresh queue it re-dispatches every
    pending activation, without a trace context, and could win the enqueue of a job the test
    is starting (the job key is the activation's)."""
    reconciler = engine_of(worker).reconciler

    async def passed() -> bool:
        return reconciler.passes >= 1

    await wait_for(passed, within=20, what="the reconciler's first pass")


async def _finish(client: Any, *instance_ids: Any) -> None:
    for instance_id in instance_ids:
        done = await client.wait_for_status(instance_id, timeout=30)
        assert done.status is WorkflowStatus.COMPLETED, done.error


async def test_step_spans_on_a_worker_join_the_trace_of_the_span_that_started_the_instance(
    saq_env: SaqEnv, spans: InMemorySpanExporter
) -> None:
    async with inprocess_worker(saq_env) as worker, saq_env.client() as client:
        await _reconciled(worker)
        with tracer.start_as_current_span("caller") as caller:
            linear = await client.start_workflow("linear3", {})
            fanout = await client.start_workflow("fanout", {})
        await _finish(client, linear.id, fanout.id)

    parent = caller.get_span_context()
    grouped = by_instance(step_spans(spans))
    assert steps_of(grouped[str(linear.id)]) == ["one", "two", "three"]
    # The branches are jobs the split's job enqueued: the context went on with them.
    assert sorted(steps_of(grouped[str(fanout.id)])) == sorted(["split", "join", *(f"b{i}" for i in range(FANOUT))])
    assert_children_of(grouped[str(linear.id)] + grouped[str(fanout.id)], parent.trace_id, parent.span_id)


async def test_a_timer_job_keeps_the_trace(saq_env: SaqEnv, spans: InMemorySpanExporter) -> None:
    async with inprocess_worker(saq_env) as worker, saq_env.client() as client:
        await _reconciled(worker)
        with tracer.start_as_current_span("caller") as caller:
            timed = await client.start_workflow("timed", {"delay": 1})
        await _finish(client, timed.id)
    steps = step_spans(spans)
    assert steps_of(steps) == ["arm", "fired"]
    assert_children_of(steps, caller.get_span_context().trace_id, caller.get_span_context().span_id)


async def test_jobs_that_carry_no_context_start_new_traces_even_on_a_worker_inside_a_span(
    saq_env: SaqEnv, spans: InMemorySpanExporter
) -> None:
    # The worker's tasks inherit "worker boot"; a job with no trace context must not join it.
    with tracer.start_as_current_span("worker boot") as boot:
        async with inprocess_worker(saq_env) as worker, saq_env.client() as client:
            await _reconciled(worker)
            token = otel_context.attach(otel_context.Context())  # a caller outside any span
            try:
                instance = await client.start_workflow("linear3", {})
            finally:
                otel_context.detach(token)
            await _finish(client, instance.id)
    steps = step_spans(spans)
    assert steps_of(steps) == ["one", "two", "three"]
    for span in steps:
        assert span.parent is None
        assert span.context is not None
        assert span.context.trace_id != boot.get_span_context().trace_id


async def test_an_http_request_trace_goes_on_through_the_worker(saq_env: SaqEnv, spans: InMemorySpanExporter) -> None:
    async with inprocess_worker(saq_env) as worker, saq_env.client() as engine:
        await _reconciled(worker)
        # The app runs on this test's event loop, where the engine's connections live.
        transport = httpx.ASGITransport(app=traced_app(engine))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            response = await http.post(f"{PREFIX}/instances", json={"definition_name": "fanout"})
            assert response.status_code == 200, response.text
        await _finish(engine, response.json()["id"])
    server = server_span(spans)
    assert server.kind is SpanKind.SERVER
    assert server.context is not None
    steps = step_spans(spans)
    assert len(steps) == FANOUT + 2
    assert_children_of(steps, server.context.trace_id, server.context.span_id)
