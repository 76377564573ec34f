"""Code-first retries: a workflow-level policy and a step-level override.

The guide's ``api_integration`` workflow retries any failing step up to 5 times with
exponential back-off; ``call_external_api`` overrides it with 10 attempts.  An expected
error (an empty answer) is handled with ``goto``; any other exception is retried, then
fails the workflow.  The fake API below answers 503 a given number of times; the manual
clock runs the back-offs.

Run it: ``python examples/code_first_api_integration.py``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from flowstar import LocalExecutionEngine, ManualClock, WorkflowRegistry
from flowstar.flow import FlowRun, Retry, complete, engine, get_context, goto, step, workflow
from flowstar.logs import configure_logging
from flowstar.testing import advance

__all__ = ["ApiIntegrationWorkflow", "FakeApi", "SpecificError", "api", "main", "registry"]

registry = WorkflowRegistry()


@dataclass
class Response:
    status_code: int
    body: dict[str, Any]

    def json(self) -> dict[str, Any]:
        return self.body


class FakeApi:
    """Answers 503 ``failures`` times, then 200 with ``items`` items."""

    def __init__(self) -> None:
        self.failures = 0
        self.items = 3
        self.calls = 0

    def get(self, endpoint: str) -> Response:
        self.calls += 1
        if self.calls <= self.failures:
            return Response(503, {})
        return Response(200, {"endpoint": endpoint, "items": self.items})


api = FakeApi()


class SpecificError(Exception):
    """An error the workflow knows how to recover from."""


@workflow(
    "api_integration",
    default_retry=Retry(
        max_attempts=5,
        base_delay=timedelta(seconds=2),
        max_delay=timedelta(minutes=5),
        backoff_factor=2.0,  # exponential backoff
    ),
    registry=registry,
)
class ApiIntegrationWorkflow:
    class Context(BaseModel):
        endpoint: str
        api_response: dict[str, Any] = {}
        operation_result: str = ""
        error_details: str = ""

    @step(start=True, retry=Retry(max_attempts=10, base_delay=timedelta(seconds=1)))
    def call_external_api(self):
        ctx = get_context()
        # This step will retry up to 10 times if it raises an exception
        response = api.get(ctx.endpoint)
        if response.status_code != 200:
            raise Exception(f"API call failed: {response.status_code}")
        ctx.api_response = response.json()
        return goto(self.risky_operation)

    @step()
    def risky_operation(self):
        ctx = get_context()
        try:
            if ctx.api_response.get("items", 0) == 0:
                raise SpecificError("nothing to import")
            ctx.operation_result = f"imported {ctx.api_response['items']} items"
            return goto(self.success_step)
        except SpecificError as e:
            ctx.error_details = str(e)
            return goto(self.error_recovery_step)

    @step()
    def success_step(self):
        return complete(outcome="imported")

    @step()
    def error_recovery_step(self):
        return complete(outcome="recovered")


async def main(failures: int = 4, items: int = 3) -> FlowRun:
    """Call an API that fails ``failures`` times before it answers ``items`` items."""
    api.failures, api.items, api.calls = failures, items, 0
    clock = ManualClock()
    engine.use(LocalExecutionEngine(registry, clock=clock))
    try:
        run = await engine.start("api_integration", endpoint="/orders")
        retry = f", next attempt at {run.wake_at:%H:%M:%S}" if run.wake_at else ""
        print(f"after the first call: {run.status} at {run.current_step}{retry}")
        await advance(engine, clock, timedelta(minutes=30))
        run = await run.refresh()
        result = run.context.operation_result or run.context.error_details or run.error
        print(f"{run.status} after {api.calls} calls: {result}")
        return run
    finally:
        await engine.close()


if __name__ == "__main__":
    configure_logging()
    asyncio.run(main())
