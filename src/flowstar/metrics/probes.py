"""Scrape-time metrics: shared state read when Prometheus asks, not kept in memory.

Each probe reads one source (the store, the SAQ queue, the event stream) with a few cheap
calls; they run concurrently, each bounded by a timeout, and one that fails or times out
leaves its metrics out of that scrape and reports ``flowstar_probe_up{probe=...} 0``, so a
scrape never fails because a server is down.  The values are the same from every process
(they describe the shared database and Redis): aggregate them with ``max``, not ``sum``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from flowstar.engine.core import Engine
from flowstar.metrics.parts import saq_engine, sql_store, stream_bus
from flowstar.model.enums import TaskStatus

if TYPE_CHECKING:
    from flowstar.redis.stream_bus import RedisStreamEventBus
    from flowstar.saq.engine import SAQExecutionEngine

__all__ = ["Probe", "StoreCounts", "probes", "queue_metrics", "scrape", "store_metrics"]

log = structlog.get_logger("flowstar.metrics")

Probe = Callable[[], Awaitable[list[Metric]]]


@dataclass(slots=True)
class StoreCounts:
    """Open and overdue tasks by workflow; the outbox's size (None: no outbox) and its
    oldest event's time."""

    open_tasks: dict[str, int] = field(default_factory=dict)
    overdue_tasks: dict[str, int] = field(default_factory=dict)
    outbox: int | None = None
    outbox_oldest: datetime | None = None


async def scrape(engine: Engine, *, within: float) -> list[Metric]:
    """Every scrape-time metric of ``engine``, with ``flowstar_probe_up`` for each probe (each
    given ``within`` seconds)."""
    found = probes(engine)
    outcomes = await asyncio.gather(*(_attempt(name, probe, within) for name, probe in found.items()))
    up = GaugeMetricFamily("flowstar_probe_up", "Whether the probe's source answered this scrape.", labels=["probe"])
    families: list[Metric] = []
    for name, metrics in zip(found, outcomes, strict=True):
        up.add_metric([name], 0.0 if metrics is None else 1.0)
        families.extend(metrics or ())
    families.extend(_reconciler_metrics(engine))
    families.append(up)
    return families


def probes(engine: Engine) -> dict[str, Probe]:
    """The probes that apply to ``engine``, by name: ``store``, and ``queue`` and ``events``
    when it runs on SAQ and a Redis Stream."""
    found: dict[str, Probe] = {"store": lambda: store_metrics(engine)}
    saq = saq_engine(engine)
    if saq is not None:
        queue = saq.queue
        found["queue"] = lambda: queue_metrics(queue)
    bus = stream_bus(engine)
    if bus is not None:
        found["events"] = lambda: _dead_letter_metrics(bus)
    return found


async def _attempt(name: str, probe: Probe, within: float) -> list[Metric] | None:
    """The probe's metrics, or None (logged) when its source failed or did not answer in time."""
    try:
        return await asyncio.wait_for(probe(), within)
    except Exception as exc:
        log.warning("metrics probe failed", probe=name, error=f"{type(exc).__name__}: {exc}")
        return None


# -- the store: human tasks and the outbox ----------------------------------------------


async def store_metrics(engine: Engine) -> list[Metric]:
    """Open and overdue human tasks by workflow (every known workflow, zeros included) and,
    on the SQL store, the outbox backlog."""
    now = engine.clock.now()
    sql = sql_store(engine)
    if sql is not None:
        from flowstar.metrics._sql import store_counts

        counts = await store_counts(sql, now)
    else:
        counts = await _scanned_counts(engine, now)
    workflows = {d.name for d in engine.registry.list_definitions(active_only=False)}
    return _task_families(counts, workflows) + _outbox_families(counts, now)


async def _scanned_counts(engine: Engine, now: datetime) -> StoreCounts:
    """The counts of a store without SQL (the memory store): its pending tasks, counted."""
    counts = StoreCounts()
    for task in await engine.store.find_tasks(status=TaskStatus.PENDING):
        name = task.workflow_name
        counts.open_tasks[name] = counts.open_tasks.get(name, 0) + 1
        if task.due_at is not None and task.due_at < now:
            counts.overdue_tasks[name] = counts.overdue_tasks.get(name, 0) + 1
    return counts


