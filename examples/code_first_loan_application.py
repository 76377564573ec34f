"""Code-first loan application: the guide's state machine pattern.

Each state is a step; ``check_credit`` routes by the credit score, and the manual review
waits for a signal.  Run it: ``python examples/code_first_loan_application.py``.
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel

from flowstar import LocalExecutionEngine, WorkflowRegistry
from flowstar.flow import FlowRun, complete, engine, get_context, goto, step, wait, workflow
from flowstar.logs import configure_logging

__all__ = ["LoanApplicationWorkflow", "main", "registry"]

registry = WorkflowRegistry()


@workflow("loan_application", registry=registry)
class LoanApplicationWorkflow:
    class Context(BaseModel):
        application_id: int
        state: str = "submitted"
        credit_score: int = 0
        income_verified: bool = False
        decision: str = ""

    @step(start=True)
    def submitted_state(self):
        ctx = get_context()
        ctx.state = "under_review"
        return goto(self.check_credit)

    @step()
    def check_credit(self):
        ctx = get_context()
        if ctx.credit_score > 700:
            ctx.state = "approved"
            return goto(self.approved_state)
        if ctx.credit_score > 600:
            ctx.state = "manual_review"
            return goto(self.manual_review_state)
        ctx.state = "denied"
        return goto(self.denied_state)

    @step()
    def approved_state(self):
        return complete(decision="approved")

    @step()
    def manual_review_state(self):
        # The reviewer's signal carries {"decision": "approved" | "denied"}.
        return wait.for_signal("manual_review_complete", next=self.record_review)

    @step()
    def record_review(self):
        ctx = get_context()
        ctx.state = ctx.decision
        return complete()

    @step()
    def denied_state(self):
        return complete(decision="denied")


async def main(review_decision: str = "approved") -> dict[int, FlowRun]:
    """Three applications: a good score, a middling one (the reviewer gives
    ``review_decision``) and a poor one.  Returns the runs by credit score."""
    engine.use(LocalExecutionEngine(registry))
    try:
        started = {
            score: await engine.start("loan_application", application_id=score, credit_score=score)
            for score in (750, 650, 500)
        }
        print(f"score 650: {started[650].status} at {started[650].current_step}")
        await engine.signal("manual_review_complete", {"decision": review_decision}, instance_id=started[650].id)
        runs = {score: await run.refresh() for score, run in started.items()}
        for score, run in runs.items():
            print(f"score {score}: {run.status}, state {run.context.state}, decision {run.context.decision}")
        return runs
    finally:
        await engine.close()


if __name__ == "__main__":
    configure_logging()
    asyncio.run(main())
