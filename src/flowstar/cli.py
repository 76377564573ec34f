"""The ``flowstar`` command line: ``flowstar db upgrade [--url URL] [--revision REV]``."""

from __future__ import annotations

import argparse
import os
import sys

from flowstar.logs import configure_logging

__all__ = ["main"]


def _database_url(explicit: str | None) -> str:
    if explicit:
        return explicit
    from flowstar.db.connect import DEFAULT_DATABASE_URL

    return os.environ.get("FLOWSTAR_DATABASE_URL", DEFAULT_DATABASE_URL)


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the command; returns the exit code."""
    parser = argparse.ArgumentParser(prog="flowstar", description="flowstar workflow engine")
    commands = parser.add_subparsers(dest="command", required=True)
    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    up = db_commands.add_parser("upgrade", help="apply migrations (default: to the latest)")
    up.add_argument("--url", help="database URL (default: $FLOWSTAR_DATABASE_URL or the SQLite file)")
    up.add_argument("--revision", default="head", help="target revision (default: head)")
    args = parser.parse_args(argv)
    configure_logging()

    if args.command == "db" and args.db_command == "upgrade":
        from flowstar.db.migrate import upgrade

        url = _database_url(args.url)
        upgrade(url, args.revision)
        print(f"database at {_redacted(url)} is at revision {args.revision}")
        return 0
    parser.error("unknown command")  # pragma: no cover
    return 2  # pragma: no cover


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
