"""``flowstar definitions``: which definition versions exist, and which still have instances.

Before a version is dropped from the code its ``running`` count must be 0: an instance runs
to its end on the version it started on, and a version that is not registered but still
running (``registered: no``) is stranded until it is registered again.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from flowstar.cli._options import JsonOption, UrlOption
from flowstar.cli._output import emit
from flowstar.cli._runtime import reading, run, settings, start_logging
from flowstar.cli._views import VERSION_COLUMNS, version_row
from flowstar.settings import FlowstarSettings

__all__ = ["definitions", "register"]


def register(root: typer.Typer) -> None:
    """Add ``flowstar definitions`` to the root command."""
    root.command()(definitions)


def definitions(
    tenant: Annotated[str | None, typer.Option(help="count only this tenant's instances")] = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """List every version registered in FLOWSTAR_REGISTRY or still run by an instance."""
    start_logging()
    config = settings(url)
    rows = run(_versions(config, tenant), database=config.database_url)
    emit(rows, VERSION_COLUMNS, as_json=as_json, title="definition versions")


async def _versions(config: FlowstarSettings, tenant: str | None) -> list[dict[str, Any]]:
    async with reading(config, registry=True) as engine:
        return [version_row(v) for v in await engine.definition_versions(tenant_id=tenant)]
