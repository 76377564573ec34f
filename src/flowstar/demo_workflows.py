"""Workflows for the demo app and the default worker registry (``FLOWSTAR_REGISTRY``)."""

from __future__ import annotations

from datetime import timedelta

from flowstar.model.context import WorkflowContext
from flowstar.model.definition import Edge, WorkflowDefinition
from flowstar.model.escalation import Escalation
from flowstar.model.gateways import ExclusiveGateway
from flowstar.model.registry import WorkflowRegistry
from flowstar.model.steps import BaseHumanStep, BaseMachineStep
from flowstar.model.waits import TimerStep

__all__ = [
    "AUTO_APPROVE_LIMIT",
    "ESCALATION_AFTER",
    "FINANCE_LIMIT",
    "REMINDER_AFTER",
    "build_document_review",
    "build_expense_approval",
    "build_invoice_payment",
    "build_registry",
    "registry",
]

AUTO_APPROVE_LIMIT = 1000
FINANCE_LIMIT = 3000


class _Record(BaseMachineStep):
    """A step that writes fixed values into the data: a submission, an automatic approval, a payment."""

    def __init__(self, name: str, description: str, **values: str | bool) -> None:
        super().__init__(name, description)
        self.values = values

    async def execute(self, context: WorkflowContext) -> None:
        """Write the step's values."""
        for key, value in self.values.items():
            context.set(key, value)


class ManagerApproval(BaseHumanStep):
    """The manager named in the report decides."""

    name = "manager_approval"
    title = "Approve expense"
    description = f"Approve or reject the expense; above {FINANCE_LIMIT} an approval goes on to finance."
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


class FinanceApproval(BaseHumanStep):
    """Finance checks an expense above ``FINANCE_LIMIT`` once the manager has approved it."""

    name = "finance_approval"
    title = "Finance approval"
    description = f"The manager approved an expense above {FINANCE_LIMIT}: finance books it or rejects it."
    assignee_group = "finance"
    due_in = timedelta(days=2)
    # Finance's answer has keys of its own: the manager's decision stays in the data.
    form_schema = {
        "type": "object",
        "properties": {
            "finance_decision": {"type": "string", "enum": ["approve", "reject"], "title": "Decision"},
            "cost_center": {
                "type": "string",
                "title": "Cost center",
                "pattern": "^CC-[0-9]{4}$",
                "description": "CC- and four digits, e.g. CC-1042",
            },
            "finance_comments": {"type": "string", "title": "Comments", "maxLength": 4000},
        },
        "required": ["finance_decision", "cost_center"],
    }


class ProcessDecision(BaseMachineStep):
    """Pay out approved expenses."""

    name = "process_decision"

    async def execute(self, context: WorkflowContext) -> None:
        """Record the outcome: approved by the system, or by the manager and (when asked) finance."""
        by_people = context.get("decision") == "approve" and context.get("finance_decision", "approve") == "approve"
        approved = bool(context.get("approved") or by_people)
        context.set("approved", approved)
        context.set("status", "approved" if approved else "rejected")


def build_expense_approval() -> WorkflowDefinition:
    """Expense approval: automatic under a limit, else the manager, and finance too above a threshold."""
    return WorkflowDefinition(
        name="expense_approval",
        version="1.0.0",
        description=(
            f"Auto-approved under {AUTO_APPROVE_LIMIT}, else the manager decides; "
            f"finance approves too above {FINANCE_LIMIT}"
        ),
        steps={
            "submit_expense": _Record("submit_expense", "Record the expense report", submitted=True),
            "amount_router": ExclusiveGateway(
                "amount_router",
                [(f"context.get('amount', 0) < {AUTO_APPROVE_LIMIT}", "auto_approve")],
                default="manager_approval",
            ),
            "auto_approve": _Record(
                "auto_approve", "Approve a small expense without a person", approved=True, approved_by="system"
            ),
            "manager_approval": ManagerApproval(),
            # A rejection, or an amount up to the threshold, skips finance.
            "finance_router": ExclusiveGateway(
                "finance_router",
                [
                    (
                        f"context.get('decision') == 'approve' and context.get('amount', 0) > {FINANCE_LIMIT}",
                        "finance_approval",
                    )
                ],
                default="process_decision",
            ),
            "finance_approval": FinanceApproval(),
            "process_decision": ProcessDecision(),
            "pay_out": TimerStep("pay_out", duration=timedelta(seconds=1)),
        },
        edges=[
            Edge("submit_expense", "amount_router"),
            Edge("amount_router", "auto_approve"),
            Edge("amount_router", "manager_approval"),
            Edge("auto_approve", "process_decision"),
            Edge("manager_approval", "finance_router"),
            Edge("finance_router", "finance_approval"),
            Edge("finance_router", "process_decision"),
            Edge("finance_approval", "process_decision"),
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
            "submit_document": _Record("submit_document", "Submit the document for review", submitted=True),
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


REMINDER_AFTER = timedelta(minutes=2)
ESCALATION_AFTER = timedelta(minutes=5)


class PayInvoice(BaseHumanStep):
    """The payer (carol of finance unless the data names one) pays; late, it reminds, then moves."""

    name = "pay_invoice"
    title = "Pay supplier invoice"
    description = (
        "Pay the invoice and enter the bank's reference. A reminder is sent after 2 minutes and "
        "every 2 minutes while the task is open; after 5 minutes it moves to the managers group."
    )
    assignee_key = "payer"
    assignee = "carol"
    # Short delays so that the reminder and the escalation happen while one tries the demo.
    escalations = (
        Escalation(after=REMINDER_AFTER, every=REMINDER_AFTER),
        Escalation(after=ESCALATION_AFTER, to_group="managers"),
    )
    form_schema = {
        "type": "object",
        "properties": {
            "payment_reference": {"type": "string", "title": "Payment reference", "minLength": 3, "maxLength": 64},
            "paid_on": {"type": "string", "format": "date", "title": "Paid on"},
            "notes": {"type": "string", "title": "Notes", "x-widget": "textarea", "maxLength": 4000},
        },
        "required": ["payment_reference", "paid_on"],
    }


def build_invoice_payment() -> WorkflowDefinition:
    """Invoice payment: one task for finance with a repeating reminder and an escalation to the managers."""
    return WorkflowDefinition(
        name="invoice_payment",
        version="1.0.0",
        description="Finance pays an invoice; reminders after 2 minutes, the managers get it after 5",
        steps={
            "register_invoice": _Record("register_invoice", "Record the supplier's invoice", registered=True),
            "pay_invoice": PayInvoice(),
            "record_payment": _Record("record_payment", "Close the paid invoice", status="paid"),
        },
        edges=[Edge("register_invoice", "pay_invoice"), Edge("pay_invoice", "record_payment")],
        initial_step="register_invoice",
        terminal_steps={"record_payment"},
    )


def build_registry() -> WorkflowRegistry:
    """A registry with the demo workflows."""
    demo = WorkflowRegistry()
    demo.register_definition(build_expense_approval())
    demo.register_definition(build_document_review())
    demo.register_definition(build_invoice_payment())
    return demo


registry = build_registry()
