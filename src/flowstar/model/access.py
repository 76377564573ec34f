"""Who is acting: the user the host application signs in, as the engine sees it.

The engine's read and write calls take an optional ``user``.  With one, they enforce the
task's assignment and candidates, admin rights and the tenant themselves, so the REST API,
the HTML inbox, the SSE feed and the CLI cannot disagree about who may do what.  Without
one (``user=None``) the caller is a trusted back end, as in the reference API.
"""

from __future__ import annotations

import msgspec

__all__ = ["User"]


class User(msgspec.Struct, frozen=True, kw_only=True):
    """A signed-in user.

    Attributes:
        id: the user's id (what ``completed_by``, ``claimed_by`` and the audit trail hold).
        groups: the groups the user belongs to (candidate groups of tasks).
        tenant_id: the user's tenant; None outside a multi-tenant deployment.
        is_admin: may use admin actions (cancel, retry, reassign anybody's task) in its tenant.
        display_name: a name to show; the id when None.
    """

    id: str
    groups: frozenset[str] = frozenset()
    tenant_id: str | None = None
    is_admin: bool = False
    display_name: str | None = None

    @property
    def name(self) -> str:
        """The name to show."""
        return self.display_name or self.id
