"""Options several commands share, declared once so they read and behave the same."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["JsonOption", "LimitOption", "UrlOption"]

UrlOption = Annotated[
    str | None,
    typer.Option("--url", help="database URL (default: $FLOWSTAR_DATABASE_URL or the SQLite file)", show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON (stable keys) instead of a table")]
LimitOption = Annotated[int, typer.Option("--limit", min=1, help="most rows to list")]
