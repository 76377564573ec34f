"""Workflows for the demo app and the default worker registry (``FLOWSTAR_REGISTRY``)."""

from __future__ import annotations

from datetime import timedelta

from flowstar.model.context import WorkflowContext
from flowstar.model.definition import Edge, WorkflowDefinition
from flowstar.model.gateways import ExclusiveGateway
from flowstar.model.registry import WorkflowRegistry
from flowstar.model.steps import BaseHumanStep, BaseMachineStep
from flowstar.model.waits import TimerStep

__all__ = ["AUTO_APPROVE_LIMIT", "build_document_review", "build_expense_approval", "build_registry", "registry"]

AUTO_APPROVE_LIMIT = 1000


class SubmitExpense(BaseMachineStep):
    """Record the expense report."""

    name = "submit_expense"

    async def execute(self, context: WorkflowContext) -> None:
        """Mark the report submitted."""
        context.set("submitted", True)


class AutoApprove(BaseMachineStep):
    """Approve small expenses without a person."""

    name = "auto_approve"

    async def execute(self, context: WorkflowContext) -> None:
        """Approve as the system."""
        context.set("approved", True)
        context.set("approved_by", "system")


class ManagerApproval(BaseHumanStep):
    """The manager named in the report decides."""

    name = "manager_approval"
    title = "Approve expense"
    assignee_key = "manager"
    assignee_group = "managers"
    due_in = timedelta(hours=24)
    form_schema = {
        "type": "object",
        "properties": {
            "decision": {"type": "string", "enum": ["approve", "reject"], "title": "Decision"},
            "comments": {"type": "string", "title": "Comments"},
        },
        "required": ["decision"],
    }


class ProcessDecision(BaseMachineStep):
    """Pay out approved expenses."""

    name = "process_decision"

    async def execute(self, context: WorkflowContext) -> None:
        """Record the outcome."""
        approved = bool(context.get("approved") or context.get("decision") == "approve")
        context.set("approved", approved)
        context.set("status", "approved" if approved else "rejected")


def build_expense_approval() -> WorkflowDefinition:
    """Expense approval: auto-approve under the limit, a manager decides above it."""
    return WorkflowDefinition(
        name="expense_approval",
        version="1.0.0",
        description="Auto-approve under a threshold, manager approval above",
        steps={
            "submit_expense": SubmitExpense(),
            "amount_router": ExclusiveGateway(
                "amount_router",
                [(f"context.get('amount', 0) < {AUTO_APPROVE_LIMIT}", "auto_approve")],
                default="manager_approval",
            ),
            "auto_approve": AutoApprove(),
            "manager_approval": ManagerApproval(),
            "process_decision": ProcessDecision(),
            "pay_out": TimerStep("pay_out", duration=timedelta(seconds=1)),
        },
        edges=[
            Edge("submit_expense", "amount_router"),
            Edge("amount_router", "auto_approve"),
            Edge("amount_router", "manager_approval"),
            Edge("auto_approve", "process_decision"),
            Edge("manager_approval", "process_decision"),
            Edge("process_decision", "pay_out"),
        ],
        initial_step="submit_expense",
        terminal_steps={"pay_out"},
    )


def _reviewer(step: str, group: str, who: str) -> BaseHumanStep:
    # Each reviewer's answer has its own key, so the parallel branches never overwrite
    # each other's data.
    form = {
        "type": "object",
        "properties": {
            f"{who}_verdict": {"type": "string", "enum": ["accept", "changes", "reject"], "title": "Verdict"},
            f"{who}_comments": {"type": "string", "title": "Comments", "maxLength": 4000},
        },
        "required": [f"{who}_verdict"],
    }
    return BaseHumanStep(
        step, title=f"Review document ({who})", assignee_group=group, form_schema=form, due_in=timedelta(days=2)
    )


class CollectReviews(BaseMachineStep):
    """The join: runs once, after both reviews; accepted only if both reviewers accept."""

    name = "collect_reviews"

    async def execute(self, context: WorkflowContext) -> None:
        """Record the outcome of both reviews."""
        verdicts = [context.get("manager_verdict"), context.get("finance_verdict")]
        context.set("accepted", verdicts == ["accept", "accept"])


def build_document_review() -> WorkflowDefinition:
    """Document review: a manager and finance review in parallel, then the join collects."""
    return WorkflowDefinition(
        name="document_review",
        version="1.0.0",
        description="Two reviewers in parallel (managers, finance), joined",
        steps={
            "submit_document": _Submit(),
            "manager_review": _reviewer("manager_review", "managers", "manager"),
            "finance_review": _reviewer("finance_review", "finance", "finance"),
            "collect_reviews": CollectReviews(),
        },
        edges=[
            Edge("submit_document", "manager_review"),
            Edge("submit_document", "finance_review"),
            Edge("manager_review", "collect_reviews"),
            Edge("finance_review", "collect_reviews"),
        ],
        initial_step="submit_document",
        terminal_steps={"collect_reviews"},
    )


class _Submit(BaseMachineStep):
    """Mark the document as submitted for review."""

    name = "submit_document"

    async def execute(self, context: WorkflowContext) -> None:
        """Note the submission."""
        context.set("submitted", True)


def build_registry() -> WorkflowRegistry:
    """A registry with the demo workflows."""
    demo = WorkflowRegistry()
    demo.register_definition(build_expense_approval())
    demo.register_definition(build_document_review())
    return demo


registry = build_registry()
