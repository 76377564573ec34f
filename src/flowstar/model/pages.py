"""Keyset pages of tasks and instances: the page, its opaque cursor and the query it answers.

A list call returns a ``Page``: at most ``limit`` items and, when more may follow, a cursor
holding the sort key of the last item (a timestamp and the row id).  The next call asks for
the rows strictly after that key, which an index answers in the same time on the thousandth
page as on the first, unlike ``OFFSET``.  The cursor is URL-safe text carrying a checksum, so
an edited or truncated one is refused (``ValidationError``) instead of read as another key.
It only positions the page: the filters, the tenant and the user's scope come from the call,
so a forged cursor can skip rows but never reveal rows the query would not return.

``TaskQuery`` and ``InstanceQuery`` are the resolved filters every store answers; their
``matches`` methods are the reference semantics (the memory store uses them; the SQL store
builds the same conditions).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Generic, TypeVar

import msgspec

from flowstar.model.access import User, is_users_task
from flowstar.model.enums import TaskStatus, WorkflowStatus
from flowstar.model.errors import ValidationError
from flowstar.model.moments import aware
from flowstar.model.state import MAX_PRIORITY, MIN_PRIORITY, HumanTask, InstanceState

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "InstanceQuery",
    "PageKey",
    "Page",
    "TaskQuery",
    "check_limit",
    "decode_cursor",
    "encode_cursor",
    "page_of",
]

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500

# (timestamp, id): the sort key of one row, and where the next page starts.
PageKey = tuple[datetime, str]

# The checksum only tells an edited cursor from one this code wrote (it is not a secret:
# a cursor grants nothing, see the module docstring).
_DIGEST_SIZE = 6
_KEY = b"flowstar-page-cursor"


class Page(msgspec.Struct, Generic[T], frozen=True, kw_only=True):
    """One page of a list.

    Attributes:
        items: the page's items, in the list's order.
        next_cursor: pass it as ``cursor`` to get the next page; None on the last page.
    """

    items: list[T]
    next_cursor: str | None = None


class _Cursor(msgspec.Struct, array_like=True, frozen=True):
    kind: str
    at: datetime
    id: str


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(_Cursor)


def _digest(kind: str, body: bytes) -> bytes:
    return hashlib.blake2b(body, digest_size=_DIGEST_SIZE, key=_KEY, person=kind.encode()[:16]).digest()


def encode_cursor(kind: str, key: PageKey) -> str:
    """The opaque cursor of a page that ends with the row of sort key ``key``.

    ``kind`` names the list ("tasks", "instances"): a cursor of one list is refused by another.
    """
    body = _ENCODER.encode(_Cursor(kind, key[0], key[1]))
    return base64.urlsafe_b64encode(_digest(kind, body) + body).rstrip(b"=").decode("ascii")


def decode_cursor(kind: str, cursor: str) -> PageKey:
    """The sort key a cursor of list ``kind`` holds.

    Raises:
        ValidationError: the cursor is malformed, was edited, or belongs to another list.
    """
    error = ValidationError("invalid page cursor", ["cursor: not a cursor this list returned"])
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise error from None
    digest, body = raw[:_DIGEST_SIZE], raw[_DIGEST_SIZE:]
    if len(digest) != _DIGEST_SIZE or digest != _digest(kind, body):
        raise error
    try:
        decoded = _DECODER.decode(body)
    except msgspec.DecodeError:
        raise error from None
    if decoded.kind != kind or decoded.at.tzinfo is None:
        raise error
    return decoded.at, decoded.id


def check_limit(limit: int) -> int:
    """``limit`` if it is a page size this library serves (1..``MAX_LIMIT``).

    Raises:
        ValidationError: any other value.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(
            f"page size must be an integer from 1 to {MAX_LIMIT}", [f"limit: {limit!r} is not in 1..{MAX_LIMIT}"]
        )
    return limit


def page_of(kind: str, rows: Sequence[T], limit: int, key: Callable[[T], PageKey]) -> Page[T]:
    """The page of the first ``limit`` of ``rows`` (a store fetches ``limit + 1``: a row
    beyond the page means another page follows, and no second query is needed to know)."""
    if len(rows) <= limit:
        return Page(items=list(rows))
    items = list(rows[:limit])
    return Page(items=items, next_cursor=encode_cursor(kind, key(items[-1])))


class InstanceQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Filters of an instance page, newest first by ``(started_at, id)``.

    Attributes:
        after: the sort key the page starts after (from the cursor), or None.
        limit: rows to return; stores fetch one more to know whether a next page exists.
    """

    workflow_name: str | None = None
    statuses: frozenset[WorkflowStatus] | None = None
    tenant_id: str | None = None
    scoped: bool = False
    created_by: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    after: PageKey | None = None
    limit: int = DEFAULT_LIMIT

    def __post_init__(self) -> None:
        # Checked here, where every list of instances starts (the API, the inbox, bulk
        # operations): a time no store can compare is the caller's error.
        if self.created_after is not None:
            aware(self.created_after, "created_after")
        if self.created_before is not None:
            aware(self.created_before, "created_before")

    def matches(self, state: InstanceState) -> bool:
        """Whether ``state`` is on this query's pages (the key position aside)."""
        return (
            (self.workflow_name is None or state.workflow_name == self.workflow_name)
            and (self.statuses is None or state.status in self.statuses)
            and (not self.scoped or state.tenant_id == self.tenant_id)
            and (self.created_by is None or state.created_by == self.created_by)
            and (self.created_after is None or state.started_at >= self.created_after)
            and (self.created_before is None or state.started_at < self.created_before)
            and (self.after is None or (state.started_at, state.id) < self.after)
        )


class TaskQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Filters of a task page, oldest first by ``(created_at, id)``.

    Attributes:
        group: tasks of this group (its ``assignee_group``).
        due_before: open or not, tasks due before this time.
        min_priority: tasks of at least this priority.
        scoped: only tasks of ``tenant_id`` (None included: the tenant-less tasks).
        user_id, user_groups: when ``user_id`` is set, only the tasks meant for this user:
            assigned to or claimed by them, naming them as a candidate, or meant for one of
            ``user_groups`` (a candidate group or the assignee group).
        claimable: True, only open tasks nobody holds yet (no assignee, unclaimed); False,
            only the others.
        after: the sort key the page starts after (from the cursor), or None.
    """

    status: TaskStatus | None = None
    assignee_id: str | None = None
    group: str | None = None
    workflow_name: str | None = None
    instance_id: str | None = None
    due_before: datetime | None = None
    min_priority: int | None = None
    completed_by: str | None = None
    claimable: bool | None = None
    scoped: bool = False
    tenant_id: str | None = None
    user_id: str | None = None
    user_groups: frozenset[str] = frozenset()
    after: PageKey | None = None
    limit: int = DEFAULT_LIMIT

    def __post_init__(self) -> None:
        if self.due_before is not None:
            aware(self.due_before, "due_before")
        priority = self.min_priority
        if priority is not None and (isinstance(priority, bool) or not MIN_PRIORITY <= priority <= MAX_PRIORITY):
            raise ValidationError(
                f"min_priority must be an integer from {MIN_PRIORITY} to {MAX_PRIORITY}",
                [f"min_priority: {priority!r} is not in {MIN_PRIORITY}..{MAX_PRIORITY}"],
            )

    def mine(self, task: HumanTask) -> bool:
        """Whether ``task`` is meant for the query's user (always, without one)."""
        if self.user_id is None:
            return True
        return is_users_task(task, User(id=self.user_id, groups=self.user_groups))

    def matches(self, task: HumanTask) -> bool:
        """Whether ``task`` is on this query's pages (the key position aside)."""
        return (
            (self.status is None or task.status is self.status)
            and (self.assignee_id is None or task.assignee_id == self.assignee_id)
            and (self.group is None or task.assignee_group == self.group)
            and (self.workflow_name is None or task.workflow_name == self.workflow_name)
            and (self.instance_id is None or task.instance_id == self.instance_id)
            and (self.due_before is None or (task.due_at is not None and task.due_at < self.due_before))
            and (self.min_priority is None or task.priority >= self.min_priority)
            and (self.completed_by is None or task.completed_by == self.completed_by)
            and (self.claimable is None or self._claimable(task) is self.claimable)
            and (not self.scoped or task.tenant_id == self.tenant_id)
            and (self.after is None or (task.created_at, task.id) > self.after)
            and self.mine(task)
        )

    @staticmethod
    def _claimable(task: HumanTask) -> bool:
        return task.status is TaskStatus.PENDING and task.assignee_id is None and task.claimed_by is None
