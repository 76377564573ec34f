"""``FlowstarMetrics``: one process's Prometheus metrics, fed by its engine's commits.

The step and workflow counters and the step duration histogram are read off each
``CommitPlan`` an engine commits (its ``commit_listeners``): a new step record with an
outcome is a step that ran, a failed one followed by a new activation of the same step is a
retry, a waiting record is a wait that began.  The commit latency histogram is the engine's
``commit_timer``.  Nothing of this runs on the engine's path unless metrics are installed.

The gauges of shared state (queue depth, open tasks, the outbox, dead letters) are not kept
here: ``render()`` reads them at scrape time (``flowstar.metrics.probes``), so every scrape
sees the state of record, whichever process changed it.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from flowstar.model.enums import TERMINAL_WORKFLOW_STATUSES, StepStatus
from flowstar.model.state import CommitPlan, RecordUpdate, StepRecord

if TYPE_CHECKING:
    from flowstar.engine.core import Engine

__all__ = ["COMMIT_BUCKETS", "CONTENT_TYPE", "STEP_BUCKETS", "FlowstarMetrics"]

# What ``render()`` returns: the text format 0.0.4, which every Prometheus version reads
# (prometheus-client 0.22+ labels the same text 1.0.0, which older servers do not know).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Steps take from a millisecond (a gateway) to an hour (the default job timeout).
STEP_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
# A commit is one statement (PostgreSQL) or one short transaction (SQLite).
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
_RAN = frozenset({StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED})
_TIMED = frozenset({StepStatus.SUCCEEDED, StepStatus.FAILED})


class _StepSeries:
    """The label children of one (workflow, step): looked up once, not on every commit."""

    __slots__ = ("completed", "duration", "failed", "retried", "skipped", "started")

    def __init__(self, metrics: FlowstarMetrics, workflow: str, step: str) -> None:
        self.started = metrics.steps_started.labels(workflow, step)
        self.completed = metrics.steps_completed.labels(workflow, step)
        self.failed = metrics.steps_failed.labels(workflow, step)
        self.retried = metrics.steps_retried.labels(workflow, step)
        self.skipped = metrics.steps_skipped.labels(workflow, step)
        self.duration = metrics.step_duration.labels(workflow, step)


class _WithScrape(Collector):
    """The registry's metrics followed by one scrape's own (never stored in the registry)."""

    def __init__(self, registry: CollectorRegistry, scraped: Iterable[Metric]) -> None:
        self._registry = registry
        self._scraped = scraped

    def collect(self) -> Iterator[Metric]:
        yield from self._registry.collect()
        yield from self._scraped


class FlowstarMetrics:
    """The metrics of one process; ``install(engine)`` feeds them, ``render()`` exposes them.

    Args:
        registry: where the metrics are registered; default a registry of their own, with
            the process, platform and garbage-collector collectors of ``prometheus_client``.
            Pass one to add flowstar's metrics to an application's registry (the scrape-time
            gauges still come only with ``render()``).
        probe_timeout: seconds each scrape-time probe (database, queue, event stream) may
            take; one that takes longer is reported down (``flowstar_probe_up``).
    """

    def __init__(self, registry: CollectorRegistry | None = None, *, probe_timeout: float = 2.0) -> None:
        if registry is None:
            registry = CollectorRegistry()
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
            GCCollector(registry=registry)
        self.registry = registry
        self.probe_timeout = probe_timeout
        step = ["workflow", "step"]
        self.steps_started = Counter(
            "flowstar_steps_started", "Step executions and waits that began.", step, registry=registry
        )
        self.steps_completed = Counter(
            "flowstar_steps_completed", "Step executions that succeeded and waits that ended.", step, registry=registry
        )
        self.steps_failed = Counter(
            "flowstar_steps_failed", "Failed step attempts, retried or not.", step, registry=registry
        )
        self.steps_retried = Counter(
            "flowstar_steps_retried", "Failed step attempts followed by another attempt.", step, registry=registry
        )
        self.steps_skipped = Counter("flowstar_steps_skipped", "Step executions that skipped.", step, registry=registry)
        self.step_duration = Histogram(
            "flowstar_step_duration_seconds",
            "How long step executions ran (succeeded or failed), by the engine's clock.",
            step,
            buckets=STEP_BUCKETS,
            registry=registry,
        )
        self.workflows_started = Counter(
            "flowstar_workflows_started", "Workflow instances started.", ["workflow"], registry=registry
        )
        self.workflows_finished = Counter(
            "flowstar_workflows_finished",
            "Workflow instances that completed, failed or were canceled.",
            ["workflow", "status"],
            registry=registry,
        )
        self.commit_duration = Histogram(
            "flowstar_commit_duration_seconds",
            "Latency of the store's commit of one transition.",
            ["outcome"],
            buckets=COMMIT_BUCKETS,
            registry=registry,
        )
        self._committed = self.commit_duration.labels("committed")
        self._conflicts = self.commit_duration.labels("conflict")
        self._steps: dict[tuple[str, str], _StepSeries] = {}
        self._children: dict[tuple[object, ...], Counter] = {}
        self._installed: weakref.WeakSet[Engine] = weakref.WeakSet()
        self._engine: weakref.ref[Engine] | None = None

    # -- feeding ------------------------------------------------------------------------

    def install(self, engine: Engine) -> None:
        """Count ``engine``'s commits, and read the shared gauges through it at scrape time.

        Idempotent.  The latest engine installed is the one ``render()`` probes.

        Raises:
            ValueError: the engine already reports to another ``FlowstarMetrics``.
        """
        if engine in self._installed:
            self._engine = weakref.ref(engine)
            return
        if engine.commit_timer is not None:
            raise ValueError("this engine already reports its commits to other metrics")
        engine.commit_timer = self.observe_commit_time
        engine.commit_listeners.append(self.observe_commit)
        self._installed.add(engine)
        self._engine = weakref.ref(engine)

    @classmethod
    def of(cls, engine: Engine) -> FlowstarMetrics | None:
        """The metrics ``engine`` reports to, if any (each engine reports to one)."""
        reporting = getattr(engine.commit_timer, "__self__", None)
        return reporting if isinstance(reporting, cls) else None

    @classmethod
    def for_engine(cls, engine: Engine) -> FlowstarMetrics:
        """The metrics ``engine`` reports to: those already installed, else new ones, installed.

        Two apps (or two plugins) on one engine thus share its metrics.
        """
        metrics = cls.of(engine) or cls()
        metrics.install(engine)
        return metrics

    @property
    def engine(self) -> Engine | None:
        """The engine the scrape-time gauges are read through (None before ``install``)."""
        return self._engine() if self._engine is not None else None

    def observe_commit_time(self, seconds: float, committed: bool) -> None:
        """One ``store.commit``: committed, or refused because another commit came first."""
        (self._committed if committed else self._conflicts).observe(seconds)

    def observe_commit(self, plan: CommitPlan) -> None:
        """Count what one committed plan started, finished, failed and retried."""
        instance = plan.instance
        workflow = instance.workflow_name
        if plan.created:
            self._child(self.workflows_started, workflow).inc()
        if instance.status in TERMINAL_WORKFLOW_STATUSES:
            self._child(self.workflows_finished, workflow, instance.status.value).inc()
        for record in plan.new_records:
            self._record(plan, workflow, record)
        for update in plan.record_updates:
            step = _ended_wait(plan, update)
            if step is not None:
                self._series(workflow, step).completed.inc()

    def _child(self, counter: Counter, *labels: str) -> Counter:
        """``counter.labels(*labels)``, looked up once (``labels()`` validates and locks)."""
        key = (id(counter), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = counter.labels(*labels)
        return child

    def _series(self, workflow: str, step: str) -> _StepSeries:
        series = self._steps.get((workflow, step))
        if series is None:
            series = self._steps[(workflow, step)] = _StepSeries(self, workflow, step)
        return series

    def _record(self, plan: CommitPlan, workflow: str, record: StepRecord) -> None:
        status = record.status
        if status not in _RAN and status is not StepStatus.WAITING:
            return
        series = self._series(workflow, record.step_name)
        series.started.inc()
        if status is StepStatus.SUCCEEDED:
            series.completed.inc()
        elif status is StepStatus.FAILED:
            series.failed.inc()
            if _retried(plan, record):
                series.retried.inc()
        elif status is StepStatus.SKIPPED:
            series.skipped.inc()
        if status in _TIMED and record.completed_at is not None:
            series.duration.observe(max((record.completed_at - record.started_at).total_seconds(), 0.0))

    # -- exposing -----------------------------------------------------------------------

    async def render(self) -> bytes:
        """The text exposition of every metric, the scrape-time gauges read now."""
        from flowstar.metrics.probes import scrape

        engine = self.engine
        scraped = await scrape(engine, within=self.probe_timeout) if engine is not None else []
        return generate_latest(_WithScrape(self.registry, scraped))


def _retried(plan: CommitPlan, record: StepRecord) -> bool:
    """Whether the failed attempt ``record`` is followed by the step's next attempt."""
    attempt = record.attempt + 1
    return any(t.step == record.step_name and t.attempt == attempt for t in plan.dispatch)


def _ended_wait(plan: CommitPlan, update: RecordUpdate) -> str | None:
    """The step of a wait the plan ended successfully, or None.

    An update names its record only by id; the plan that ends a wait also adds the step's
    line to the instance's history, at the update's time, last.
    """
    history = plan.instance.history
    if update.status is not StepStatus.SUCCEEDED or not history:
        return None
    last = history[-1]
    if last.status != StepStatus.SUCCEEDED or last.at != update.completed_at:
        return None
    return last.step
