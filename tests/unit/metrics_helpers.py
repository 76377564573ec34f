"""Helpers of the metrics tests: parsed expositions, raw HTTP against a port, a closed port."""

from __future__ import annotations

import asyncio
import socket

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(exposition: bytes | str) -> Samples:
    """Every sample of a text exposition, keyed by its name and its sorted labels."""
    text = exposition.decode() if isinstance(exposition, bytes) else exposition
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(found: Samples, name: str, **labels: str) -> float:
    """One sample's value (KeyError when the exposition does not have it)."""
    return found[(name, tuple(sorted(labels.items())))]


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def http(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` as it is to 127.0.0.1:``port``; the status, headers and body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    writer.write_eof()
    await writer.drain()
    raw = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in header_lines)}
    return int(status_line.split(" ")[1]), headers, body


def get(path: str, method: str = "GET") -> bytes:
    """A minimal HTTP/1.1 request for ``path``."""
    return f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
