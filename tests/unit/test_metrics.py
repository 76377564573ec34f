"""``FlowstarMetrics`` on the memory engine: what each commit adds, and the scrape-time gauges.

The counters are read back by exact value: a test that ran three steps expects 3, not
"more than before".  The worker's HTTP port is tested here on a memory engine (any free
port on 127.0.0.1) and in ``tests/integration/test_worker_metrics.py`` on a real worker.
"""

from __future__ import annotations

import socket
from datetime import timedelta
from typing import Any

import pytest

from flowstar import BaseHumanStep, LocalExecutionEngine, ManualClock, RetryPolicy, WorkflowRegistry, WorkflowStatus
from flowstar.backends.memory import MemoryStore
from flowstar.flow import FlowEngine, complete, step, workflow
from flowstar.metrics import FlowstarMetrics
from flowstar.metrics.parts import core_engine
from flowstar.metrics.server import MetricsServer, metrics_address
from flowstar.model.errors import ValidationError
from flowstar.testing import advance
from tests.unit.helpers import Fn, Set, linear
from tests.unit.metrics_helpers import get, http, sample, samples


def _engine(*definitions: Any, **kwargs: Any) -> LocalExecutionEngine:
    registry = WorkflowRegistry()
    for definition in definitions:
        registry.register_definition(definition)
    return LocalExecutionEngine(registry, **kwargs)


