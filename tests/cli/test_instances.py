"""``flowstar instances``: list, show, retry and cancel, checked in the database afterwards."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

from flowstar import ManualClock, StepStatus, TaskStatus, WorkflowStatus
from flowstar.engine.core import Engine
from tests.cli.conftest import Cli, error_line, started

# The JSON contract of an instance row, keys in order, spelled out apart from the code.
INSTANCE_KEYS = (
    "id workflow_name workflow_version status current_step error failed_step waiting_for wake_at"
    " tenant_id created_by started_at updated_at completed_at"
)


def _state(cli: Cli, instance_id: str) -> tuple[WorkflowStatus, dict[str, object], list[tuple[str, StepStatus]]]:
    """The instance's status, data and history, as the database has them now."""

    async def read(engine: Engine) -> tuple[WorkflowStatus, dict[str, object], list[tuple[str, StepStatus]]]:
        instance = await engine.get_instance(instance_id)
        history = await engine.get_history(instance_id)
        return instance.status, instance.data, [(r.step_name, r.status) for r in history]

    return cli.with_engine(read)


def test_list_prints_a_table_and_json_with_filters(cli: Cli) -> None:
    failed = [started(cli, "order"), started(cli, "order")]
    waiting = started(cli, "approval")

    table = cli.ok("instances", "list").stdout
    assert "┃ id" in table
    assert "workflow" in table
    for instance_id in [*failed, waiting]:
        assert instance_id in table

    rows = json.loads(cli.ok("instances", "list", "--json").stdout)
    assert [r["id"] for r in rows] == [waiting, *reversed(failed)]  # newest first
    assert all(" ".join(r) == INSTANCE_KEYS for r in rows)
    assert rows[0]["status"] == "waiting"
    assert rows[0]["waiting_for"] == ["signal:approved"]
    assert rows[1]["failed_step"] == "charge"
    assert "the payment service is down" in rows[1]["error"]

    by_status = json.loads(cli.ok("instances", "list", "--status", "failed", "--json").stdout)
    assert sorted(r["id"] for r in by_status) == sorted(failed)
    by_workflow = json.loads(cli.ok("instances", "list", "--workflow", "approval", "--json").stdout)
    assert [r["id"] for r in by_workflow] == [waiting]
    limited = json.loads(cli.ok("instances", "list", "--limit", "1", "--json").stdout)
    assert [r["id"] for r in limited] == [waiting]
    assert cli.ok("instances", "list", "--workflow", "nothing").stdout.strip() == "instances: none"


def test_list_older_than_picks_instances_started_before_the_cutoff(cli: Cli) -> None:
    old = started(cli, "approval", clock=ManualClock(datetime.now(UTC) - timedelta(hours=3)))
    recent = started(cli, "approval")
    rows = json.loads(cli.ok("instances", "list", "--older-than", "2h", "--json").stdout)
    assert [r["id"] for r in rows] == [old]
    rows = json.loads(cli.ok("instances", "list", "--older-than", "1h30m", "--json").stdout)
    assert [r["id"] for r in rows] == [old]
    assert recent in cli.ok("instances", "list").stdout
    line = error_line(cli("instances", "list", "--older-than", "2 hours"))
    assert line == "flowstar: --older-than '2 hours' is not a duration like 90s, 30m, 2h, 1d, 1w or 1h30m"


def test_show_prints_state_data_history_and_tasks(cli: Cli) -> None:
    instance_id = started(cli, "article", {"title": "[b]Spring[/b] issue"})
    out = cli.ok("instances", "show", instance_id).stdout
    assert f"instance {instance_id}" in out
    assert "waiting" in out
    assert '"title": "[b]Spring[/b] issue"' in out  # data verbatim: no Rich markup applied
    assert "Review the article" in out
    assert "alice" in out

    shown = json.loads(cli.ok("instances", "show", instance_id, "--json").stdout)
    assert set(shown) == {"instance", "data", "history", "tasks"}
    assert shown["instance"]["id"] == instance_id
    assert shown["instance"]["current_step"] == "review"
    assert shown["data"] == {"title": "[b]Spring[/b] issue"}
    assert [(r["step_name"], r["status"]) for r in shown["history"]] == [("review", "waiting")]
    [task] = shown["tasks"]
    assert (task["step_name"], task["assignee_id"], task["assignee_group"], task["status"]) == (
        "review",
        "alice",
        "editors",
        "pending",
    )


