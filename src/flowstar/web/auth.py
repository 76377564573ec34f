"""Who is asking: user providers, the demo's user directory, and the plugin's guards.

A user provider turns a connection into a ``flowstar.User`` (or None: not signed in).  The
engine enforces what that user may do (``user=`` on every call); the web layer only finds out
who the user is.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from flowstar.model.access import User

__all__ = [
    "SIGN_IN_COOKIE",
    "DirectoryEntry",
    "JWTUserProvider",
    "SessionUserProvider",
    "UserDirectory",
    "UserProvider",
    "require_admin",
    "require_user",
    "sign_in",
    "sign_out",
]

# Cheap parameters keep the demo's sign-in fast; a host application with real users brings
# its own directory (or JWTs from its identity provider).
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


@runtime_checkable
class UserProvider(Protocol):
    """``async (connection) -> User | None``: the signed-in user, None when nobody is."""

    async def __call__(self, connection: ASGIConnection[Any, Any, Any, Any]) -> User | None: ...


@dataclass(frozen=True)
class DirectoryEntry:
    """One user of a ``UserDirectory``: the user and an argon2 hash of the password."""

    user: User
    password_hash: str


class UserDirectory:
    """Users with argon2 password hashes (the session sign-in's user store)."""

    def __init__(self, entries: Iterable[DirectoryEntry] = ()) -> None:
        self._entries: dict[str, DirectoryEntry] = {e.user.id: e for e in entries}

    def add(self, user: User, password: str) -> None:
        """Add (or replace) ``user`` with ``password`` (stored only as its argon2 hash)."""
        self._entries[user.id] = DirectoryEntry(user, _HASHER.hash(password))

    def get(self, user_id: str) -> User | None:
        """The user ``user_id``, None when unknown."""
        entry = self._entries.get(user_id)
        return entry.user if entry is not None else None

    def users(self) -> list[User]:
        """Every user, by id."""
        return [self._entries[k].user for k in sorted(self._entries)]

    def authenticate(self, username: str, password: str) -> User | None:
        """The user when ``password`` is theirs, else None (also for an unknown name)."""
        entry = self._entries.get(username)
        if entry is None:
            # Hash anyway, so an unknown name takes as long as a wrong password.
            _HASHER.hash(password)
            return None
        try:
            _HASHER.verify(entry.password_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        return entry.user

    @classmethod
    def demo(cls) -> UserDirectory:
        """The sample users; each one's password is their id (shown by the demo)."""
        directory = cls()
        for user in (
            User(id="alice", groups=frozenset({"employees"}), tenant_id="acme", display_name="Alice (employee)"),
            User(id="bob", groups=frozenset({"managers"}), tenant_id="acme", display_name="Bob (manager)"),
            User(id="carol", groups=frozenset({"finance"}), tenant_id="acme", display_name="Carol (finance)"),
            User(id="admin", tenant_id="acme", is_admin=True, display_name="Admin"),
            User(id="dave", groups=frozenset({"managers"}), tenant_id="globex", display_name="Dave (other tenant)"),
        ):
            directory.add(user, user.id)
        return directory


SIGN_IN_COOKIE = "flowstar_signin"
"""The cookie that ties a session to the browser that signed in (see ``sign_in``)."""


def _proof_digest(proof: str) -> str:
    return hashlib.sha256(proof.encode()).hexdigest()


def sign_in(request: Request[Any, Any, Any], response: Response[Any], user: User, *, secure: bool = False) -> None:
    """Start ``user``'s session, tied to this browser.

    Litestar keeps the session id a browser already sends, so whoever planted that id (a
    session fixation) would share the session.  The session therefore also holds the digest
    of a random proof that only this response's ``SIGN_IN_COOKIE`` carries (HttpOnly): a
    client with the session id but without the proof is no one (``SessionUserProvider``).
    """
    proof = secrets.token_urlsafe(32)
    request.set_session({"user_id": user.id, "sign_in": _proof_digest(proof)})
    response.set_cookie(SIGN_IN_COOKIE, proof, path="/", httponly=True, samesite="lax", secure=secure)


def sign_out(request: Request[Any, Any, Any], response: Response[Any]) -> None:
    """End the session and drop the sign-in proof."""
    request.clear_session()
    response.delete_cookie(SIGN_IN_COOKIE, path="/")


class SessionUserProvider:
    """The user whose id the session holds (``connection.session["user_id"]``).

    A session started by ``sign_in`` counts only with its proof cookie; one an application
    filled itself (``{"user_id": ...}``, without ``sign_in``) counts as it is.
    """

    def __init__(self, directory: UserDirectory) -> None:
        self.directory = directory

    async def __call__(self, connection: ASGIConnection[Any, Any, Any, Any]) -> User | None:
        if "session" not in connection.scope or not connection.session:
            return None
        session = connection.session
        user_id = session.get("user_id")
        if not isinstance(user_id, str):
            return None
        bound = session.get("sign_in")
        if bound is not None:
            proof = connection.cookies.get(SIGN_IN_COOKIE, "")
            if not hmac.compare_digest(str(bound), _proof_digest(proof)):
                return None
        return self.directory.get(user_id)


class JWTUserProvider:
    """The user a bearer JWT (``Authorization: Bearer <token>``) names.

    Claims: ``sub`` (user id), ``groups`` (list), ``tenant_id``, ``is_admin``, ``name``.  A
    missing, expired or badly signed token is no user (None): routes then answer 401.

    Args:
        key: the HMAC secret or the public key the tokens are checked with.
        algorithms: accepted algorithms (never ``none``).
        audience: the expected ``aud`` claim, if any.
        issuer: the expected ``iss`` claim, if any.
    """

    def __init__(
        self,
        key: str | bytes,
        *,
        algorithms: Iterable[str] = ("HS256",),
        audience: str | None = None,
        issuer: str | None = None,
    ) -> None:
        self.key = key
        self.algorithms = [a for a in algorithms if a.lower() != "none"]
        self.audience = audience
        self.issuer = issuer

    async def __call__(self, connection: ASGIConnection[Any, Any, Any, Any]) -> User | None:
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        try:
            claims = jwt.decode(
                token.strip(),
                self.key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["sub"]},
            )
        except jwt.PyJWTError:
            return None
        return user_from_claims(claims)


def user_from_claims(claims: Mapping[str, Any]) -> User | None:
    """The ``User`` a token's claims describe (None when they are not well formed)."""
    groups = claims.get("groups", [])
    tenant = claims.get("tenant_id")
    if not isinstance(claims.get("sub"), str) or not isinstance(groups, list):
        return None
    if tenant is not None and not isinstance(tenant, str):
        return None
    return User(
        id=claims["sub"],
        groups=frozenset(str(g) for g in groups),
        tenant_id=tenant,
        is_admin=claims.get("is_admin") is True,
        display_name=claims.get("name") if isinstance(claims.get("name"), str) else None,
    )


async def require_user(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: with a user provider configured, somebody must be signed in (else 401)."""
    config = connection.app.state.flowstar_web_config
    if config.user_provider is not None and await current_user_of(connection) is None:
        raise NotAuthorizedException("sign in first")


async def require_admin(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: with a user provider configured, the user must be an admin (else 401/403)."""
    config = connection.app.state.flowstar_web_config
    if config.user_provider is None:
        return
    user = await current_user_of(connection)
    if user is None:
        raise NotAuthorizedException("sign in first")
    if not user.is_admin:
        raise PermissionDeniedException("admins only")


async def current_user_of(connection: ASGIConnection[Any, Any, Any, Any]) -> User | None:
    """The connection's user from the configured provider, looked up once per request."""
    if "flowstar_user" in connection.scope:
        return connection.scope["flowstar_user"]  # type: ignore[typeddict-item, no-any-return]
    provider = connection.app.state.flowstar_web_config.user_provider
    user = await provider(connection) if provider is not None else None
    connection.scope["flowstar_user"] = user  # type: ignore[typeddict-unknown-key]
    return user
