"""A PostgreSQL cluster and a redis-server of a test's own, which it may freeze and thaw.

Fault tests stop a server with SIGSTOP (a stalled server, or a network partition: TCP
connections still open, because the kernel accepts them, but nothing ever answers) and
resume it with SIGCONT.  The machine's shared servers serve other people's tests, so these
servers are private: started on a free port of 127.0.0.1, with their files in a temporary
directory removed at the end, and always killed, even when the test fails.

PostgreSQL's ``initdb`` refuses to run as root: as root, the cluster runs as the
``postgres`` user.  A missing binary skips the tests, or fails them with ``CI=true``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import text
from tests.conftest import _missing, require_executable

from flowstar.db import create_database_engine, metadata

__all__ = ["PrivatePostgres", "PrivateRedis", "create_schema", "private_postgres", "private_redis_server"]

PG_BIN = Path(os.environ.get("FLOWSTAR_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
_READY = "database system is ready to accept connections"


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _children(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (from /proc: the fault tests run on Linux)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            # The command name (2nd field) is in parentheses and may hold spaces.
            stat = (entry / "stat").read_text()
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _signal_all(pids: list[int], signum: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


class _Stallable:
    """A server whose processes ``freeze()`` stops with SIGSTOP and ``thaw()`` resumes."""

    def __init__(self) -> None:
        self.frozen: list[int] = []

    def _stop_processes(self) -> list[int]:
        """SIGSTOP the server's processes; returns their pids."""
        raise NotImplementedError

    def freeze(self) -> None:
        if not self.frozen:
            self.frozen = self._stop_processes()

    def thaw(self) -> None:
        """SIGCONT everything ``freeze()`` stopped."""
        pids, self.frozen = self.frozen, []
        _signal_all(pids, signal.SIGCONT)

    @contextlib.contextmanager
    def stalled(self) -> Iterator[None]:
        """Frozen inside the block, resumed after it (also when the block raises)."""
        self.freeze()
        try:
            yield
        finally:
            self.thaw()


class PrivatePostgres(_Stallable):
    """A running PostgreSQL cluster in ``root`` listening on 127.0.0.1:``port``."""

    def __init__(self, root: Path, port: int, proc: subprocess.Popen[bytes]) -> None:
        super().__init__()
        self.root, self.port, self.proc = root, port, proc

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the cluster's ``postgres`` database."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def log(self) -> str:
        return (self.root / "postgres.log").read_text(errors="replace")

    def _stop_processes(self) -> list[int]:
        """The postmaster first (so that it forks no one new), then every backend."""
        os.kill(self.proc.pid, signal.SIGSTOP)
        children = _children(self.proc.pid)
        _signal_all(children, signal.SIGSTOP)
        return [self.proc.pid, *children]

    def stop(self) -> None:
        """Fast shutdown (SIGINT); SIGKILL for the whole cluster if it does not comply."""
        self.thaw()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        if self.proc.poll() is None:
            _signal_all([*_children(self.proc.pid), self.proc.pid], signal.SIGKILL)
            self.proc.wait(timeout=10)

    @classmethod
    def start(cls) -> PrivatePostgres:
        """``initdb`` a cluster in a new temporary directory and start it (takes a few seconds)."""
        for program in ("initdb", "postgres"):
            if not (PG_BIN / program).exists():
                _missing(f"no PostgreSQL {program} in {PG_BIN} (set FLOWSTAR_TEST_PG_BIN)")
        as_user = _cluster_user()
        root = Path(tempfile.mkdtemp(prefix="flowstar-pg-"))
        try:
            if as_user is not None:
                shutil.chown(root, user=as_user, group=as_user)
            return cls._start_in(root, as_user)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise

    @classmethod
    def _start_in(cls, root: Path, as_user: str | None) -> PrivatePostgres:
        user: dict[str, Any] = {"user": as_user, "group": as_user, "extra_groups": []} if as_user else {}
        initdb = [str(PG_BIN / "initdb"), "-D", str(root / "data"), "-U", "postgres", "-A", "trust", "--no-sync"]
        subprocess.run(
            [*initdb, "-E", "UTF8"],
            check=True,
            capture_output=True,
            **user,
        )
        port = free_port()
        with (root / "postgres.log").open("wb") as log:
            proc = subprocess.Popen(
                [
                    str(PG_BIN / "postgres"),
                    "-D", str(root / "data"),
                    "-p", str(port),
                    "-k", str(root),
                    "-c", "listen_addresses=127.0.0.1",
                    "-c", "fsync=off",
                    "-c", "synchronous_commit=off",
                    "-c", "full_page_writes=off",
                    "-c", "max_connections=100",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                **user,
            )  # fmt: skip
        server = cls(root, port, proc)
        try:
            deadline = time.monotonic() + 30
            while _READY not in server.log():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"private PostgreSQL did not start:\n{server.log()[-2000:]}")
                time.sleep(0.02)
        except BaseException:
            server.stop()
            raise
        return server


def _cluster_user() -> str | None:
    """The user the cluster runs as: ``postgres`` when we are root, else ourselves (None)."""
    if os.geteuid() != 0:
        return None
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        _missing("running as root, and there is no 'postgres' user to run a private cluster as")
    return "postgres"


class PrivateRedis(_Stallable):
    """A redis-server on 127.0.0.1:``port``, without persistence."""

    def __init__(self, port: int, proc: subprocess.Popen[bytes]) -> None:
        super().__init__()
        self.port, self.proc = port, proc

    @property
    def url(self) -> str:
        """The URL without a database number."""
        return f"redis://127.0.0.1:{self.port}"

    def _stop_processes(self) -> list[int]:
        os.kill(self.proc.pid, signal.SIGSTOP)
        return [self.proc.pid]

    def stop(self) -> None:
        self.thaw()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)

    @classmethod
    def start(cls, workdir: Path) -> PrivateRedis:
        executable = require_executable("redis-server")
        port = free_port()
        proc = subprocess.Popen(
            [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        server = cls(port, proc)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise
                    time.sleep(0.02)
        except BaseException:
            server.stop()
            raise
        return server


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A started cluster, stopped and removed at the end whatever happens."""
    server = PrivatePostgres.start()
    try:
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(server.root, ignore_errors=True)


@contextlib.contextmanager
def private_redis_server() -> Iterator[PrivateRedis]:
    """A started redis-server, killed at the end whatever happens."""
    workdir = Path(tempfile.mkdtemp(prefix="flowstar-redis-"))
    try:
        server = PrivateRedis.start(workdir)
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def create_schema(url: str, *ddl: str) -> None:
    """flowstar's tables (and the statements ``ddl``) in the database at ``url``."""
    engine = create_database_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            for statement in ddl:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()
