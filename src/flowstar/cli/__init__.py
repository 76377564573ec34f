"""The ``flowstar`` command line (Typer, with Rich tables).

Each module is one command group (or a few top-level commands) with a ``register(root)``
function; ``COMMANDS`` lists them in the order ``flowstar --help`` shows them.  A new group
is a module of its own with its ``register`` added there.

Operator commands read ``FLOWSTAR_DATABASE_URL`` (or ``--url``) and, for changes,
``FLOWSTAR_REGISTRY``; with ``FLOWSTAR_REDIS_URL`` set, a change's steps are handed to the
SAQ workers (see ``flowstar.cli._runtime`` and docs/cli.md).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Annotated

import typer

from flowstar.cli import bulk, db, definitions, instances, messages, services, tasks
from flowstar.cli._runtime import SHOW_TRACEBACKS

__all__ = ["COMMANDS", "app", "main"]

COMMANDS: tuple[Callable[[typer.Typer], None], ...] = (
    services.register,
    db.register,
    instances.register,
    messages.register,
    tasks.register,
    definitions.register,
    bulk.register,
)

app = typer.Typer(
    name="flowstar",
    help="flowstar: durable workflows. Run the demo, workers and migrations; inspect and repair instances.",
    no_args_is_help=True,
    add_completion=False,
    # Rich's tracebacks would print every frame's local variables: form data and secrets.
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    traceback: Annotated[bool, typer.Option("--traceback", help="show the full traceback of an error")] = False,
) -> None:
    """Options for every command."""
    SHOW_TRACEBACKS.set(traceback)
    # Like ``saq`` and ``uvicorn``: FLOWSTAR_REGISTRY=myapp.workflows:registry names a module
    # of the directory the command runs in, which a console script does not put on the path.
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.append(cwd)


for _register in COMMANDS:
    _register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the command line on ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    try:
        app(args=argv, prog_name="flowstar")
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0