def _task_families(counts: StoreCounts, workflows: Iterable[str]) -> list[Metric]:
    names = sorted({*workflows, *counts.open_tasks, *counts.overdue_tasks})
    families: list[Metric] = []
    for name, doc, values in (
        ("flowstar_human_tasks_open", "Human tasks waiting for a person (pending).", counts.open_tasks),
        ("flowstar_human_tasks_overdue", "Pending human tasks past their due time.", counts.overdue_tasks),
    ):
        family = GaugeMetricFamily(name, doc, labels=["workflow"])
        for workflow in names:
            family.add_metric([workflow], float(values.get(workflow, 0)))
        families.append(family)
    return families


def _outbox_families(counts: StoreCounts, now: datetime) -> list[Metric]:
    if counts.outbox is None:
        return []
    age = max((now - counts.outbox_oldest).total_seconds(), 0.0) if counts.outbox_oldest is not None else 0.0
    return [
        GaugeMetricFamily(
            "flowstar_outbox_backlog", "Committed events the relay has not published yet.", value=counts.outbox
        ),
        GaugeMetricFamily(
            "flowstar_outbox_oldest_age_seconds", "Age of the oldest unpublished event (0: none).", value=age
        ),
    ]


# -- the SAQ queue ----------------------------------------------------------------------


async def queue_metrics(queue: Any) -> list[Metric]:
    """Jobs queued, active and scheduled, and how long the next job to run has waited.

    Counts come from SAQ's ``Queue.count``; the oldest queued job is the head of SAQ's queued
    list (jobs join at the tail, workers take from the head), waiting since it was enqueued,
    became due or was handed back, whichever is latest.
    """
    queued = await queue.count("queued")
    active = await queue.count("active")
    incomplete = await queue.count("incomplete")
    jobs = GaugeMetricFamily("flowstar_queue_jobs", "SAQ jobs by state.", labels=["queue", "state"])
    jobs.add_metric([queue.name, "queued"], float(queued))
    jobs.add_metric([queue.name, "active"], float(active))
    jobs.add_metric([queue.name, "scheduled"], float(max(incomplete - queued - active, 0)))
    age = GaugeMetricFamily(
        "flowstar_queue_oldest_job_age_seconds", "How long the next queued job has waited (0: none).", labels=["queue"]
    )
    age.add_metric([queue.name], await _oldest_wait(queue))
    return [jobs, age]


async def _oldest_wait(queue: Any) -> float:
    head = await queue.redis.lindex(queue.namespace("queued"), 0)
    job = queue.deserialize(await queue.redis.get(head)) if head is not None else None
    if job is None:
        return 0.0
    # ``queued`` and ``touched`` are epoch milliseconds, ``scheduled`` epoch seconds.
    since = max(job.queued / 1000, job.touched / 1000, float(job.scheduled))
    return max(time.time() - float(since), 0.0)


# -- the event stream and the reconciler ------------------------------------------------


async def _dead_letter_metrics(bus: RedisStreamEventBus) -> list[Metric]:
    """Entries of the dead-letter stream: it only grows (one entry per dead-lettered event)."""
    count = await bus.redis.xlen(bus.dead_letter_key)
    family = CounterMetricFamily(
        "flowstar_events_dead_lettered", "Events moved to the dead-letter stream.", labels=["stream"]
    )
    family.add_metric([bus.stream_key], float(count))
    return [family]


def _reconciler_metrics(engine: Engine) -> list[Metric]:
    """This process's reconciler: passes it ran and activations it re-dispatched."""
    saq: SAQExecutionEngine | None = saq_engine(engine)
    if saq is None or not saq.run_reconciler:
        return []
    reconciler = saq.reconciler
    return [
        CounterMetricFamily(
            "flowstar_reconciler_passes", "Reconciler passes this process ran.", value=reconciler.passes
        ),
        CounterMetricFamily(
            "flowstar_reconciler_redispatched",
            "Activations this process's reconciler enqueued again or handed back.",
            value=reconciler.redispatched,
        ),
    ]
