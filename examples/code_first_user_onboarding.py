"""Code-first user onboarding: the guide's quick start.

A typed context made by ``create_context``, one step, and ``engine.start`` with keyword
arguments.  Run it: ``python examples/code_first_user_onboarding.py``.
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel

from flowstar import LocalExecutionEngine, WorkflowRegistry
from flowstar.flow import FlowRun, complete, engine, get_context, step, workflow
from flowstar.logs import configure_logging

__all__ = ["UserOnboardingWorkflow", "main", "registry", "sent"]

registry = WorkflowRegistry()
sent: list[int] = []  # stands in for the mail server


def send_welcome(user_id: int) -> None:
    sent.append(user_id)


@workflow("user_onboarding", registry=registry)
class UserOnboardingWorkflow:
    class Context(BaseModel):
        user_id: int
        email_sent: bool = False
        profile_completed: bool = False

    @classmethod
    def create_context(cls, user_id: int) -> UserOnboardingWorkflow.Context:
        return cls.Context(user_id=user_id)

    @step(start=True)
    def send_welcome_email(self):
        ctx = get_context()
        send_welcome(ctx.user_id)
        ctx.email_sent = True
        return complete()


async def main() -> FlowRun:
    """Onboard user 123."""
    engine.use(LocalExecutionEngine(registry))
    try:
        run = await engine.start("user_onboarding", user_id=123)
        print(f"status: {run.status}, email sent: {run.context.email_sent}")
        return run
    finally:
        await engine.close()


if __name__ == "__main__":
    configure_logging()
    asyncio.run(main())
