"""Code-first document approval with escalation: the guide's human-in-the-loop pattern.

The reviewer has three days to send ``review_completed``; after that the review escalates
to a manager, who answers with ``manager_review_completed``.  Either payload
(``{"approved": ..., "reviewer_notes": ...}``) joins the context and ``process_review``
decides.  The manual clock stands in for the three days.

Run it: ``python examples/code_first_document_approval.py``.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pydantic import BaseModel

from flowstar import LocalExecutionEngine, ManualClock, WorkflowRegistry
from flowstar.flow import FlowRun, complete, engine, get_context, goto, step, wait, workflow
from flowstar.logs import configure_logging
from flowstar.testing import advance

__all__ = ["DocumentApprovalWorkflow", "emails", "main", "registry", "submit_review"]

registry = WorkflowRegistry()
emails: list[tuple[str, int]] = []  # stands in for the mail server


def get_next_available_reviewer() -> str:
    return "rita"


def send_review_request_email(reviewer: str, document_id: int) -> None:
    emails.append((reviewer, document_id))


@workflow("document_approval", registry=registry)
class DocumentApprovalWorkflow:
    class Context(BaseModel):
        document_id: int
        reviewer_assigned: str = ""
        reviewer_notes: str = ""
        approved: bool = False
        escalated: bool = False

    @step(start=True)
    def assign_reviewer(self):
        ctx = get_context()
        ctx.reviewer_assigned = get_next_available_reviewer()
        send_review_request_email(ctx.reviewer_assigned, ctx.document_id)
        return wait.for_signal("review_completed", timeout=timedelta(days=3), on_timeout="escalate_review")

    @step()
    def process_review(self):
        ctx = get_context()
        # approved and reviewer_notes come from the signal's payload
        if ctx.approved:
            return goto(self.approve_document)
        return goto(self.request_revision)

    @step()
    def escalate_review(self):
        get_context().escalated = True
        return wait.for_signal("manager_review_completed", next=self.process_review)

    @step()
    def approve_document(self):
        return complete(outcome="approved")

    @step()
    def request_revision(self):
        return complete(outcome="revision requested")


async def submit_review(run: FlowRun, approved: bool, notes: str, *, manager: bool = False) -> int:
    """What the external review system calls."""
    name = "manager_review_completed" if manager else "review_completed"
    return await engine.signal(name, {"approved": approved, "reviewer_notes": notes}, instance_id=run.id)


async def main() -> tuple[FlowRun, FlowRun]:
    """One document reviewed in time, one escalated after three days; returns both runs."""
    clock = ManualClock()
    engine.use(LocalExecutionEngine(registry, clock=clock))
    try:
        prompt = await engine.start("document_approval", document_id=1)
        slow = await engine.start("document_approval", document_id=2)
        await submit_review(prompt, approved=True, notes="Looks good")
        prompt = await prompt.refresh()
        print(f"document 1: {prompt.status}, {prompt.data['outcome']}: {prompt.context.reviewer_notes}")
        await advance(engine, clock, timedelta(days=3))
        slow = await slow.refresh()
        print(f"document 2: {slow.status} at {slow.current_step}, escalated={slow.context.escalated}")
        await submit_review(slow, approved=False, notes="Needs a summary", manager=True)
        slow = await slow.refresh()
        print(f"document 2: {slow.status}, {slow.data['outcome']}: {slow.context.reviewer_notes}")
        return await prompt.refresh(), slow  # document 1 as it is after the three days
    finally:
        await engine.close()


if __name__ == "__main__":
    configure_logging()
    asyncio.run(main())
