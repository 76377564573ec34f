"""``WebConfig``: the options of ``WorkflowWebPlugin`` (one object every handler can inject)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Imported at run time: Litestar reads these annotations when it injects ``web_config``.
from flowstar.engine.core import Engine
from flowstar.settings import FlowstarSettings
from flowstar.web.auth import UserDirectory, UserProvider

__all__ = ["DEFAULT_MAX_BODY_SIZE", "WebConfig"]

DEFAULT_MAX_BODY_SIZE = 2 * 1024 * 1024


def _secret_from_env() -> str:
    # Without FLOWSTAR_SECRET_KEY a random per-process key: sessions, CSRF tokens and webhook
    # callback URLs then do not survive a restart (documented in docs/web.md).
    return os.environ.get("FLOWSTAR_SECRET_KEY") or secrets.token_urlsafe(32)


@dataclass
class WebConfig:
    """What the web plugin mounts and how it finds the engine and the current user.

    Attributes:
        path_prefix: where the REST API lives (``{path_prefix}/instances`` ...).
        enable_api: mount the REST API, the webhook callbacks and the SSE feed.
        enable_ui: mount the HTML inbox (``flowstar.web.ui``) at ``ui_prefix``.
        enable_admin: mount the admin routes (cancel, retry); they need an admin user.
        auth_guard: a Litestar guard run before every route of the plugin.
        admin_guard: a guard for admin routes; default: the current user must be an admin
            (or no user provider is configured: a trusted back end).
        engine: the engine to use; the host application starts and closes it.  None: the
            plugin builds one from ``settings`` and owns its lifecycle.
        settings: settings for the engine the plugin builds; default ``FlowstarSettings.from_env()``.
        user_provider: ``async (connection) -> User | None``; None: a trusted back end (no
            user; requests act with full rights, ``completed_by`` comes from the body).
        user_directory: the users the session sign-in checks passwords against.
        ui_prefix: where the UI is mounted; default ``{path_prefix}/ui``.
        secret_key: signs sessions, CSRF tokens and webhook callback tokens
            (default ``FLOWSTAR_SECRET_KEY``, else random per process).
        request_max_body_size: largest request body accepted (413 beyond).
        csrf: protect cookie-authenticated unsafe requests against CSRF (HTML forms check the
            ``_csrf_token`` field, JSON requests the ``x-csrftoken`` header).
        session_cookie_secure: send the session cookie only over HTTPS.
        default_page_size: list page size when ``?limit=`` is not given.
        tracing: add an OpenTelemetry server span per HTTP request (the ``otel`` extra;
            docs/tracing.md), unless the app has Litestar's OpenTelemetry plugin already.
    """

    path_prefix: str = "/workflows"
    enable_api: bool = True
    enable_ui: bool = True
    enable_admin: bool = True
    auth_guard: Callable[..., Any] | None = None
    admin_guard: Callable[..., Any] | None = None
    engine: Engine | None = None
    settings: FlowstarSettings | None = None
    user_provider: UserProvider | None = None
    user_directory: UserDirectory | None = None
    ui_prefix: str | None = None
    secret_key: str = field(default_factory=_secret_from_env, repr=False)
    request_max_body_size: int = DEFAULT_MAX_BODY_SIZE
    csrf: bool = True
    session_cookie_secure: bool = False
    default_page_size: int = 50
    tracing: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.path_prefix = "/" + self.path_prefix.strip("/") if self.path_prefix.strip("/") else ""
        if self.ui_prefix is None:
            self.ui_prefix = f"{self.path_prefix}/ui"
        else:
            self.ui_prefix = "/" + self.ui_prefix.strip("/")

    @property
    def ui_path(self) -> str:
        """The UI's mount path (``ui_prefix`` resolved)."""
        return self.ui_prefix or f"{self.path_prefix}/ui"
