"""``flowstar bulk``: the dry run counts, the run acts once per item, ``show`` reads the progress."""

from __future__ import annotations

import json

from flowstar import TaskStatus, WorkflowStatus
from flowstar.engine.core import Engine
from tests.cli.conftest import Cli, error_line, started


def _statuses(cli: Cli, ids: list[str]) -> list[WorkflowStatus]:
    async def read(engine: Engine) -> list[WorkflowStatus]:
        return [(await engine.get_instance(i)).status for i in ids]

    return cli.with_engine(read)


def test_a_dry_run_counts_and_changes_nothing(cli: Cli) -> None:
    ids = [started(cli, "approval") for _ in range(3)]
    out = cli.ok("bulk", "cancel", "--workflow", "approval", "--dry-run").stdout
    assert "3 instances match; nothing changed (--dry-run)" in out
    assert json.loads(cli.ok("bulk", "cancel", "--dry-run", "--json").stdout) == {
        "kind": "cancel",
        "count": 3,
        "dry_run": True,
    }
    assert _statuses(cli, ids) == [WorkflowStatus.WAITING] * 3


def test_bulk_cancel_and_show(cli: Cli) -> None:
    ids = [started(cli, "approval") for _ in range(3)]
    other = started(cli, "delivery")
    out = cli.ok("bulk", "cancel", "--workflow", "approval", "--reason", "season over").stdout
    assert "3 instances match" in out
    assert "cancel: completed, 3 acted, 0 skipped (already done), 0 failed" in out
    assert _statuses(cli, ids) == [WorkflowStatus.CANCELED] * 3
    assert _statuses(cli, [other]) == [WorkflowStatus.WAITING]

    result = json.loads(cli.ok("bulk", "cancel", "--workflow", "approval", "--json", "--key", "k1").stdout)
    assert (result["acted"], result["total"]) == (0, 0)  # nothing left to cancel
    shown = json.loads(cli.ok("bulk", "show", result["id"]).stdout)
    assert shown == result
    again = json.loads(cli.ok("bulk", "cancel", "--workflow", "approval", "--json", "--key", "k1").stdout)
    assert again["id"] == result["id"]  # the same key: the same operation


def test_bulk_retry_runs_failed_instances_again(cli: Cli) -> None:
    failed = [started(cli, "order") for _ in range(2)]
    assert _statuses(cli, failed) == [WorkflowStatus.FAILED] * 2
    result = json.loads(cli.ok("bulk", "retry", "--workflow", "order", "--json").stdout)
    assert (result["status"], result["acted"]) == ("completed", 2)
    assert _statuses(cli, failed) == [WorkflowStatus.COMPLETED] * 2


def test_bulk_reassign_moves_open_tasks(cli: Cli) -> None:
    ids = [started(cli, "article") for _ in range(2)]
    out = cli.ok("bulk", "reassign", "--assignee", "alice", "--to-user", "bob", "--reason", "holiday").stdout
    assert "2 tasks match" in out
    assert "2 acted" in out

    async def owners(engine: Engine) -> list[str | None]:
        tasks = [t for i in ids for t in await engine.get_tasks(instance_id=i, status=TaskStatus.PENDING)]
        return [t.assignee_id for t in tasks]

    assert cli.with_engine(owners) == ["bob", "bob"]


def test_bad_bulk_commands_say_why(cli: Cli) -> None:
    said = error_line(cli("bulk", "reassign", "--group", "editors"))
    assert said == "flowstar: give --to-user and/or --to-group"
    assert "no bulk operation" in error_line(cli("bulk", "show", "0" * 32))
