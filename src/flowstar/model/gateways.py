"""Decision points: a gateway returns the step(s) to continue with."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from flowstar.model.conditions import Condition
from flowstar.model.enums import StepType
from flowstar.model.errors import ValidationError
from flowstar.model.steps import BaseStep

if TYPE_CHECKING:
    from flowstar.model.context import WorkflowContext

__all__ = ["BaseGateway", "ExclusiveGateway", "ParallelGateway"]

ConditionLike = str | Callable[["WorkflowContext"], bool]


class BaseGateway(BaseStep):
    """Subclass and implement ``evaluate`` to return the next step name(s).

    The engine routes only to the returned steps, each of which must be the target of an
    edge out of the gateway.
    """

    step_type: ClassVar[StepType] = StepType.GATEWAY

    async def evaluate(self, context: WorkflowContext) -> str | list[str]:
        """Return the name of the next step, or a list of names to run in parallel."""
        raise TypeError(f"{type(self).__name__} must implement evaluate()")

    def declared_targets(self) -> set[str] | None:
        """Targets known without running the gateway (``None`` when only ``evaluate`` knows)."""
        return None


class ExclusiveGateway(BaseGateway):
    """Routes to the first branch whose condition holds, else to ``default``.

    Args:
        name: step name.
        branches: ``(condition, target)`` pairs tried in order; a condition is a safe
            expression string or a callable taking the context.
        default: target when no condition holds; without one, the workflow fails.
    """

    def __init__(
        self,
        name: str,
        branches: Sequence[tuple[ConditionLike, str]],
        default: str | None = None,
        description: str | None = None,
    ) -> None:
        super().__init__(name, description)
        self.branches: list[tuple[Callable[[Any], bool], str, str]] = []
        if isinstance(branches, str) or not all(isinstance(b, tuple | list) and len(b) == 2 for b in branches):
            raise ValidationError(f"gateway {name!r}: branches must be (condition, target) pairs, got {branches!r}")
        for condition, target in branches:
            if isinstance(condition, str):
                compiled = Condition(condition)
                self.branches.append((compiled, target, condition))
            else:
                self.branches.append((condition, target, getattr(condition, "__name__", "callable")))
        self.default = default

    async def evaluate(self, context: WorkflowContext) -> str | list[str]:
        """The first target whose condition holds, else ``default``."""
        for condition, target, _label in self.branches:
            if isinstance(condition, Condition):
                if condition(context.data):
                    return target
            elif condition(context):
                return target
        if self.default is not None:
            return self.default
        return []

    def declared_targets(self) -> set[str] | None:
        """Every branch target and the default."""
        targets = {target for _c, target, _l in self.branches}
        if self.default is not None:
            targets.add(self.default)
        return targets


class ParallelGateway(BaseGateway):
    """Routes to all of ``targets`` at once (a fan-out)."""

    def __init__(self, name: str, targets: Sequence[str], description: str | None = None) -> None:
        super().__init__(name, description)
        if isinstance(targets, str):
            raise ValidationError(f"gateway {name!r}: targets must be a list of step names, got {targets!r}")
        self.targets = list(targets)

    async def evaluate(self, context: WorkflowContext) -> str | list[str]:
        """Every target."""
        return list(self.targets)

    def declared_targets(self) -> set[str] | None:
        """Every target."""
        return set(self.targets)
