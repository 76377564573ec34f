"""The blocking facade for scripts and sync frameworks, over a workflow with a pydantic context."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pydantic
import pytest

from flowstar import LocalExecutionEngine, ManualClock, ValidationError, WorkflowRegistry, WorkflowStatus
from flowstar.flow import FlowEngine, SyncFlowEngine, complete, get_context, goto, step, wait, workflow


def document_approval(registry: WorkflowRegistry) -> type:
    class ApprovalContext(pydantic.BaseModel):
        document_id: int
        reviewer_notes: str = ""
        approved: bool = False
        history: list[str] = []
        thread: str = ""

    @workflow("document_approval", registry=registry)
    class DocumentApproval:
        Context = ApprovalContext

        @step(start=True)
        def assign(self):
            get_context().history.append("assigned")
            return wait.for_signal("review_completed", timeout=timedelta(days=3), on_timeout=self.escalate)

        @step()
        def process_review(self):
            ctx = get_context()
            ctx.history.append("reviewed")
            ctx.thread = threading.current_thread().name
            return goto(self.approve) if ctx.approved else complete(outcome="revise")

        @step()
        def escalate(self):
            return wait.for_signal("manager_review_completed", next=self.process_review)

        @step()
        def approve(self):
            return complete(outcome="approved")

    return DocumentApproval


@pytest.fixture
def sync_flow(registry: WorkflowRegistry) -> Iterator[SyncFlowEngine]:
    facade = SyncFlowEngine(FlowEngine(LocalExecutionEngine(registry, clock=ManualClock())))
    yield facade
    facade.close()


def test_start_signal_and_refresh_from_sync_code(sync_flow: SyncFlowEngine, registry: WorkflowRegistry) -> None:
    approval = document_approval(registry)
    run = sync_flow.start("document_approval", document_id=7)
    assert (run.status, run.current_step, run.waiting_signal) == (WorkflowStatus.WAITING, "assign", "review_completed")
    assert isinstance(run.context, approval.Context)
    assert run.context.history == ["assigned"]
    assert sync_flow.signal("review_completed", {"approved": True, "reviewer_notes": "good"}) == 1
    assert run.status is WorkflowStatus.WAITING  # a snapshot until refreshed
    run.refresh_from_db()
    assert run.status is WorkflowStatus.COMPLETED
    assert run.context.history == ["assigned", "reviewed"]
    assert (run.context.reviewer_notes, run.data["outcome"]) == ("good", "approved")
    # The steps ran on the facade's loop thread (or a worker thread of it), not here.
    assert run.context.thread != threading.current_thread().name
    assert [r.id for r in sync_flow.find(status="completed")] == [run.id]
    assert sync_flow.get(run.id).status is WorkflowStatus.COMPLETED


def test_pydantic_validation_errors_name_the_field(sync_flow: SyncFlowEngine, registry: WorkflowRegistry) -> None:
    document_approval(registry)
    with pytest.raises(ValidationError, match="document_id"):
        sync_flow.start("document_approval", document_id="seven")
    canceled = sync_flow.cancel(sync_flow.start("document_approval", document_id=1).id, "withdrawn")
    assert canceled.status is WorkflowStatus.CANCELED


async def test_a_wrong_assignment_to_a_pydantic_field_fails_the_step(
    local_flow: FlowEngine, registry: WorkflowRegistry
) -> None:
    class Counter(pydantic.BaseModel):
        count: int = 0

    @workflow("bad_pydantic", registry=registry)
    class BadPydantic:
        Context = Counter

        @step(start=True)
        def work(self):
            get_context().count = "many"
            return complete()

    run = await local_flow.start("bad_pydantic")
    assert run.status is WorkflowStatus.FAILED
    assert run.error is not None
    assert "count" in run.error
