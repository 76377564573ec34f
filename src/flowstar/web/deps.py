"""The plugin's dependency names as annotations handlers can use (Litestar's named DI)."""

from __future__ import annotations

from typing import TypeAlias

from litestar.di import NamedDependency

from flowstar.engine.core import Engine
from flowstar.model.access import User
from flowstar.web.config import WebConfig

__all__ = ["CurrentUser", "EngineDep", "WebConfigDep"]

EngineDep: TypeAlias = NamedDependency[Engine]
"""``engine: EngineDep``: the flowstar engine."""
CurrentUser: TypeAlias = NamedDependency[User | None]
"""``current_user: CurrentUser``: the signed-in user, None without a user provider."""
WebConfigDep: TypeAlias = NamedDependency[WebConfig]
"""``web_config: WebConfigDep``: the plugin's configuration."""
