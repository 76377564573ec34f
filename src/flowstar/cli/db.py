"""``flowstar db``: the database schema (Alembic migrations shipped in the package)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from flowstar.cli._options import JsonOption, UrlOption
from flowstar.cli._output import print_json, say
from flowstar.cli._runtime import check_sqlite_file, redacted, run, settings, start_logging

__all__ = ["app", "register"]

app = typer.Typer(help="The database schema: apply migrations, show the revision.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    """Add ``flowstar db ...`` to the root command."""
    root.add_typer(app, name="db")


@app.command()
def upgrade(
    url: UrlOption = None,
    revision: Annotated[str, typer.Option(help="target revision")] = "head",
) -> None:
    """Apply migrations (default: to the latest)."""
    from flowstar.db.migrate import upgrade_async

    start_logging("INFO")  # the migrations it runs, as Alembic reports them
    target = settings(url).database_url
    run(upgrade_async(target, revision), database=target)
    # The revision it reached, read back: an upgrade never goes down, so a target older
    # than the database's revision leaves it where it was.
    say(_status_line(run(_revisions(target), database=target)))


@app.command()
def current(url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Show the database's revision and whether it is the latest."""
    start_logging()
    target = settings(url).database_url
    found = run(_revisions(target), database=target)
    if as_json:
        print_json(found)
        return
    say(_status_line(found))


def _status_line(found: dict[str, Any]) -> str:
    """The database's revision in words (``_revisions``' answer)."""
    where = f"database at {found['url']}"
    if found["revision"] is None:
        return f"{where} has no flowstar schema; the latest revision is {found['head']}: run flowstar db upgrade"
    if found["up_to_date"]:
        return f"{where} is at revision {found['revision']} (the latest)"
    return f"{where} is at revision {found['revision']}; the latest is {found['head']}: run flowstar db upgrade"


async def _revisions(url: str) -> dict[str, Any]:
    """The database's Alembic revision (None: never migrated) and the package's latest."""
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy.engine import Connection

    from flowstar.db.connect import create_database_engine
    from flowstar.db.migrate import VERSION_TABLE, alembic_config

    check_sqlite_file(url)

    def read(connection: Connection) -> str | None:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()

    engine = create_database_engine(url)
    try:
        async with engine.connect() as conn:
            revision = await conn.run_sync(read)
    finally:
        await engine.dispose()
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    return {"url": redacted(url), "revision": revision, "head": head, "up_to_date": revision == head}
