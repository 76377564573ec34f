"""Workflows the command-line tests operate on (``FLOWSTAR_REGISTRY=tests.cli.registry:registry``).

Loaded both by the tests' own engines (which start instances) and by the commands, in the
test process or in a ``flowstar worker`` subprocess, so nothing here keeps state in memory:
whether a step already failed is read from the instance's history.
"""

from __future__ import annotations

from datetime import timedelta

from flowstar import BaseHumanStep, BaseMachineStep, StepStatus, WorkflowContext, WorkflowRegistry
from flowstar.model.waits import EventStep, SignalStep
from tests.unit.helpers import Set, linear

__all__ = ["REVIEW_DUE", "registry"]

REVIEW_DUE = timedelta(days=1)


class FailsOnce(BaseMachineStep):
    """Fails on its first run in an instance, succeeds when run again (by a retry)."""

    async def execute(self, context: WorkflowContext) -> None:
        if not any(h.step_name == self.name and h.status is StepStatus.FAILED for h in context.step_history):
            raise RuntimeError("the payment service is down")
        context.set("charged", True)


class Review(BaseHumanStep):
    """A task for Alice (or the editors), due a day after it opens."""

    name = "review"
    title = "Review the article"
    assignee = "alice"
    assignee_group = "editors"
    due_in = REVIEW_DUE


def _registry() -> WorkflowRegistry:
    found = WorkflowRegistry()
    found.register_definition(
        linear("order", Set("prepare", prepared=True), FailsOnce("charge"), Set("ship", shipped=True))
    )
    found.register_definition(
        linear("approval", Set("ask", asked=True), SignalStep("approved"), Set("done", finished=True))
    )
    found.register_definition(
        linear("delivery", EventStep("delivered", event="parcel_delivered"), Set("close", closed=True))
    )
    found.register_definition(linear("article", Review(), Set("publish", published=True)))
    return found


registry = _registry()
