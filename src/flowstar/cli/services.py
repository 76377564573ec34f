"""``flowstar demo``, ``flowstar serve`` and ``flowstar worker``: the long-running processes.

Each is a thin front on what exists: the demo module (``python -m flowstar.demo``), uvicorn
serving an app with the web plugin, and SAQ's own runner with flowstar's worker settings
(``saq flowstar.saq.build_settings``), so the command and the documented ways to start them
stay one code path.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from flowstar.cli._output import say
from flowstar.cli._runtime import CliError, reporting

__all__ = ["WORKER_SETTINGS", "demo", "register", "serve", "worker"]

# What ``saq`` imports: a function returning the ``Worker`` settings from ``FLOWSTAR_*``.
WORKER_SETTINGS = "flowstar.saq.worker.build_settings"

HostOption = Annotated[str, typer.Option(envvar="FLOWSTAR_DEMO_HOST", help="address to listen on")]
PortOption = Annotated[int, typer.Option(envvar="FLOWSTAR_DEMO_PORT", help="port to listen on")]


def register(root: typer.Typer) -> None:
    """Add the process commands to the root command."""
    root.command()(demo)
    root.command()(serve)
    root.command()(worker)


def demo(
    once: Annotated[bool, typer.Option("--once", help="run two expense reports, print them and exit")] = False,
    host: HostOption = "127.0.0.1",
    port: PortOption = 8000,
) -> None:
    """Run the demo: the task inbox with an SAQ worker and sample workflows (python -m flowstar.demo)."""
    _run_demo(["--once"] if once else ["--host", host, "--port", str(port)])


AppOption = Annotated[
    str | None,
    typer.Option(
        "--app",
        envvar="FLOWSTAR_APP",
        help="module:attribute of your Litestar (or any ASGI) app; default: the plugin on the FLOWSTAR_* settings",
    ),
]


def serve(app: AppOption = None, host: HostOption = "127.0.0.1", port: PortOption = 8000) -> None:
    """Serve the web app (REST API and task inbox) until Ctrl-C.

    With --app, your application (its plugin options, its sign-in). Without, the plugin on
    the FLOWSTAR_* settings: FLOWSTAR_REGISTRY's workflows, the database migrated, and with
    FLOWSTAR_REDIS_URL the steps handed to the SAQ workers (run `flowstar worker`), else run
    in this process; people sign in as the demo's sample users.
    """
    import uvicorn

    with reporting():
        target = _host_app(app) if app is not None else _plugin_app()
        say(f"Inbox: http://{host}:{port}/workflows/ui/   REST API: http://{host}:{port}/workflows/")
        if app is None:
            say("Sign-in: the demo's sample users (each password is the user name); serve your app with --app")
        uvicorn.run(target, host=host, port=port, log_level="warning", ws="none")


def _host_app(path: str) -> Any:
    """The application ``module:attribute`` names, imported from the current directory as
    uvicorn would: imported here, so that a wrong path is one line before the banner."""
    import os
    import sys

    from uvicorn.importer import ImportFromStringError, import_from_string

    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return import_from_string(path)
    except ImportFromStringError as exc:
        raise CliError(f"--app {path!r}: {exc}") from None


def _plugin_app() -> Any:
    from litestar import Litestar

    from flowstar.settings import FlowstarSettings
    from flowstar.web import UserDirectory, WorkflowWebPlugin

    plugin = WorkflowWebPlugin(settings=FlowstarSettings.from_env(), user_directory=UserDirectory.demo())
    return Litestar(plugins=[plugin])


def _run_demo(argv: list[str]) -> None:
    from flowstar.demo import main as demo_main

    with reporting():
        demo_main(argv)


def worker(
    workers: Annotated[int, typer.Option(min=1, help="worker processes to start on this machine")] = 1,
    check: Annotated[bool, typer.Option("--check", help="exit 0 if workers serve the queue, 1 if none")] = False,
) -> None:
    """Run SAQ workers with flowstar's settings (FLOWSTAR_* variables; see docs/distributed.md)."""
    from saq.runner import run as run_workers

    with reporting():
        # quiet: the settings configure logging themselves (flowstar.logs).
        run_workers(WORKER_SETTINGS, workers=workers, check=check, quiet=True)
