"""Inbox order on approval_assignees: deadline and age copied from the request.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 20:35:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.store.tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("approval_assignees", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("expires_at", core.store.tables.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("created_at", core.store.tables.UTCDateTime(timezone=True), nullable=True)
        )
    op.execute(
        "UPDATE approval_assignees SET "
        "expires_at = (SELECT r.expires_at FROM approval_requests r WHERE r.id = approval_id), "
        "created_at = (SELECT r.created_at FROM approval_requests r WHERE r.id = approval_id)"
    )
    with op.batch_alter_table("approval_assignees", schema=None) as batch_op:
        batch_op.create_index("ix_approval_assignees_due", ["principal", "expires_at", "created_at"])
        batch_op.create_index("ix_approval_assignees_newest", ["principal", "created_at"])


def downgrade() -> None:
    with op.batch_alter_table("approval_assignees", schema=None) as batch_op:
        batch_op.drop_index("ix_approval_assignees_newest")
        batch_op.drop_index("ix_approval_assignees_due")
        batch_op.drop_column("created_at")
        batch_op.drop_column("expires_at")
