"""``flowstar tasks``: the inbox seen by an operator (overdue tasks, reassigning)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from flowstar.cli._options import JsonOption, LimitOption, UrlOption
from flowstar.cli._output import emit, fail, print_json, say
from flowstar.cli._runtime import reading, run, settings, start_logging, writing
from flowstar.cli._views import TASK_COLUMNS, collect, task_row
from flowstar.settings import FlowstarSettings

__all__ = ["app", "register"]

app = typer.Typer(help="Human tasks: overdue ones, reassigning.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    """Add ``flowstar tasks ...`` to the root command."""
    root.add_typer(app, name="tasks")


@app.command()
def overdue(
    workflow: Annotated[str | None, typer.Option(help="only tasks of this workflow")] = None,
    group: Annotated[str | None, typer.Option(help="only tasks assigned to this group")] = None,
    limit: LimitOption = 100,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """List open tasks past their due date, oldest first."""
    start_logging()
    config = settings(url)
    rows = run(_overdue(config, workflow, group, limit), database=config.database_url)
    emit(rows, TASK_COLUMNS, as_json=as_json, title="overdue tasks")


async def _overdue(
    config: FlowstarSettings, workflow: str | None, group: str | None, limit: int
) -> list[dict[str, Any]]:
    async with reading(config) as engine:
        found = await collect(
            lambda size, cursor: engine.find_tasks(
                overdue=True, workflow_name=workflow, group=group, limit=size, cursor=cursor
            ),
            limit,
            what="tasks",
        )
    return [task_row(t) for t in found]


@app.command()
def reassign(
    task_id: Annotated[str, typer.Argument(help="the task id", show_default=False)],
    *,
    to_user: Annotated[str | None, typer.Option("--to-user", help="the user who gets it")] = None,
    to_group: Annotated[str | None, typer.Option("--to-group", help="the group whose members may claim it")] = None,
    reason: Annotated[str | None, typer.Option(help="why (kept in the task's audit trail)")] = None,
    by: Annotated[str | None, typer.Option(help="who reassigns it (kept in the audit trail)")] = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Give an open task to another user and/or group; its claim ends.

    A new group alone leaves the task to the group's members (no assignee); a new user
    alone keeps the task's group.
    """
    if to_user is None and to_group is None:
        fail("give --to-user, --to-group or both")
    start_logging()
    config = settings(url)
    row = run(
        _reassign(config, task_id, to_user=to_user, to_group=to_group, reason=reason, by=by),
        database=config.database_url,
    )
    if as_json:
        print_json(row)
        return
    user, group = row["assignee_id"] or "-", row["assignee_group"] or "-"
    say(f"task {row['id']} ({row['title']}) now assigned to user {user}, group {group}")


async def _reassign(
    config: FlowstarSettings,
    task_id: str,
    *,
    to_user: str | None,
    to_group: str | None,
    reason: str | None,
    by: str | None,
) -> dict[str, Any]:
    async with writing(config) as engine:
        task = await engine.reassign_task(task_id, to_user, assignee_group=to_group, reason=reason, reassigned_by=by)
        return task_row(task)
