"""The demo's document review: two group reviews in parallel, one join after both."""

from __future__ import annotations

from flowstar import LocalExecutionEngine
from flowstar.demo_workflows import build_registry
from flowstar.model.enums import TaskStatus, WorkflowStatus


async def test_document_review_joins_both_reviews() -> None:
    engine = LocalExecutionEngine(build_registry())
    try:
        instance = await engine.start_workflow("document_review", {"title": "Q3 report"})
        tasks = (await engine.find_tasks(instance_id=instance.id, status=TaskStatus.PENDING)).items
        assert sorted((t.step_name, t.assignee_group) for t in tasks) == [
            ("finance_review", "finance"),
            ("manager_review", "managers"),
        ]
        by_step = {t.step_name: t for t in tasks}
        waiting = await engine.complete_task(by_step["manager_review"].id, "bob", {"manager_verdict": "accept"})
        assert waiting.status == WorkflowStatus.WAITING  # the join waits for finance
        done = await engine.complete_task(by_step["finance_review"].id, "carol", {"finance_verdict": "accept"})
        assert done.status == WorkflowStatus.COMPLETED
        assert done.data["accepted"] is True
        history = [r.step_name for r in await engine.get_history(instance.id)]
        assert history.count("collect_reviews") == 1

        second = await engine.start_workflow("document_review", {})
        tasks = (await engine.find_tasks(instance_id=second.id, status=TaskStatus.PENDING)).items
        by_step = {t.step_name: t for t in tasks}
        await engine.complete_task(by_step["finance_review"].id, "carol", {"finance_verdict": "accept"})
        done = await engine.complete_task(by_step["manager_review"].id, "bob", {"manager_verdict": "changes"})
        assert done.data["accepted"] is False
    finally:
        await engine.close()
