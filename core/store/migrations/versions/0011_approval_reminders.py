"""Reminders before a request's deadline, each sent once (core.approvals.reminders).

* ``approval_reminders``: one row per request, deadline round (level and
  escalation) and share of the time to answer; runners claim due rows with
  ``FOR UPDATE SKIP LOCKED`` and mark them sent with the reminder they queue.

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-04 16:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.store.tables

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "approval_reminders",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("approval_id", sa.String(length=36), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("escalation", sa.Integer(), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("deadline", core.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("due_at", core.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("sent_at", core.store.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sent_by", sa.String(length=200), nullable=True),
        sa.Column("created_at", core.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["approval_id"],
            ["approval_requests.id"],
            name="fk_approval_reminders_approval_id_approval_requests",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_approval_reminders"),
        sa.UniqueConstraint(
            "approval_id",
            "level",
            "escalation",
            "share",
            name="uq_approval_reminders_approval_id_level_escalation_share",
        ),
    )
    op.create_index("ix_approval_reminders_approval_id", "approval_reminders", ["approval_id"])
    op.create_index("ix_approval_reminders_due", "approval_reminders", ["status", "due_at"])


def downgrade() -> None:
    op.drop_table("approval_reminders")
