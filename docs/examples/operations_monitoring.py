"""docs/operations.md: the plugin's metrics and health endpoints."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from flowstar import LocalExecutionEngine, WorkflowRegistry

engine = LocalExecutionEngine(WorkflowRegistry())

# --8<-- [start:plugin]
from flowstar.web import WorkflowWebPlugin
from flowstar.web.health import MonitoringConfig

plugin = WorkflowWebPlugin(path_prefix="/api/workflows", engine=engine, monitoring=MonitoringConfig())  # the default
# --8<-- [end:plugin]


async def main() -> None:
    async with AsyncTestClient(Litestar(plugins=[plugin])) as client:
        assert (await client.get("/api/workflows/health/live")).status_code == 200
        metrics = await client.get("/api/workflows/metrics")
        assert metrics.status_code == 200
        assert "flowstar_" in metrics.text
    await engine.close()