def _value(metrics: FlowstarMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def _step(metrics: FlowstarMetrics, kind: str, workflow_name: str, step_name: str) -> float:
    return _value(metrics, f"flowstar_steps_{kind}_total", workflow=workflow_name, step=step_name)


def _flaky(name: str, failures: int) -> Fn:
    def body(_context: Any) -> str:
        if flaky.runs <= failures:
            raise ConnectionError(f"attempt {flaky.runs} failed")
        return "ok"

    flaky = Fn(name, body)
    flaky.retry_policy = RetryPolicy(max_attempts=2, initial_delay=10, jitter=0)
    return flaky


async def test_a_three_step_run_counts_three_steps_one_workflow_and_four_commits() -> None:
    engine = _engine(linear("three", Set("a"), Set("b"), Set("c")))
    metrics = FlowstarMetrics()
    metrics.install(engine)
    instance = await engine.start_workflow("three")
    assert instance.status is WorkflowStatus.COMPLETED
    for name in ("a", "b", "c"):
        assert _step(metrics, "started", "three", name) == 1
        assert _step(metrics, "completed", "three", name) == 1
        assert _step(metrics, "failed", "three", name) == 0
        assert _value(metrics, "flowstar_step_duration_seconds_count", workflow="three", step=name) == 1
    assert _value(metrics, "flowstar_workflows_started_total", workflow="three") == 1
    assert _value(metrics, "flowstar_workflows_finished_total", workflow="three", status="completed") == 1
    # The start and each step's outcome are one commit each.
    assert _value(metrics, "flowstar_commit_duration_seconds_count", outcome="committed") == 4
    assert _value(metrics, "flowstar_commit_duration_seconds_sum", outcome="committed") > 0


async def test_step_durations_are_the_records_own_times(clock: ManualClock) -> None:
    async def slow(_context: Any) -> None:
        clock.advance(2.0)  # the step "runs" two seconds by the engine's clock

    engine = _engine(linear("timed", Fn("slow", slow)), clock=clock)
    metrics = FlowstarMetrics()
    metrics.install(engine)
    await engine.start_workflow("timed")
    assert _value(metrics, "flowstar_step_duration_seconds_sum", workflow="timed", step="slow") == 2.0
    # 2 s lands in the 2.5 s bucket, not the 1 s one.
    assert _value(metrics, "flowstar_step_duration_seconds_bucket", workflow="timed", step="slow", le="1.0") == 0
    assert _value(metrics, "flowstar_step_duration_seconds_bucket", workflow="timed", step="slow", le="2.5") == 1


async def test_a_failing_step_with_a_retry_policy_counts_one_failure_and_one_retry(clock: ManualClock) -> None:
    engine = _engine(linear("retrying", _flaky("call", failures=1), Set("after")), clock=clock)
    metrics = FlowstarMetrics()
    metrics.install(engine)
    instance = await engine.start_workflow("retrying")
    assert _step(metrics, "failed", "retrying", "call") == 1
    assert _step(metrics, "retried", "retrying", "call") == 1
    assert _step(metrics, "completed", "retrying", "call") == 0

    await advance(engine, clock, timedelta(seconds=10))
    assert (await engine.get_instance(instance.id)).status is WorkflowStatus.COMPLETED
    assert _step(metrics, "started", "retrying", "call") == 2
    assert _step(metrics, "failed", "retrying", "call") == 1
    assert _step(metrics, "retried", "retrying", "call") == 1
    assert _step(metrics, "completed", "retrying", "call") == 1
    assert _value(metrics, "flowstar_step_duration_seconds_count", workflow="retrying", step="call") == 2


async def test_a_step_out_of_attempts_fails_without_a_retry_and_fails_the_workflow(clock: ManualClock) -> None:
    engine = _engine(linear("doomed", _flaky("call", failures=5)), clock=clock)
    metrics = FlowstarMetrics()
    metrics.install(engine)
    instance = await engine.start_workflow("doomed")
    await advance(engine, clock, timedelta(seconds=10))
    assert (await engine.get_instance(instance.id)).status is WorkflowStatus.FAILED
    assert _step(metrics, "failed", "doomed", "call") == 2
    assert _step(metrics, "retried", "doomed", "call") == 1
    assert _value(metrics, "flowstar_workflows_finished_total", workflow="doomed", status="failed") == 1
    assert _value(metrics, "flowstar_workflows_finished_total", workflow="doomed", status="completed") == 0


async def test_a_human_step_starts_when_its_task_opens_and_completes_with_the_task(clock: ManualClock) -> None:
    review = BaseHumanStep("review", assignee="bob", due_in=timedelta(hours=1))
    engine = _engine(linear("approval", Set("submit"), review, Set("done")), clock=clock)
    metrics = FlowstarMetrics()
    metrics.install(engine)
    instance = await engine.start_workflow("approval")
    assert _step(metrics, "started", "approval", "review") == 1
    assert _step(metrics, "completed", "approval", "review") == 0
    found = samples(await metrics.render())
    assert sample(found, "flowstar_human_tasks_open", workflow="approval") == 1
    assert sample(found, "flowstar_human_tasks_overdue", workflow="approval") == 0

    clock.advance(timedelta(hours=1, seconds=1))
    found = samples(await metrics.render())
    assert sample(found, "flowstar_human_tasks_overdue", workflow="approval") == 1

    await engine.complete_human_task(instance.id, "review", "bob", {})
    assert _step(metrics, "completed", "approval", "review") == 1
    assert _step(metrics, "completed", "approval", "done") == 1
    # A wait has no run time of its own: only executions are timed.
    assert _value(metrics, "flowstar_step_duration_seconds_count", workflow="approval", step="review") == 0
    found = samples(await metrics.render())
    assert sample(found, "flowstar_human_tasks_open", workflow="approval") == 0
    assert sample(found, "flowstar_human_tasks_overdue", workflow="approval") == 0


async def test_a_scrape_reports_every_known_workflow_and_the_store_probe() -> None:
    engine = _engine(linear("one", Set("a")), linear("two", Set("b")))
    metrics = FlowstarMetrics()
    metrics.install(engine)
    found = samples(await metrics.render())
    # Zeros for workflows without tasks: a series that is absent cannot be summed or alerted on.
    assert sample(found, "flowstar_human_tasks_open", workflow="one") == 0
    assert sample(found, "flowstar_human_tasks_open", workflow="two") == 0
    assert sample(found, "flowstar_probe_up", probe="store") == 1
    # The memory store has no outbox; the engine no queue, reconciler or event stream.
    names = {name for name, _labels in found}
    assert not names & {"flowstar_outbox_backlog", "flowstar_queue_jobs", "flowstar_reconciler_passes_total"}
    assert "process_cpu_seconds_total" in names  # the process collectors of the own registry


async def test_a_failing_store_probe_is_reported_down_not_raised() -> None:
    class BrokenTasks(MemoryStore):
        async def find_tasks(self, **_filters: Any) -> Any:
            raise ConnectionError("store unreachable")

    engine = _engine(linear("w", Set("a")), persistence=BrokenTasks())
    metrics = FlowstarMetrics()
    metrics.install(engine)
    found = samples(await metrics.render())
    assert sample(found, "flowstar_probe_up", probe="store") == 0
    assert not any(name == "flowstar_human_tasks_open" for name, _labels in found)


async def test_a_refused_commit_is_timed_as_a_conflict() -> None:
    class RefusesOnce(MemoryStore):
        refused = False

        async def commit(self, plan: Any) -> bool:
            if not plan.created and not self.refused:
                self.refused = True
                return False  # as if another process committed first
            return await super().commit(plan)

    engine = _engine(linear("w", Set("a")), persistence=RefusesOnce())
    metrics = FlowstarMetrics()
    metrics.install(engine)
    await engine.start_workflow("w")
    assert _value(metrics, "flowstar_commit_duration_seconds_count", outcome="conflict") == 1
    assert _value(metrics, "flowstar_commit_duration_seconds_count", outcome="committed") == 2
    assert _step(metrics, "completed", "w", "a") == 1  # counted once: only the commit that held


async def test_without_metrics_the_engine_commits_without_a_timing_wrapper() -> None:
    engine = _engine(linear("w", Set("a")))
    assert engine.commit_timer is None
    plan: Any = object()
    commit = engine._store_commit(plan)
    try:
        # The store's own coroutine, not a timing coroutine around it: no extra await.
        assert commit.cr_code is MemoryStore.commit.__code__  # type: ignore[attr-defined]
    finally:
        commit.close()  # type: ignore[attr-defined]


async def test_install_is_idempotent_and_one_engine_reports_to_one_metrics() -> None:
    engine = _engine(linear("w", Set("a")))
    metrics = FlowstarMetrics()
    metrics.install(engine)
    metrics.install(engine)
    await engine.start_workflow("w")
    assert _step(metrics, "completed", "w", "a") == 1
    assert metrics.engine is engine
    with pytest.raises(ValueError, match="other metrics"):
        FlowstarMetrics().install(engine)
    # Whoever asks for the engine's metrics (a second app on it) gets the same ones.
    assert FlowstarMetrics.of(engine) is metrics
    assert FlowstarMetrics.for_engine(engine) is metrics
    fresh = _engine(linear("w", Set("a")))
    assert FlowstarMetrics.of(fresh) is None
    installed = FlowstarMetrics.for_engine(fresh)
    assert installed is not metrics
    assert FlowstarMetrics.of(fresh) is installed


async def test_a_flow_engine_facade_is_metered_through_its_engine() -> None:
    registry = WorkflowRegistry()

    @workflow("greet", registry=registry)
    class Greet:
        @step(start=True)
        def hello(self) -> Any:
            return complete()

    facade = FlowEngine(LocalExecutionEngine(registry))
    metrics = FlowstarMetrics()
    metrics.install(core_engine(facade))
    await facade.start(Greet)
    assert _step(metrics, "completed", "greet", "hello") == 1
    with pytest.raises(TypeError, match="not a flowstar engine"):
        core_engine(object())


# -- FLOWSTAR_METRICS_PORT and the worker's HTTP server ---------------------------------


def test_the_metrics_address_comes_from_the_environment() -> None:
    assert metrics_address({}) is None
    assert metrics_address({"FLOWSTAR_METRICS_PORT": ""}) is None
    assert metrics_address({"FLOWSTAR_METRICS_PORT": "0"}) is None
    assert metrics_address({"FLOWSTAR_METRICS_PORT": "9464"}) == ("0.0.0.0", 9464)
    env = {"FLOWSTAR_METRICS_PORT": "9100", "FLOWSTAR_METRICS_HOST": "127.0.0.1"}
    assert metrics_address(env) == ("127.0.0.1", 9100)
    for bad in ("http", "70000", "-1"):
        with pytest.raises(ValidationError, match="FLOWSTAR_METRICS_PORT"):
            metrics_address({"FLOWSTAR_METRICS_PORT": bad})


async def test_the_metrics_server_serves_metrics_and_health() -> None:
    engine = _engine(linear("w", Set("a")))
    metrics = FlowstarMetrics()
    server = MetricsServer(metrics)
    port = await server.start("127.0.0.1", 0)
    try:
        status, _headers, body = await http(port, get("/health/ready"))
        assert (status, body) == (
            503,
            b'{"status": "unavailable", "checks": '
            b'{"engine": {"ok": false, "error": "RuntimeError: the worker is starting"}}}',
        )
        metrics.install(engine)
        await engine.start_workflow("w")

        status, headers, body = await http(port, get("/metrics?x=1"))
        assert status == 200
        assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert int(headers["content-length"]) == len(body)
        assert sample(samples(body), "flowstar_steps_completed_total", step="a", workflow="w") == 1

        assert (await http(port, get("/health/live")))[::2] == (200, b'{"status": "alive"}')
        # The memory engine depends on no server: nothing to check, ready.
        assert (await http(port, get("/health/ready")))[::2] == (200, b'{"status": "ready", "checks": {}}')
        assert (await http(port, get("/nothing")))[0] == 404
        assert (await http(port, get("/metrics", "POST")))[0] == 405
        status, headers, body = await http(port, get("/health/live", "HEAD"))
        assert (status, body, headers["content-length"]) == (200, b"", "19")
        assert (await http(port, b"garbage\r\n\r\n"))[0] == 400
        assert (await http(port, b"GET /metrics"))[0] == 400  # the connection ended mid-request
    finally:
        await server.close()


def _two_free_ports() -> tuple[socket.socket, int]:
    """A listening socket on a port whose next port is free (checked, then let go)."""
    for _ in range(50):
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                taken.close()
                continue
        return taken, port
    raise AssertionError("no two consecutive free ports")


async def test_a_second_server_takes_the_next_free_port_of_the_span() -> None:
    taken, port = _two_free_ports()
    server = MetricsServer(FlowstarMetrics())
    try:
        with pytest.raises(OSError, match="address already in use"):
            await server.start("127.0.0.1", port)
        assert await server.start("127.0.0.1", port, span=2) == port + 1
    finally:
        await server.close()
        taken.close()