def test_retry_runs_the_failed_step_again_to_completion(cli: Cli) -> None:
    instance_id = started(cli, "order")
    assert _state(cli, instance_id)[0] is WorkflowStatus.FAILED

    out = cli.ok("instances", "retry", instance_id).stdout
    assert out.strip() == f"instance {instance_id} retried: completed"
    status, data, history = _state(cli, instance_id)
    assert status is WorkflowStatus.COMPLETED
    assert data["charged"] is True
    assert data["shipped"] is True
    assert history == [
        ("prepare", StepStatus.SUCCEEDED),
        ("charge", StepStatus.FAILED),
        ("charge", StepStatus.SUCCEEDED),
        ("ship", StepStatus.SUCCEEDED),
    ]


def test_retry_from_step_starts_there(cli: Cli) -> None:
    instance_id = started(cli, "order")
    result = json.loads(cli.ok("instances", "retry", instance_id, "--from-step", "prepare", "--json").stdout)
    assert result["instance"]["status"] == "completed"
    assert result["handed_to_workers"] is False
    steps = [name for name, _ in _state(cli, instance_id)[2]]
    assert steps == ["prepare", "charge", "prepare", "charge", "ship"]


def test_retry_refuses_an_instance_that_did_not_fail(cli: Cli) -> None:
    instance_id = started(cli, "approval")
    line = error_line(cli("instances", "retry", instance_id))
    assert line == f"flowstar: instance {instance_id} is waiting; only failed instances can be retried"
    assert _state(cli, instance_id)[0] is WorkflowStatus.WAITING


def test_cancel_cancels_the_instance_and_its_task(cli: Cli) -> None:
    instance_id = started(cli, "article")
    out = cli.ok("instances", "cancel", instance_id, "--reason", "duplicate article", "--by", "ops").stdout
    assert out.strip() == f"instance {instance_id} canceled: duplicate article"

    async def read(engine: Engine) -> tuple[WorkflowStatus, str | None, list[TaskStatus]]:
        instance = await engine.get_instance(instance_id)
        tasks = await engine.get_tasks(instance_id=instance_id, status=None)
        return instance.status, instance.error, [t.status for t in tasks]

    status, error, tasks = cli.with_engine(read)
    assert status is WorkflowStatus.CANCELED
    assert error is not None
    assert "duplicate article" in error
    assert tasks == [TaskStatus.CANCELED]
    line = error_line(cli("instances", "cancel", instance_id))
    assert line.startswith(f"flowstar: instance {instance_id} is canceled")


def test_an_unknown_instance_is_one_line_on_stderr(cli: Cli) -> None:
    unknown = str(uuid4())
    for command in ("show", "retry", "cancel"):
        result = cli("instances", command, unknown)
        assert error_line(result) == f"flowstar: no workflow instance with id {unknown!r}"
        assert result.stdout == ""
    assert error_line(cli("instances", "show", "not-an-id")) == "flowstar: no workflow instance with id 'not-an-id'"


def test_reads_of_a_mistyped_sqlite_path_are_refused_and_create_no_file(tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    cli = Cli(url=f"sqlite+aiosqlite:///{missing}", env={"FLOWSTAR_REGISTRY": "tests.cli.registry:registry"})
    for command in (["instances", "list"], ["instances", "show", str(uuid4())], ["tasks", "overdue"]):
        result = cli(*command, "--url", cli.url)
        assert error_line(result) == f"flowstar: no SQLite database at {missing} (flowstar db upgrade creates one)"
    assert not missing.exists()
