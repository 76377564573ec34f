"""Small step classes and builders shared by the unit tests."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from flowstar import BaseMachineStep, Edge, EventBus, WorkflowContext, WorkflowDefinition
from flowstar.engine.core import Engine
from flowstar.events import WorkflowEvent

StepFn = Callable[[WorkflowContext], Any | Awaitable[Any]]


class Fn(BaseMachineStep):
    """A machine step running ``fn(context)`` (sync or async) and recording each run."""

    def __init__(self, name: str, fn: StepFn | None = None, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.fn = fn
        self.runs = 0

    async def execute(self, context: WorkflowContext) -> Any:
        self.runs += 1
        if self.fn is None:
            return None
        result = self.fn(context)
        if inspect.isawaitable(result):
            result = await result
        return result


class Set(BaseMachineStep):
    """Writes fixed values into the context."""

    def __init__(self, name: str, **values: Any) -> None:
        super().__init__(name)
        self.values = values
        self.runs = 0

    async def execute(self, context: WorkflowContext) -> None:
        self.runs += 1
        for key, value in self.values.items():
            context.set(key, value)


def linear(name: str, *steps: Any, version: str = "1.0.0", **kwargs: Any) -> WorkflowDefinition:
    """A definition running ``steps`` one after another."""
    names = [s.name for s in steps]
    return WorkflowDefinition(
        name=name,
        version=version,
        steps={s.name: s for s in steps},
        edges=[Edge(a, b) for a, b in zip(names, names[1:], strict=False)],
        initial_step=names[0],
        terminal_steps={names[-1]},
        **kwargs,
    )


class RecordingBus(EventBus):
    """An ``EventBus`` subclass overriding ``emit``, as the reference documents show."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[WorkflowEvent] = []

    async def emit(self, event: WorkflowEvent) -> None:
        self.events.append(event)
        await super().emit(event)

    def summary(self, instance_id: Any = None) -> list[tuple[str, str | None]]:
        """``(event type, step name)`` pairs, optionally for one instance."""
        return [
            (e.type, getattr(e, "step_name", None))
            for e in self.events
            if instance_id is None or e.instance_id == str(instance_id)
        ]


async def drain(rounds: int = 50) -> None:
    """Let every ready callback run (the engine reacts to a clock move within a few rounds)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


async def eventually(predicate: Callable[[], bool], within: float = 5.0) -> None:
    """Wait until ``predicate()`` holds (no event signals the engine-internal states we check)."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - there is no event to wait on
            await asyncio.sleep(0.001)


async def next_due_at(engine: Engine, instance_id: Any) -> datetime | None:
    """When the instance's next timer or retry is due, read through the ``Store`` port."""
    state = await engine.store.load_instance(str(instance_id))
    assert state is not None, f"instance {instance_id} is not stored"
    return state.next_due_at
