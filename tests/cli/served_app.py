"""A host application for ``flowstar serve --app tests.cli.served_app:app``."""

from __future__ import annotations

from litestar import Litestar, get

__all__ = ["app"]


@get("/hello")
async def hello() -> dict[str, str]:
    return {"hello": "from the host app"}


app = Litestar(route_handlers=[hello])
