"""flowstar's Litestar integration: ``WorkflowWebPlugin`` and its configuration and auth."""

from flowstar.web.auth import JWTUserProvider, SessionUserProvider, UserDirectory, UserProvider
from flowstar.web.config import WebConfig
from flowstar.web.plugin import WorkflowWebPlugin

__all__ = [
    "JWTUserProvider",
    "SessionUserProvider",
    "UserDirectory",
    "UserProvider",
    "WebConfig",
    "WorkflowWebPlugin",
]
