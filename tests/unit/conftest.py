"""Fixtures for the unit tests: engines on the memory store, closed after the test.

The engine behaviour suite lives in ``tests/engine`` and runs on every store; the tests here
that use ``make_engine`` check the model (conditions, gateways, context values, the
registry) through the engine and need only the memory store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from flowstar import LocalExecutionEngine, WorkflowDefinition, WorkflowRegistry

EngineFactory = Callable[..., LocalExecutionEngine]


@pytest.fixture
async def make_engine() -> AsyncIterator[EngineFactory]:
    """Build a ``LocalExecutionEngine`` over the given definitions; closed at teardown."""
    engines: list[LocalExecutionEngine] = []

    def factory(*definitions: WorkflowDefinition, **kwargs: Any) -> LocalExecutionEngine:
        registry = WorkflowRegistry()
        for definition in definitions:
            registry.register_definition(definition)
        engine = LocalExecutionEngine(registry, **kwargs)
        engines.append(engine)
        return engine

    yield factory
    for engine in engines:
        await engine.close()
