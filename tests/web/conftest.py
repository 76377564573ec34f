"""An app with the plugin on a memory engine: the demo workflows plus a webhook flow."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from tests.unit.helpers import Set, linear

from flowstar import LocalExecutionEngine, WebhookStep, WorkflowRegistry
from flowstar.demo_workflows import build_registry
from flowstar.web import WorkflowWebPlugin

PREFIX = "/api/workflows"
SECRET = "test-secret-key"


def make_app(**options: Any) -> tuple[Litestar, LocalExecutionEngine]:
    """An app and its engine (memory store); ``options`` go to the plugin."""
    registry = build_registry()
    registry.register_definition(linear("pay", Set("charge", charged=True), WebhookStep("payment_callback")))
    engine = LocalExecutionEngine(registry)
    options.setdefault("enable_ui", False)
    plugin = WorkflowWebPlugin(path_prefix=PREFIX, engine=engine, secret_key=SECRET, **options)
    return Litestar(plugins=[plugin]), engine


@asynccontextmanager
async def serving(
    registry: WorkflowRegistry, **options: Any
) -> AsyncIterator[tuple[AsyncTestClient[Litestar], LocalExecutionEngine]]:
    """A test client of the plugin's API on a memory engine over ``registry`` (closed after)."""
    engine = LocalExecutionEngine(registry)
    plugin = WorkflowWebPlugin(path_prefix=PREFIX, engine=engine, secret_key=SECRET, enable_ui=False, **options)
    async with AsyncTestClient(Litestar(plugins=[plugin])) as client:
        yield client, engine
    await engine.close()


@pytest.fixture
async def client() -> AsyncIterator[AsyncTestClient[Litestar]]:
    app, _ = make_app()
    async with AsyncTestClient(app) as c:
        yield c
