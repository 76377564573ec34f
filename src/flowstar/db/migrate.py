"""Applying flowstar's Alembic migrations (``flowstar db upgrade``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from flowstar.db.connect import create_database_engine

__all__ = ["VERSION_TABLE", "alembic_config", "upgrade", "upgrade_async"]

# A version table of our own, so flowstar's migrations live beside an application's own.
VERSION_TABLE = "flowstar_alembic_version"
MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic ``Config`` pointing at flowstar's migrations and ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (call from synchronous code)."""
    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` from inside an event loop."""
    engine = create_database_engine(url)
    config = alembic_config(url)

    def run(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    try:
        async with engine.begin() as conn:
            await conn.run_sync(run)
    finally:
        await engine.dispose()
