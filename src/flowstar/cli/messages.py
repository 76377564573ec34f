"""``flowstar signal`` and ``flowstar event``: wake waiting instances from outside.

Both are logged first and then delivered, as through the engine's API: an instance that
starts waiting a moment later still receives them within its wait's lookback.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from flowstar.cli._options import JsonOption, UrlOption
from flowstar.cli._output import print_json, say
from flowstar.cli._parse import parse_payload, parse_time
from flowstar.cli._runtime import hands_off, run, settings, start_logging, writing
from flowstar.settings import FlowstarSettings

__all__ = ["event", "register", "signal"]

PayloadOption = Annotated[
    str | None, typer.Option(help="a JSON object merged into the data of the instances it wakes", show_default=False)
]
TenantOption = Annotated[str | None, typer.Option(help="the tenant (default: instances without one)")]


def register(root: typer.Typer) -> None:
    """Add ``flowstar signal`` and ``flowstar event`` to the root command."""
    root.command()(signal)
    root.command()(event)


def signal(
    name: Annotated[str, typer.Argument(help="the signal's name", show_default=False)],
    *,
    instance: Annotated[
        str | None, typer.Option(help="the instance it is for (default: every instance waiting for it)")
    ] = None,
    payload: PayloadOption = None,
    tenant: TenantOption = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Send a signal to one instance, or to every instance waiting for it."""
    start_logging()
    config = settings(url)
    data = parse_payload(payload)
    result = run(_signal(config, name, instance, data, tenant), database=config.database_url)
    if as_json:
        print_json(result)
        return
    target = f" for instance {instance}" if instance else ""
    say(f"signal {name!r}{target} woke {result['woken']} instance(s){_where(result)}")


async def _signal(
    config: FlowstarSettings, name: str, instance: str | None, data: dict[str, Any], tenant: str | None
) -> dict[str, Any]:
    async with writing(config) as engine:
        woken = await engine.signal(name, data, instance_id=instance, tenant_id=None if instance else tenant)
        return {"signal": name, "instance_id": instance, "woken": woken, "handed_to_workers": hands_off(engine)}


def event(
    name: Annotated[str, typer.Argument(help="the event's name", show_default=False)],
    entity_id: Annotated[str, typer.Argument(help="what it is about (an order id, a customer id)", show_default=False)],
    *,
    at: Annotated[
        str | None, typer.Option(help="when it happens, ISO 8601 with a time zone (default: now)", show_default=False)
    ] = None,
    payload: PayloadOption = None,
    tenant: TenantOption = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Report an external event: it wakes the instances waiting for it and starts those it triggers."""
    start_logging()
    config = settings(url)
    data = parse_payload(payload)
    when = parse_time(at, "--at") if at is not None else None
    result = run(_event(config, name, entity_id, when=when, data=data, tenant=tenant), database=config.database_url)
    if as_json:
        print_json(result)
        return
    say(f"event {name!r} about {entity_id} reported as {result['event_id']}{_where(result)}")


async def _event(
    config: FlowstarSettings,
    name: str,
    entity_id: str,
    *,
    when: datetime | None,
    data: dict[str, Any],
    tenant: str | None,
) -> dict[str, Any]:
    async with writing(config) as engine:
        event_id = await engine.report_event(name, entity_id, at=when, payload=data, tenant_id=tenant)
        return {
            "event": name,
            "entity_id": entity_id,
            "event_id": event_id,
            "at": when,
            "handed_to_workers": hands_off(engine),
        }


def _where(result: dict[str, Any]) -> str:
    return "; the steps it activated run on the workers" if result["handed_to_workers"] else ""
