"""A worker's own small HTTP port: ``/metrics``, ``/health/live`` and ``/health/ready``.

An SAQ worker is no web application, so it serves these from a tiny asyncio server on its
own event loop: the scrape-time probes and readiness checks then use the worker's engine,
its database pool and its Redis client directly.  It answers GET (and HEAD) on those three
paths, one request per connection, and nothing else.

``FLOWSTAR_METRICS_PORT`` turns it on (unset: off).  With several worker processes on one
machine (``saq ... --workers 4``) each takes the first free port from that one upwards, up
to ``PORT_SPAN`` ports; the port taken is logged.  ``FLOWSTAR_METRICS_HOST`` is the
interface (default every interface, as a container needs; the port is meant for an internal
network: it has no authentication).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import http
import json
import os
from collections.abc import Mapping

import structlog

from flowstar.metrics.health import Readiness, readiness
from flowstar.metrics.recorder import CONTENT_TYPE, FlowstarMetrics
from flowstar.model.errors import ValidationError

__all__ = ["DEFAULT_HOST", "PORT_SPAN", "MetricsServer", "metrics_address", "start_metrics_server"]

log = structlog.get_logger("flowstar.metrics")

DEFAULT_HOST = "0.0.0.0"  # noqa: S104 - an internal port a container must expose
# How many ports from FLOWSTAR_METRICS_PORT upwards the processes of one machine may take.
PORT_SPAN = 64
# A request line and headers beyond this are refused (a scraper sends a few hundred bytes).
_REQUEST_LIMIT = 16 * 1024
_REQUEST_TIMEOUT = 10.0
_JSON = "application/json"


def metrics_address(environ: Mapping[str, str] | None = None) -> tuple[str, int] | None:
    """``(host, port)`` from ``FLOWSTAR_METRICS_HOST`` / ``FLOWSTAR_METRICS_PORT``; None when
    the port is unset, empty or 0 (no server).

    Raises:
        ValidationError: the port is not a number from 0 to 65535.
    """
    env = os.environ if environ is None else environ
    raw = (env.get("FLOWSTAR_METRICS_PORT") or "").strip()
    if not raw:
        return None
    try:
        port = int(raw)
    except ValueError:
        raise ValidationError(f"FLOWSTAR_METRICS_PORT={raw!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise ValidationError(f"FLOWSTAR_METRICS_PORT={raw!r} is not a port number (0 to 65535)")
    if port == 0:
        return None
    return (env.get("FLOWSTAR_METRICS_HOST") or DEFAULT_HOST).strip(), port


class MetricsServer:
    """Serves ``metrics`` and the readiness of the engine installed in it.

    Until an engine is installed (the worker is still starting) readiness is 503.
    """

    def __init__(self, metrics: FlowstarMetrics, *, check_timeout: float = 3.0) -> None:
        self.metrics = metrics
        self.check_timeout = check_timeout
        self._server: asyncio.Server | None = None
        self.port: int | None = None

    async def start(self, host: str, port: int, *, span: int = 1) -> int:
        """Listen on the first free port of ``port .. port + span - 1`` (0: any); returns it.

        Raises:
            OSError: every port of the span is taken (or another socket error).
        """
        last = port + max(span, 1) - 1
        for candidate in range(port, last + 1):
            try:
                server = await asyncio.start_server(self._serve, host, candidate, limit=_REQUEST_LIMIT)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE and candidate < last:
                    continue
                raise
            self._server = server
            self.port = int(server.sockets[0].getsockname()[1])
            return self.port
        raise AssertionError("unreachable: the last port either binds or raises")

    async def close(self) -> None:
        """Stop listening and wait for the connections being served."""
        if self._server is not None:
            server, self._server = self._server, None
            server.close()
            await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                status, media_type, body, head_only = await self._respond(reader)
            except Exception:
                log.exception("metrics endpoint failed")
                status, media_type, body, head_only = 500, _JSON, _json({"detail": "internal error"}), False
            writer.write(_response(status, media_type, b"" if head_only else body, len(body)))
            await writer.drain()
        except (ConnectionError, TimeoutError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, TimeoutError):
                await writer.wait_closed()

    async def _respond(self, reader: asyncio.StreamReader) -> tuple[int, str, bytes, bool]:
        try:
            async with asyncio.timeout(_REQUEST_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
            method, target, _version = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            return 400, _JSON, _json({"detail": "malformed request"}), False
        if method not in ("GET", "HEAD"):
            return 405, _JSON, _json({"detail": "only GET and HEAD"}), False
        status, media_type, body = await self.answer(target.split("?", 1)[0])
        return status, media_type, body, method == "HEAD"

    async def answer(self, path: str) -> tuple[int, str, bytes]:
        """Status, content type and body for a GET of ``path``."""
        if path == "/metrics":
            return 200, CONTENT_TYPE, await self.metrics.render()
        if path == "/health/live":
            return 200, _JSON, _json({"status": "alive"})
        if path == "/health/ready":
            report = await self.ready()
            return report.status_code, _JSON, _json(report.body())
        return 404, _JSON, _json({"detail": "not found"})

    async def ready(self) -> Readiness:
        """The readiness of the installed engine (not ready before one is installed)."""
        engine = self.metrics.engine
        if engine is None:
            return Readiness.failed("engine", RuntimeError("the worker is starting"))
        return await readiness(engine, within=self.check_timeout)


async def start_metrics_server(
    metrics: FlowstarMetrics, host: str, port: int, *, span: int = PORT_SPAN
) -> MetricsServer:
    """A started ``MetricsServer`` on the first free port from ``port`` (logged)."""
    server = MetricsServer(metrics)
    bound = await server.start(host, port, span=span)
    log.info("metrics and health endpoints listening", host=host, port=bound, pid=os.getpid())
    return server


def _json(value: object) -> bytes:
    return json.dumps(value).encode()


def _response(status: int, media_type: str, body: bytes, length: int) -> bytes:
    head = (
        f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n"
        f"Content-Type: {media_type}\r\n"
        f"Content-Length: {length}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body
