"""Workflows the SAQ integration tests run, in this process and in ``saq worker.settings``.

Worker processes load them with ``FLOWSTAR_REGISTRY=tests.integration.saq_workflows:registry``.

Every machine step (``Traced``) inserts a row into ``saq_side_effects`` *before* it does its
work, through a connection of its own (outside the engine's transactions), so a test can
count how often a step body really ran and in which process: committed outcomes are
exactly-once, bodies at-least-once.  A step sleeps ``context["sleep"]`` seconds (or
``context["sleep_<step>"]``), appends its name to ``trail`` and returns the worker's pid,
which lands in its step record's output.

Where rows go: worker processes read ``FLOWSTAR_TEST_SIDE_EFFECTS_URL``; a test running the
steps in its own process sets ``SIDE_EFFECTS.engine``.  With neither, nothing is recorded.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from flowstar import (
    BaseHumanStep,
    BaseMachineStep,
    Edge,
    Escalation,
    ExclusiveGateway,
    TimerStep,
    WorkflowContext,
    WorkflowDefinition,
    WorkflowRegistry,
)
from flowstar.db import create_database_engine
from flowstar.flow import child_result, complete, start_child, step, workflow
from flowstar.model.waits import SignalStep

__all__ = ["FANOUT", "SIDE_EFFECTS", "SIDE_EFFECTS_DDL", "Traced", "registry"]

SIDE_EFFECTS_DDL = (
    "CREATE TABLE IF NOT EXISTS saq_side_effects ("
    " id BIGSERIAL PRIMARY KEY, instance_id TEXT NOT NULL, step TEXT NOT NULL,"
    " pid INTEGER NOT NULL, at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp())"
)
FANOUT = 10
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class _SideEffects:
    engine: AsyncEngine | None = None

    def current(self) -> AsyncEngine | None:
        if self.engine is None:
            url = os.environ.get("FLOWSTAR_TEST_SIDE_EFFECTS_URL")
            if url:
                # A worker process has one event loop for its lifetime: one engine is enough.
                self.engine = create_database_engine(url, pool_size=2, max_overflow=3, pool_timeout=60)
        return self.engine


SIDE_EFFECTS = _SideEffects()


class Traced(BaseMachineStep):
    """Records that its body ran, sleeps as the context says, appends itself to ``trail``."""

    def __init__(self, name: str) -> None:
        super().__init__(name)

    async def execute(self, context: WorkflowContext) -> dict[str, Any]:
        engine = SIDE_EFFECTS.current()
        if engine is not None:
            async with engine.begin() as conn:
                await conn.execute(
                    text("INSERT INTO saq_side_effects (instance_id, step, pid) VALUES (:i, :s, :p)"),
                    {"i": str(context.instance_id), "s": self.name, "p": os.getpid()},
                )
        delay = context.get(f"sleep_{self.name}", context.get("sleep", 0))
        if delay:
            await asyncio.sleep(delay)
        context.set("trail", [*context.get("trail", []), self.name])
        context.set(f"{self.name}_pid", os.getpid())
        return {"pid": os.getpid()}


def _linear(name: str, steps: list[str]) -> WorkflowDefinition:
    return WorkflowDefinition(
        name=name,
        version="1.0.0",
        steps={s: Traced(s) for s in steps},
        edges=[Edge(a, b) for a, b in zip(steps, steps[1:], strict=False)],
        initial_step=steps[0],
        terminal_steps={steps[-1]},
    )


def _routed() -> WorkflowDefinition:
    return WorkflowDefinition(
        name="routed",
        version="1.0.0",
        steps={
            "check": Traced("check"),
            "route": ExclusiveGateway("route", [("context.get('amount', 0) >= 100", "big")], default="small"),
            "big": Traced("big"),
            "small": Traced("small"),
            "done": Traced("done"),
        },
        edges=[
            Edge("check", "route"),
            Edge("route", "big"),
            Edge("route", "small"),
            Edge("big", "done"),
            Edge("small", "done"),
        ],
        initial_step="check",
        terminal_steps={"done"},
    )


class _Branch(Traced):
    async def execute(self, context: WorkflowContext) -> dict[str, Any]:
        result = await super().execute(context)
        context.set(f"{self.name}_value", self.name.upper())
        return result


class _Join(Traced):
    async def execute(self, context: WorkflowContext) -> dict[str, Any]:
        result = await super().execute(context)
        context.set("joined", sorted(k for k in context.data if k.endswith("_value")))
        return result


def _fanout() -> WorkflowDefinition:
    branches = [f"b{i}" for i in range(FANOUT)]
    return WorkflowDefinition(
        name="fanout",
        version="1.0.0",
        steps={"split": Traced("split"), **{b: _Branch(b) for b in branches}, "join": _Join("join")},
        edges=[Edge("split", b) for b in branches] + [Edge(b, "join") for b in branches],
        initial_step="split",
        terminal_steps={"join"},
    )


def _timed() -> WorkflowDefinition:
    return WorkflowDefinition(
        name="timed",
        version="1.0.0",
        steps={
            "arm": Traced("arm"),
            "wait": TimerStep("wait", duration=lambda data: float(data["delay"])),
            "fired": Traced("fired"),
        },
        edges=[Edge("arm", "wait"), Edge("wait", "fired")],
        initial_step="arm",
        terminal_steps={"fired"},
    )


def _signalled() -> WorkflowDefinition:
    """Waits ``delay`` seconds on a timer, then for the signal ``go``."""
    return WorkflowDefinition(
        name="signalled",
        version="1.0.0",
        steps={
            "arm": Traced("arm"),
            "pause": TimerStep("pause", duration=lambda data: float(data["delay"])),
            "go": SignalStep("go"),
            "fired": Traced("fired"),
        },
        edges=[Edge("arm", "pause"), Edge("pause", "go"), Edge("go", "fired")],
        initial_step="arm",
        terminal_steps={"fired"},
    )


def _escalating() -> WorkflowDefinition:
    """A task that moves to carol when bob leaves it open for a second."""
    to_carol = Escalation(after=timedelta(seconds=1), to_user="carol")
    review = BaseHumanStep("review", assignee="bob", escalations=[to_carol])
    return WorkflowDefinition(
        name="escalating",
        version="1.0.0",
        steps={"review": review, "fired": Traced("fired")},
        edges=[Edge("review", "fired")],
        initial_step="review",
        terminal_steps={"fired"},
    )


def _quickstart() -> WorkflowDefinition:
    """The README quick start's definition, from ``examples/quickstart.py`` itself."""
    path = ROOT / "examples" / "quickstart.py"
    name = "flowstar_example_quickstart_saq"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    definition: WorkflowDefinition = module.definition
    return definition


def _code_first(into: WorkflowRegistry) -> None:
    """A code-first parent that starts ``signalled`` as its child and reports how it ended."""

    @workflow("child_parent", registry=into)
    class ChildParent:
        @step(start=True)
        def spawn(self) -> Any:
            return start_child("signalled", delay=0)

        @step()
        def collect(self) -> Any:
            result = child_result()
            return complete(child_status=result.status if result else "missing")


def build_registry() -> WorkflowRegistry:
    """Every workflow of the SAQ tests."""
    built = WorkflowRegistry()
    built.register_definition(_quickstart())
    built.register_definition(_linear("linear3", ["one", "two", "three"]))
    built.register_definition(_linear("chain4", ["c1", "c2", "c3", "c4"]))
    built.register_definition(_linear("single", ["only"]))
    built.register_definition(_routed())
    built.register_definition(_fanout())
    built.register_definition(_timed())
    built.register_definition(_escalating())
    built.register_definition(_signalled())
    _code_first(built)
    return built


registry = build_registry()
