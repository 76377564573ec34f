"""``flowstar db upgrade`` and ``flowstar db current`` on a database that starts empty."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from typer.testing import CliRunner

from flowstar.cli import app
from flowstar.cli._runtime import redacted
from flowstar.db.migrate import alembic_config

HEAD = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database with no tables: a new SQLite file, or a PostgreSQL database of the test's own."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'new.db'}"
    return str(request.getfixturevalue("own_pg_database_url"))


def _db(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["db", *args], env={"FLOWSTAR_LOG_LEVEL": "WARNING"})
    return result.exit_code, result.stdout, result.stderr


def test_current_follows_each_upgrade(empty_url: str) -> None:
    shown = redacted(empty_url)
    if empty_url.startswith("sqlite"):
        code, _, err = _db("current", "--url", empty_url)
        path = empty_url.split("///")[1]
        assert (code, err.strip()) == (1, f"flowstar: no SQLite database at {path} (flowstar db upgrade creates one)")
        assert _db("upgrade", "--url", empty_url, "--revision", "base")[0] == 0  # creates the empty file
    else:
        code, out, _ = _db("current", "--url", empty_url)
        assert (code, out.strip()) == (
            0,
            f"database at {shown} has no flowstar schema; the latest revision is {HEAD}: run flowstar db upgrade",
        )
    found = json.loads(_db("current", "--url", empty_url, "--json")[1])
    assert found == {"url": shown, "revision": None, "head": HEAD, "up_to_date": False}

    code, out, _ = _db("upgrade", "--url", empty_url, "--revision", "0001")
    behind = f"database at {shown} is at revision 0001; the latest is {HEAD}: run flowstar db upgrade"
    assert (code, out.strip()) == (0, behind)
    code, out, _ = _db("current", "--url", empty_url)
    assert out.strip() == behind

    code, out, _ = _db("upgrade", "--url", empty_url)
    assert (code, out.strip()) == (0, f"database at {shown} is at revision {HEAD} (the latest)")
    assert _db("current", "--url", empty_url)[1].strip() == f"database at {shown} is at revision {HEAD} (the latest)"
    found = json.loads(_db("current", "--url", empty_url, "--json")[1])
    assert found == {"url": shown, "revision": HEAD, "head": HEAD, "up_to_date": True}
    # An upgrade never goes down: an older target leaves the database where it is, and says so.
    code, out, _ = _db("upgrade", "--url", empty_url, "--revision", "0001")
    assert (code, out.strip()) == (0, f"database at {shown} is at revision {HEAD} (the latest)")


def test_the_url_comes_from_the_environment(tmp_path: Path) -> None:
    target = tmp_path / "from-env" / "flowstar.db"
    url = f"sqlite+aiosqlite:///{target}"
    result = CliRunner().invoke(app, ["db", "upgrade"], env={"FLOWSTAR_DATABASE_URL": url})
    assert result.stdout.strip() == f"database at {url} is at revision {HEAD} (the latest)"
    result = CliRunner().invoke(app, ["db", "current", "--json"], env={"FLOWSTAR_DATABASE_URL": url})
    assert json.loads(result.stdout)["revision"] == HEAD
