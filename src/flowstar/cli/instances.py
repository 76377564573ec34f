"""``flowstar instances``: list, show, retry and cancel workflow instances."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import typer

from flowstar.cli._options import JsonOption, LimitOption, UrlOption
from flowstar.cli._output import cell, console, emit, print_json, say
from flowstar.cli._parse import parse_duration
from flowstar.cli._runtime import hands_off, reading, run, settings, start_logging, writing
from flowstar.cli._views import (
    HISTORY_COLUMNS,
    INSTANCE_COLUMNS,
    TASK_COLUMNS,
    collect,
    instance_row,
    record_row,
    task_row,
)
from flowstar.model.enums import WorkflowStatus
from flowstar.settings import FlowstarSettings

__all__ = ["app", "register"]

app = typer.Typer(help="Workflow instances: list, show, retry, cancel.", no_args_is_help=True)

IdArgument = Annotated[str, typer.Argument(help="the instance id", show_default=False)]


def register(root: typer.Typer) -> None:
    """Add ``flowstar instances ...`` to the root command."""
    root.add_typer(app, name="instances")


@app.command("list")
def list_instances(
    *,
    workflow: Annotated[str | None, typer.Option(help="only this workflow (definition name)")] = None,
    status: Annotated[WorkflowStatus | None, typer.Option(help="only instances in this status")] = None,
    older_than: Annotated[
        str | None, typer.Option("--older-than", help="started longer ago than this (90s, 30m, 2h, 1d, 1w)")
    ] = None,
    limit: LimitOption = 50,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """List instances, newest first."""
    start_logging()
    config = settings(url)
    age = parse_duration(older_than, "--older-than") if older_than is not None else None
    rows = run(_list(config, workflow, status, age, limit), database=config.database_url)
    emit(rows, INSTANCE_COLUMNS, as_json=as_json, title="instances")


async def _list(
    config: FlowstarSettings, workflow: str | None, status: WorkflowStatus | None, age: timedelta | None, limit: int
) -> list[dict[str, Any]]:
    async with reading(config) as engine:
        before = engine.clock.now() - age if age is not None else None
        found = await collect(
            lambda size, cursor: engine.find_instances(
                workflow_name=workflow, status=status, created_before=before, limit=size, cursor=cursor
            ),
            limit,
            what="instances",
        )
    return [instance_row(i) for i in found]


@app.command()
def show(instance_id: IdArgument, url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Show an instance: its state, its data, its step history and its tasks."""
    start_logging()
    config = settings(url)
    found = run(_show(config, instance_id), database=config.database_url)
    if as_json:
        print_json(found)
        return
    _print_instance(found["instance"])
    say("data:")
    print_json(found["data"])
    emit(found["history"], HISTORY_COLUMNS, as_json=False, title="history")
    emit(found["tasks"], TASK_COLUMNS, as_json=False, title="tasks")


async def _show(config: FlowstarSettings, instance_id: str) -> dict[str, Any]:
    async with reading(config) as engine:
        instance = await engine.get_instance(instance_id)
        history = await engine.get_history(instance.id)
        tasks = await engine.get_tasks(instance_id=instance.id, status=None)
    return {
        "instance": instance_row(instance),
        "data": instance.data,
        "history": [record_row(r) for r in history],
        "tasks": [task_row(t) for t in tasks],
    }


def _print_instance(row: dict[str, Any]) -> None:
    """The instance's fields, one per line (fields without a value left out)."""
    from rich.table import Table

    table = Table(title=f"instance {row['id']}", title_justify="left", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in row.items():
        if key != "id" and value not in (None, []):
            table.add_row(key, cell(value))
    console().print(table)


@app.command()
def retry(
    instance_id: IdArgument,
    from_step: Annotated[
        str | None, typer.Option("--from-step", help="the step to run again (default: the one that failed)")
    ] = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run a failed instance again from the step that failed (or --from-step)."""
    start_logging()
    config = settings(url)
    result = run(_retry(config, instance_id, from_step), database=config.database_url)
    _report(result, f"retried from {from_step}" if from_step else "retried", as_json=as_json)


async def _retry(config: FlowstarSettings, instance_id: str, from_step: str | None) -> dict[str, Any]:
    async with writing(config) as engine:
        instance = await engine.retry(instance_id, from_step)
        return {"instance": instance_row(instance), "handed_to_workers": hands_off(engine)}


@app.command()
def cancel(
    instance_id: IdArgument,
    reason: Annotated[str, typer.Option(help="why (kept as the instance's error)")] = "canceled by an operator",
    by: Annotated[str | None, typer.Option(help="who cancels it (kept with the cancellation)")] = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cancel a running or waiting instance, its pending steps and its open tasks."""
    start_logging()
    config = settings(url)
    result = run(_cancel(config, instance_id, reason, by), database=config.database_url)
    _report(result, "canceled", as_json=as_json, detail=reason)


async def _cancel(config: FlowstarSettings, instance_id: str, reason: str, by: str | None) -> dict[str, Any]:
    async with writing(config) as engine:
        instance = await engine.cancel_workflow(instance_id, reason, by)
        return {"instance": instance_row(instance), "handed_to_workers": hands_off(engine)}


def _report(result: dict[str, Any], done: str, *, as_json: bool, detail: str | None = None) -> None:
    """What a change did: ``detail``, or the instance's status now and where its steps run."""
    if as_json:
        print_json(result)
        return
    row = result["instance"]
    line = f"instance {row['id']} {done}: {detail or row['status']}"
    if row["status"] == WorkflowStatus.WAITING and row["current_step"]:
        line += f" at {row['current_step']}"
    if row["status"] == WorkflowStatus.FAILED and row["error"]:
        line += f" ({row['error']})"
    if result["handed_to_workers"] and row["status"] == WorkflowStatus.RUNNING:
        line += "; its steps run on the workers"
    say(line)
