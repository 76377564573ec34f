"""The installed ``flowstar`` console script, and errors as one line instead of a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from flowstar.cli import app, main
from flowstar.model.errors import StoreUnavailableError
from tests.cli.conftest import error_line

FLOWSTAR = str(Path(sys.executable).with_name("flowstar"))
ROOT = Path(__file__).resolve().parents[2]
UNREACHABLE = "postgresql+asyncpg://postgres:s3cret@127.0.0.1:9/flowstar"


def _flowstar(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the installed console script, as an operator would."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLOWSTAR_")}
    return subprocess.run(
        [FLOWSTAR, *args], capture_output=True, text=True, env={**clean, **env}, cwd=ROOT, timeout=60, check=False
    )


def test_help_lists_every_command() -> None:
    done = _flowstar("--help")
    assert done.returncode == 0, done.stderr
    for command in ("demo", "serve", "worker", "db", "instances", "signal", "event", "tasks", "definitions"):
        assert f" {command} " in done.stdout


def test_the_console_script_migrates_a_database(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ops.db'}"
    done = _flowstar("db", "upgrade", FLOWSTAR_DATABASE_URL=url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"database at {url} is at revision ")
    assert done.stdout.endswith(" (the latest)\n")
    assert (tmp_path / "ops.db").exists()


def test_an_unreachable_database_is_one_line_without_the_password() -> None:
    for command in (["instances", "list"], ["db", "current"], ["db", "upgrade"]):
        result = CliRunner().invoke(app, [*command, "--url", UNREACHABLE])
        line = error_line(result)
        assert line.startswith("flowstar: database at postgresql+asyncpg://postgres:***@127.0.0.1:9/flowstar: ")
        assert "s3cret" not in result.stdout + result.stderr


def test_traceback_shows_the_error_itself() -> None:
    result = CliRunner().invoke(app, ["--traceback", "instances", "list", "--url", UNREACHABLE])
    assert result.exit_code == 1
    assert isinstance(result.exception, StoreUnavailableError)


def test_main_returns_the_exit_code(capsys: object) -> None:
    assert main(["--help"]) == 0
    assert main(["instances", "show", "x", "--url", UNREACHABLE]) == 1
    assert main(["no-such-command"]) == 2


def test_serve_with_an_app_that_does_not_import_is_one_line_before_any_banner() -> None:
    for path, said in (
        ("nosuch_module:app", 'Could not import module "nosuch_module".'),
        ("flowstar:no_app", 'Attribute "no_app" not found in module "flowstar".'),
    ):
        result = CliRunner().invoke(app, ["serve", "--app", path, "--port", "9"])
        assert error_line(result) == f"flowstar: --app {path!r}: {said}"
        assert result.stdout == ""
