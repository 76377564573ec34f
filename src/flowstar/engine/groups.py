"""Step groups: several machine steps run as one activation, each recorded in the history."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from flowstar.model.enums import StepType
from flowstar.model.errors import ValidationError
from flowstar.model.steps import BaseStep

if TYPE_CHECKING:
    from flowstar.model.context import WorkflowContext
    from flowstar.model.transitions import InnerRecord

__all__ = ["ParallelGroup", "SequentialGroup", "StepGroup"]

Recorder = Callable[["InnerRecord"], None]


class StepGroup(BaseStep):
    """Common base of groups; the engine runs the inner steps through ``run_inner``."""

    step_type: ClassVar[StepType] = StepType.MACHINE

    def __init__(self, *steps: BaseStep, name: str | None = None, description: str | None = None) -> None:
        for step in steps:
            if not isinstance(step, BaseStep):
                raise ValidationError(f"a step group holds steps, got {step!r}")
        self.steps: tuple[BaseStep, ...] = steps
        super().__init__(name, description)
        if not name and not self.name_explicit:
            # A derived name is not explicit: a definition may key the group as it likes.
            self.name = "+".join(s.name for s in steps)

    def problems(self) -> list[str]:
        """Groups hold machine steps (or groups) only, and at least one."""
        found = super().problems()
        if not self.steps:
            found.append(f"group {self.name!r} has no steps")
        for step in self.steps:
            if getattr(step, "step_type", None) is not StepType.MACHINE:
                found.append(f"group {self.name!r}: {step.name!r} is not a machine step")
            found.extend(step.problems())
        return found

    async def execute(self, context: WorkflowContext) -> Any:
        """Run the inner steps (unrecorded when called directly)."""
        from flowstar.engine.runner import run_group

        return await run_group(self, context, lambda _record: None)


class SequentialGroup(StepGroup):
    """Runs its steps in order; each sees the previous ones' context writes.

    The result is the list of the inner steps' results.
    """


class ParallelGroup(StepGroup):
    """Runs its steps concurrently, each on its own copy of the context, then merges them.

    Args:
        callback: optional step run after all inner steps, with the merged context.
    """

    def __init__(
        self,
        *steps: BaseStep,
        callback: BaseStep | None = None,
        name: str | None = None,
        description: str | None = None,
    ) -> None:
        super().__init__(*steps, name=name, description=description)
        self.callback = callback

    def problems(self) -> list[str]:
        """Also check the callback."""
        found = super().problems()
        if self.callback is not None:
            found.extend(self.callback.problems())
        return found


async def gather(*coros: Any) -> list[Any]:
    """``asyncio.gather`` that cancels the siblings when one fails."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
