"""The plugin's operational routes: ``{prefix}/metrics``, ``{prefix}/health/live`` and ``/ready``.

They are not behind ``auth_guard``: a Prometheus scraper or an orchestrator's probe carries
no user.  Health answers say only whether the process and its servers work; metrics name
workflows and steps, never instances, users or tenants.  Where even that must stay private,
``MonitoringConfig(metrics_guard=...)`` (or ``metrics_admin_only=True``) puts a guard in front
of ``/metrics``; the health routes stay open, as probes expect.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from litestar import Response, Router, get

from flowstar.engine.core import Engine
from flowstar.metrics import CONTENT_TYPE, FlowstarMetrics, Readiness, readiness
from flowstar.web.auth import require_admin
from flowstar.web.config import WebConfig

__all__ = ["MonitoringConfig", "monitoring_router"]

log = structlog.get_logger("flowstar.web")

EngineGetter = Callable[[], Awaitable[Engine]]


@dataclass
class MonitoringConfig:
    """The plugin's metrics and health routes (``WorkflowWebPlugin(monitoring=...)``).

    Attributes:
        enabled: mount ``/metrics``, ``/health/live`` and ``/health/ready`` under the prefix.
        metrics: the metrics to feed and serve; default a ``FlowstarMetrics`` of the plugin's.
        metrics_guard: a Litestar guard in front of ``/metrics``; None: open, as scrapers expect.
        metrics_admin_only: put the admin guard (``admin_guard``, default: the user must be an
            admin) in front of ``/metrics`` instead.
        check_timeout: seconds each readiness check (database, Redis) may take.
    """

    enabled: bool = True
    metrics: FlowstarMetrics | None = None
    metrics_guard: Callable[..., Any] | None = None
    metrics_admin_only: bool = False
    check_timeout: float = 3.0

    def guards(self, config: WebConfig) -> list[Callable[..., Any]]:
        """The guards of the ``/metrics`` route."""
        if self.metrics_guard is not None:
            return [self.metrics_guard]
        if self.metrics_admin_only:
            return [config.admin_guard or require_admin]
        return []


def monitoring_router(config: WebConfig, monitoring: MonitoringConfig, engine: EngineGetter) -> Router:
    """The routes at ``config.path_prefix``; ``engine`` builds or returns the plugin's engine."""
    metrics = monitoring.metrics or FlowstarMetrics()

    @get("/metrics", guards=monitoring.guards(config), include_in_schema=False)
    async def serve_metrics() -> Response[bytes]:
        try:
            await engine()
        except Exception as exc:
            # The process's own metrics are still worth a scrape; the probes need the engine.
            log.warning("metrics without an engine", error=f"{type(exc).__name__}: {exc}")
        # As a header: Litestar would append a second charset to a text media type.
        return Response(await metrics.render(), headers={"content-type": CONTENT_TYPE})

    @get("/health/live", include_in_schema=False)
    async def live() -> dict[str, str]:
        return {"status": "alive"}

    @get("/health/ready", include_in_schema=False)
    async def ready() -> Response[dict[str, Any]]:
        try:
            current = await engine()
        except Exception as exc:
            report = Readiness.failed("engine", exc)
        else:
            report = await readiness(current, within=monitoring.check_timeout)
        return Response(report.body(), status_code=report.status_code)

    return Router(path=config.path_prefix or "/", route_handlers=[serve_metrics, live, ready], tags=["flowstar"])
