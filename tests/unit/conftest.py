"""Fixtures for the unit tests: engines on memory backends that are closed after the test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from flowstar import LocalExecutionEngine, ManualClock, WorkflowDefinition, WorkflowRegistry
from tests.unit.helpers import RecordingBus

EngineFactory = Callable[..., LocalExecutionEngine]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def bus() -> RecordingBus:
    return RecordingBus()


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
