"""What commands print: Rich tables for people, JSON for programs, one line for an error.

Every listing goes through ``emit``: the same rows become a table, or with ``--json`` a
JSON document with stable keys (the table's columns are a view of those keys).  Errors go
to stderr as one line, so a script can show them as they are and a person is not handed a
traceback for a mistyped id.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NoReturn

import msgspec
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text

__all__ = ["Column", "cell", "console", "emit", "fail", "print_json", "progress", "say"]

# Output that is not a terminal (a pipe, a file, a test) is laid out this wide, so that ids
# stay on one line for grep and cut.
_PIPE_WIDTH = 200


def console(*, stderr: bool = False) -> Console:
    """A console on the current stdout (or stderr), made per call.

    Made when used, not at import: the streams may have been replaced since (a test runner
    capturing output does that).
    """
    stream = sys.stderr if stderr else sys.stdout
    wide = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(file=stream, width=_PIPE_WIDTH if wide else None, soft_wrap=False, highlight=False)


def say(message: str) -> None:
    """Print one line for a person (no Rich markup: data may contain brackets)."""
    typer.echo(message)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``flowstar: <message>`` as one line on stderr and exit with ``code``."""
    line = " ".join(message.split())
    typer.echo(f"flowstar: {line}", err=True)
    raise typer.Exit(code)


def print_json(value: Any) -> None:
    """Print ``value`` as indented JSON (datetimes in ISO 8601, UUIDs as strings)."""
    typer.echo(msgspec.json.format(msgspec.json.encode(value), indent=2).decode())


class Column(msgspec.Struct, frozen=True):
    """A table column: its heading and the key of the row it shows."""

    heading: str
    key: str


def emit(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], *, as_json: bool, title: str) -> None:
    """Print ``rows`` as a table under ``title``, or as a JSON list of the rows."""
    if as_json:
        print_json(list(rows))
        return
    if not rows:
        say(f"{title}: none")
        return
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column.heading, no_wrap=column.key.endswith("id"))
    for row in rows:
        table.add_row(*(cell(row.get(column.key)) for column in columns))
    console().print(table)


def cell(value: Any) -> Text:
    """A table cell; ``Text`` so that brackets in data are never read as markup."""
    if value is None:
        return Text("-", style="dim")
    if isinstance(value, bool):
        return Text("yes" if value else "no")
    if isinstance(value, datetime):
        return Text(value.isoformat(sep=" ", timespec="seconds"))
    if isinstance(value, list | tuple):
        return Text(", ".join(str(v) for v in value) or "-")
    return Text(str(value))


@contextmanager
def progress(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr, shown only on a terminal and removed when done; yields ``advance(n)``.

    Commands that walk many pages or items advance it; output for programs (a pipe, a file,
    ``--json`` read by a script) never gets it.
    """
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console(stderr=True),
        transient=True,
        disable=not sys.stderr.isatty(),
    )
    with bar:
        task = bar.add_task(description, total=total)
        yield lambda done: bar.advance(task, done)
