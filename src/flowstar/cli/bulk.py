"""``flowstar bulk``: retry or cancel every matching instance, reassign every matching task.

Each command counts what matches first and prints it (``--dry-run`` stops there), then runs
the operation here with a progress bar.  The operation is stored like one sent to the REST
API (``flowstar.engine.bulk``): ``flowstar bulk show ID`` reads its progress from anywhere,
and sending it again with the same ``--key`` returns it instead of starting another.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from flowstar.cli._options import JsonOption, UrlOption
from flowstar.cli._output import fail, print_json, progress, say
from flowstar.cli._parse import parse_duration
from flowstar.cli._runtime import reading, run, settings, start_logging, writing
from flowstar.model.bulk import BulkFilter, BulkOperation, BulkRequest, describe
from flowstar.model.enums import WorkflowStatus
from flowstar.settings import FlowstarSettings

__all__ = ["app", "register"]

app = typer.Typer(help="Bulk actions: retry, cancel or reassign everything a filter matches.", no_args_is_help=True)

WorkflowOption = Annotated[str | None, typer.Option(help="only this workflow (definition name)")]
StatusOption = Annotated[
    list[WorkflowStatus] | None, typer.Option("--status", help="only these statuses (repeat the option)")
]
OlderOption = Annotated[
    str | None, typer.Option("--older-than", help="started longer ago than this (90s, 30m, 2h, 1d, 1w)")
]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="count what matches, change nothing")]
KeyOption = Annotated[
    str | None, typer.Option("--key", help="an idempotency key: sending it again returns the first operation")
]


def register(root: typer.Typer) -> None:
    """Add ``flowstar bulk ...`` to the root command."""
    root.add_typer(app, name="bulk")


@app.command()
def cancel(
    *,
    workflow: WorkflowOption = None,
    status: StatusOption = None,
    older_than: OlderOption = None,
    reason: Annotated[str, typer.Option(help="why (kept as each instance's error)")] = "canceled in bulk",
    dry_run: DryRunOption = False,
    key: KeyOption = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cancel every running or waiting instance that matches."""
    filter_ = _instance_filter(workflow, status, older_than)
    request = BulkRequest(kind="cancel", filter=filter_, reason=reason)
    _bulk(request, "instances", dry_run=dry_run, key=key, url=url, as_json=as_json)


@app.command()
def retry(
    *,
    workflow: WorkflowOption = None,
    older_than: OlderOption = None,
    from_step: Annotated[
        str | None, typer.Option("--from-step", help="the step to run again (default: the one that failed)")
    ] = None,
    dry_run: DryRunOption = False,
    key: KeyOption = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run every failed instance that matches again."""
    filter_ = _instance_filter(workflow, None, older_than)
    request = BulkRequest(kind="retry", filter=filter_, from_step=from_step)
    _bulk(request, "instances", dry_run=dry_run, key=key, url=url, as_json=as_json)


@app.command()
def reassign(
    *,
    to_user: Annotated[str | None, typer.Option("--to-user", help="the new assignee")] = None,
    to_group: Annotated[str | None, typer.Option("--to-group", help="the new group")] = None,
    workflow: WorkflowOption = None,
    assignee: Annotated[str | None, typer.Option(help="only tasks assigned to this user")] = None,
    group: Annotated[str | None, typer.Option(help="only tasks of this group")] = None,
    reason: Annotated[str | None, typer.Option(help="why (kept in each task's audit trail)")] = None,
    dry_run: DryRunOption = False,
    key: KeyOption = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Give every open task that matches to another user and/or group."""
    if not (to_user or to_group):
        fail("give --to-user and/or --to-group")
    request = BulkRequest(
        kind="reassign",
        filter=BulkFilter(workflow=workflow, assignee=assignee, group=group),
        to_user=to_user,
        to_group=to_group,
        reason=reason,
    )
    _bulk(request, "tasks", dry_run=dry_run, key=key, url=url, as_json=as_json)


@app.command()
def show(operation_id: Annotated[str, typer.Argument(help="the operation id")], url: UrlOption = None) -> None:
    """Show a bulk operation's progress (one run here, from the REST API or another shell)."""
    start_logging()
    config = settings(url)
    print_json(run(_show(config, operation_id), database=config.database_url))


async def _show(config: FlowstarSettings, operation_id: str) -> dict[str, Any]:
    async with reading(config) as engine:
        return describe(await engine.bulk.get(operation_id))


def _instance_filter(workflow: str | None, status: list[WorkflowStatus] | None, older_than: str | None) -> BulkFilter:
    age = parse_duration(older_than, "--older-than") if older_than is not None else None
    return BulkFilter(
        workflow=workflow,
        statuses=tuple(s.value for s in status) if status else None,
        created_before=datetime.now(UTC) - age if age is not None else None,
    )


def _bulk(request: BulkRequest, items: str, *, dry_run: bool, key: str | None, url: str | None, as_json: bool) -> None:
    start_logging()
    config = settings(url)
    result = run(_run(config, request, items, dry_run, key, quiet=as_json), database=config.database_url)
    if as_json:
        print_json(result)
    elif not dry_run:
        say(
            f"{request.kind}: {result['status']}, {result['acted']} acted, {result['skipped']} skipped"
            f" (already done), {result['failed']} failed"
        )
        for error in result["errors"]:
            say(f"  {error}")


async def _run(
    config: FlowstarSettings, request: BulkRequest, items: str, dry_run: bool, key: str | None, *, quiet: bool
) -> dict[str, Any]:
    async with writing(config) as engine:
        count = await engine.bulk.count(request)
        if dry_run:
            if not quiet:
                say(f"{count} {items} match; nothing changed (--dry-run)")
            return {"kind": request.kind, "count": count, "dry_run": True}
        if not quiet:
            say(f"{count} {items} match")
        operation = await engine.bulk.submit(request, idempotency_key=key, run=False)
        with progress(f"{request.kind} {items}", operation.total) as advance:
            seen = [operation.done]

            def moved(current: BulkOperation) -> None:
                advance(current.done - seen[0])
                seen[0] = current.done

            operation = await engine.bulk.run(operation.id, moved)
        return describe(operation)
