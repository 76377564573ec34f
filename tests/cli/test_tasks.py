"""``flowstar tasks overdue`` and ``flowstar tasks reassign`` (the move checked in the database)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from flowstar import ManualClock
from flowstar.engine.core import Engine
from flowstar.model.state import HumanTask, TaskAuditEntry
from tests.cli.conftest import Cli, error_line, started


def _task_of(cli: Cli, instance_id: str) -> str:
    async def find(engine: Engine) -> str:
        [task] = await engine.get_tasks(instance_id=instance_id)
        return task.id

    return cli.with_engine(find)


def _task_and_audit(cli: Cli, task_id: str) -> tuple[HumanTask, list[TaskAuditEntry]]:
    async def read(engine: Engine) -> tuple[HumanTask, list[TaskAuditEntry]]:
        return await engine.get_task(task_id), await engine.task_audit(task_id)

    return cli.with_engine(read)


def test_overdue_lists_open_tasks_past_their_due_date(cli: Cli) -> None:
    late = started(cli, "article", clock=ManualClock(datetime.now(UTC) - timedelta(days=2)))
    started(cli, "article")  # due tomorrow
    late_task = _task_of(cli, late)

    rows = json.loads(cli.ok("tasks", "overdue", "--json").stdout)
    assert [(r["id"], r["instance_id"], r["step_name"]) for r in rows] == [(late_task, late, "review")]
    assert rows[0]["assignee_id"] == "alice"
    assert datetime.fromisoformat(rows[0]["due_at"]) < datetime.now(UTC)

    table = cli.ok("tasks", "overdue").stdout
    assert "overdue tasks" in table
    assert late_task in table
    assert "Review the article" in table
    assert json.loads(cli.ok("tasks", "overdue", "--group", "sales", "--json").stdout) == []
    assert cli.ok("tasks", "overdue", "--workflow", "order").stdout.strip() == "overdue tasks: none"


def test_reassign_to_a_user_moves_the_task(cli: Cli) -> None:
    task_id = _task_of(cli, started(cli, "article"))
    out = cli.ok("tasks", "reassign", task_id, "--to-user", "bob", "--reason", "alice is away", "--by", "ops").stdout
    # A new user alone keeps the task's group.
    assert out.strip() == f"task {task_id} (Review the article) now assigned to user bob, group editors"
    task, audit = _task_and_audit(cli, task_id)
    assert (task.assignee_id, task.assignee_group) == ("bob", "editors")
    assert (audit[-1].action, audit[-1].actor) == ("reassigned", "ops")
    assert audit[-1].details["reason"] == "alice is away"


def test_reassign_to_a_group_leaves_it_to_the_members(cli: Cli) -> None:
    # A new group alone takes the task from its assignee.
    task_id = _task_of(cli, started(cli, "article"))
    row = json.loads(cli.ok("tasks", "reassign", task_id, "--to-group", "reviewers", "--json").stdout)
    assert (row["id"], row["assignee_id"], row["assignee_group"]) == (task_id, None, "reviewers")
    task, _ = _task_and_audit(cli, task_id)
    assert (task.assignee_id, task.assignee_group) == (None, "reviewers")
    json.loads(cli.ok("tasks", "reassign", task_id, "--to-user", "carol", "--to-group", "editors", "--json").stdout)
    task, _ = _task_and_audit(cli, task_id)
    assert (task.assignee_id, task.assignee_group) == ("carol", "editors")


def test_reassign_needs_a_target_and_a_known_task(cli: Cli) -> None:
    task_id = _task_of(cli, started(cli, "article"))
    assert error_line(cli("tasks", "reassign", task_id)) == "flowstar: give --to-user, --to-group or both"
    unknown = "00000000-0000-0000-0000-000000000000"
    assert error_line(cli("tasks", "reassign", unknown, "--to-user", "bob")) == f"flowstar: no task with id {unknown}"
    task, _ = _task_and_audit(cli, task_id)
    assert (task.assignee_id, task.assignee_group) == ("alice", "editors")


def test_with_redis_unreachable_a_change_is_refused_in_one_line_and_nothing_changes(cli: Cli) -> None:
    instance_id = started(cli, "article")
    task_id = _task_of(cli, instance_id)
    result = cli("tasks", "reassign", task_id, "--to-user", "bob", FLOWSTAR_REDIS_URL="redis://:s3cret@127.0.0.1:9/0")
    line = error_line(result)
    assert line.startswith("flowstar: Redis at redis://:***@127.0.0.1:9/0 is unreachable (Redis: ")
    assert line.endswith("nothing was changed. Start it, or unset FLOWSTAR_REDIS_URL to run the steps in this process.")
    assert "s3cret" not in result.stderr
    task, audit = _task_and_audit(cli, task_id)
    assert task.assignee_id == "alice"
    assert [entry.action for entry in audit] == ["created"]
