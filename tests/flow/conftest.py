"""Fixtures of the code-first tests: a registry per test, and engines on every store.

The store fixtures are the engine suite's (``tests/engine/conftest.py``): a test asking for
``flow_engine`` runs on the memory store, SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from flowstar import LocalExecutionEngine, ManualClock, WorkflowRegistry
from flowstar.flow import FlowEngine
from tests.engine.conftest import (  # noqa: F401 - the engine suite's fixtures, used here
    EngineFactory,
    database,
    make_engine,
    pg_tables_url,
    sqlite_template,
    store_url,
)


@pytest.fixture
def registry() -> WorkflowRegistry:
    """Where the test's workflows are registered (``@workflow(..., registry=registry)``)."""
    return WorkflowRegistry()


@pytest.fixture
def flow_engine(
    make_engine: EngineFactory,  # noqa: F811 - the fixture imported above
    registry: WorkflowRegistry,
    clock: ManualClock,
) -> FlowEngine:
    """A facade over an engine on the store under test, on the manual clock and ``registry``."""
    engine = make_engine(clock=clock)
    engine.registry = registry  # the test's workflows are defined after the engine is made
    return FlowEngine(engine)


@pytest.fixture
async def local_flow(registry: WorkflowRegistry, clock: ManualClock) -> AsyncIterator[FlowEngine]:
    """A facade over a ``LocalExecutionEngine`` (memory store) on the manual clock."""
    engine = LocalExecutionEngine(registry, clock=clock)
    yield FlowEngine(engine)
    await engine.close()
