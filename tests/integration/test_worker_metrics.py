"""A worker's metrics and health port (``FLOWSTAR_METRICS_PORT``), on real workers.

A ``saq worker.settings`` process, configured only through the environment, serves
``/metrics`` and ``/health/*`` on its port: after it ran a three-step workflow, its counters
say three steps and one finished workflow.  An in-process worker shows the scrape-time
numbers that need a worker: the reconciler's counters, the relay emptying the outbox, an
event dead-lettered by a consumer, and the port closing with the worker.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.integration.saq_support import ROOT, SAQ, SaqEnv, WorkerProcess, engine_of, inprocess_worker, wait_for
from tests.unit.metrics_helpers import closed_port, get, http, sample, samples

from flowstar import WorkflowStatus
from flowstar.redis.stream_bus import RedisStreamEventBus
from flowstar.saq.worker import METRICS_KEY

_LISTENING = re.compile(r"metrics and health endpoints listening.*?port=(\d+)")


def _spawn_worker(env: SaqEnv, log: Path, port: int) -> WorkerProcess:
    """``saq worker.settings`` with the metrics port set through the environment."""
    variables = env.worker_env()
    variables["FLOWSTAR_METRICS_PORT"] = str(port)
    variables["FLOWSTAR_METRICS_HOST"] = "127.0.0.1"
    with log.open("wb") as handle:
        proc = subprocess.Popen(
            [SAQ, "worker.settings"], cwd=str(ROOT), env=variables, stdout=handle, stderr=subprocess.STDOUT
        )
    return WorkerProcess("metrics", proc, log)


async def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, headers, body = await http(port, get("/metrics"))
    assert status == 200
    assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return samples(body)


async def test_a_worker_process_serves_metrics_and_health_on_its_port(saq_env: SaqEnv, tmp_path: Path) -> None:
    worker = _spawn_worker(saq_env, tmp_path / "worker.log", closed_port())
    try:
        await worker.ready()
        listening = _LISTENING.search(worker.output())
        assert listening is not None, worker.output()
        port = int(listening.group(1))

        status, _headers, body = await http(port, get("/health/ready"))
        assert (status, json.loads(body)) == (
            200,
            {"status": "ready", "checks": {"database": {"ok": True}, "redis": {"ok": True}}},
        )
        assert (await http(port, get("/health/live")))[0] == 200

        async with saq_env.client() as client:
            started = await client.start_workflow("linear3", {})
            done = await client.wait_for_status(started.id, timeout=20)
        assert done.status is WorkflowStatus.COMPLETED, done.error

        found = await _scrape(port)
        for step in ("one", "two", "three"):
            assert sample(found, "flowstar_steps_completed_total", workflow="linear3", step=step) == 1
            assert sample(found, "flowstar_steps_failed_total", workflow="linear3", step=step) == 0
            assert sample(found, "flowstar_step_duration_seconds_count", workflow="linear3", step=step) == 1
        assert sample(found, "flowstar_workflows_finished_total", workflow="linear3", status="completed") == 1
        # The API side started the instance: the worker counts no start of its own.
        assert ("flowstar_workflows_started_total", (("workflow", "linear3"),)) not in found
        # Three step outcomes committed by this worker.
        assert sample(found, "flowstar_commit_duration_seconds_count", outcome="committed") == 3
        assert sample(found, "flowstar_queue_jobs", queue=saq_env.queue, state="queued") == 0
        for probe in ("store", "queue", "events"):
            assert sample(found, "flowstar_probe_up", probe=probe) == 1
    finally:
        worker.terminate()
        assert await worker.exited(within=20) == 0


async def test_an_inprocess_worker_reports_its_reconciler_relay_and_dead_letters(
    saq_env: SaqEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWSTAR_METRICS_PORT", str(closed_port()))
    monkeypatch.setenv("FLOWSTAR_METRICS_HOST", "127.0.0.1")
    stream = f"flowstar:{saq_env.queue}:flowstar:events"
    async with inprocess_worker(saq_env) as worker:
        port = worker.context[METRICS_KEY].port
        engine = engine_of(worker)
        async with saq_env.client() as client:
            started = await client.start_workflow("single", {})
            assert (await client.wait_for_status(started.id, timeout=20)).status is WorkflowStatus.COMPLETED

        async def relayed_and_reconciled() -> bool:
            found = await _scrape(port)
            return (
                sample(found, "flowstar_outbox_backlog") == 0 and sample(found, "flowstar_reconciler_passes_total") > 0
            )

        await wait_for(relayed_and_reconciled, within=10, what="the relay to publish and a reconciler pass")
        before = engine.reconciler.passes
        found = await _scrape(port)
        assert before <= sample(found, "flowstar_reconciler_passes_total") <= engine.reconciler.passes
        assert sample(found, "flowstar_reconciler_redispatched_total") == 0  # nothing was lost
        assert sample(found, "flowstar_events_dead_lettered_total", stream=stream) == 0

        await _dead_letter_one(saq_env, stream)
        assert sample(await _scrape(port), "flowstar_events_dead_lettered_total", stream=stream) == 1

        # docs/operations.md describes exactly what a worker serves; the dashboard uses only that.
        served = _metric_names((await http(port, get("/metrics")))[2])
        assert _documented() == served
        assert _on_the_dashboard() <= served
    # The port closes with the worker.
    with pytest.raises(ConnectionRefusedError):
        await http(port, get("/health/live"))


def _metric_names(exposition: bytes) -> set[str]:
    """The flowstar metric names of an exposition, as queries name them (counters with ``_total``;
    the ``_created`` timestamps that the text format shows as gauges of their own left out)."""
    return {
        f"{family.name}_total" if family.type == "counter" else family.name
        for family in text_string_to_metric_families(exposition.decode())
        if family.name.startswith("flowstar_") and not family.name.endswith("_created")
    }


def _documented() -> set[str]:
    text = (ROOT / "docs" / "operations.md").read_text()
    return set(re.findall(r"^\| `(flowstar_\w+)`", text, flags=re.MULTILINE))


def _on_the_dashboard() -> set[str]:
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    names = {name for expr in exprs for name in re.findall(r"flowstar_\w+", expr)}
    return {re.sub(r"_(bucket|count|sum)$", "", name) for name in names}


async def _dead_letter_one(env: SaqEnv, stream: str) -> None:
    """A consumer group meets an entry it cannot decode: the bus moves it to the dead letters."""
    consumer = RedisStreamEventBus(env.redis, key_prefix=f"flowstar:{env.queue}:", block_ms=100)
    await consumer.ensure_group("audit", "0")
    await env.redis.xadd(stream, {"type": "WorkflowStarted", "data": b"not an event"})

    async def read() -> None:
        async for delivery in consumer.deliveries("audit", consumer="c1"):
            await delivery.ack()

    async def dead_lettered() -> bool:
        return len(await consumer.dead_letters()) == 1

    reader = asyncio.create_task(read())
    try:
        await wait_for(dead_lettered, within=10, what="the undecodable entry to be dead-lettered")
    finally:
        await consumer.close()  # the reader's loop ends within one block_ms
        await asyncio.wait_for(reader, timeout=5)
