"""bulk operations: retry, cancel or reassign in bulk, with progress that survives a restart

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 18:10:00
"""

from __future__ import annotations

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_GUID = advanced_alchemy.types.guid.GUID(length=16)
_TIME = advanced_alchemy.types.datetime.DateTimeUTC(timezone=True)


def upgrade() -> None:
    op.create_table(
        "workflow_bulk_operations",
        sa.Column("id", _GUID, nullable=False),
        sa.Column("tenant_id", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("request_key", sa.String(length=600), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_bulk_operations")),
    )
    op.create_index("ix_workflow_bulk_operations_open", "workflow_bulk_operations", ["status", "updated_at"])
    op.create_index("uq_workflow_bulk_operations_request_key", "workflow_bulk_operations", ["request_key"], unique=True)
    op.create_index("ix_workflow_bulk_operations_request_hash", "workflow_bulk_operations", ["request_hash"])


def downgrade() -> None:
    op.drop_index("ix_workflow_bulk_operations_request_hash", table_name="workflow_bulk_operations")
    op.drop_index("uq_workflow_bulk_operations_request_key", table_name="workflow_bulk_operations")
    op.drop_index("ix_workflow_bulk_operations_open", table_name="workflow_bulk_operations")
    op.drop_table("workflow_bulk_operations")
