"""The plugin's dependency names as annotations handlers can use (Litestar's named DI), and
the query parameters several routes share."""

from __future__ import annotations

from typing import Annotated, TypeAlias

from litestar.di import NamedDependency
from litestar.params import QueryParameter

from flowstar.engine.core import Engine
from flowstar.model.access import User
from flowstar.model.state import MAX_PRIORITY, MIN_PRIORITY
from flowstar.web.config import WebConfig

__all__ = ["CurrentUser", "EngineDep", "MinPriority", "WebConfigDep"]

EngineDep: TypeAlias = NamedDependency[Engine]
"""``engine: EngineDep``: the flowstar engine."""
CurrentUser: TypeAlias = NamedDependency[User | None]
"""``current_user: CurrentUser``: the signed-in user, None without a user provider."""
WebConfigDep: TypeAlias = NamedDependency[WebConfig]
"""``web_config: WebConfigDep``: the plugin's configuration."""
MinPriority: TypeAlias = Annotated[int | None, QueryParameter(ge=MIN_PRIORITY, le=MAX_PRIORITY)]
"""``min_priority: MinPriority = None``: tasks of at least this priority (a task priority's range)."""
