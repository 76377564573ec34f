"""Prometheus metrics and health checks of flowstar processes.

``FlowstarMetrics`` holds one process's metrics: ``install(engine)`` feeds the step, workflow
and commit metrics from the engine's commits, ``render()`` returns the text exposition with
the scrape-time gauges (queue, human tasks, outbox, dead letters) read at that moment.
``readiness(engine)`` checks the database and Redis.  The web plugin serves both under its
prefix (``flowstar.web.health``); an SAQ worker on ``FLOWSTAR_METRICS_PORT``
(``flowstar.metrics.server``).  Every metric is described in docs/operations.md.
"""

from flowstar.metrics.health import Check, Readiness, readiness
from flowstar.metrics.recorder import CONTENT_TYPE, FlowstarMetrics

__all__ = ["CONTENT_TYPE", "Check", "FlowstarMetrics", "Readiness", "readiness"]
