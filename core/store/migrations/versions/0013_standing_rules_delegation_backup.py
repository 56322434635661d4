"""Approval policy: standing rules, out of office, backup approvers.

* ``standing_rules``: tool, condition, scope (tenant, workflow name), expiry, creator;
  revoked and used counts (core/standing_rules.py).
* ``out_of_office``: a person away until a date and their delegate (core/delegation.py).
* ``approval_backups``: the backup approver of an open request and when to ask them.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 16:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.store.tables

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", core.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", core.store.tables.UTCDateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "standing_rules",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("tool", sa.String(length=200), nullable=False),
        sa.Column("condition", sa.Text(), nullable=False),
        sa.Column("workflow_name", sa.String(length=200), nullable=True),
        sa.Column("tenant", sa.String(length=100), nullable=True),
        sa.Column("expires_at", core.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("source_approval_id", sa.String(length=36), nullable=True),
        sa.Column("revoked_at", core.store.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=320), nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("last_used_at", core.store.tables.UTCDateTime(timezone=True), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_standing_rules")),
    )
    for column in ("tool", "tenant", "expires_at", "created_at"):
        op.create_index(op.f(f"ix_standing_rules_{column}"), "standing_rules", [column])
    op.create_table(
        "out_of_office",
        sa.Column("person", sa.String(length=320), nullable=False),
        sa.Column("delegate", sa.String(length=320), nullable=False),
        sa.Column("until", core.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("set_by", sa.String(length=320), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("person", name=op.f("pk_out_of_office")),
    )
    for column in ("until", "created_at"):
        op.create_index(op.f(f"ix_out_of_office_{column}"), "out_of_office", [column])
    op.create_table(
        "approval_backups",
        sa.Column("approval_id", sa.String(length=36), nullable=False),
        sa.Column("backup_to", sa.String(length=320), nullable=False),
        sa.Column("due_at", core.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("asked_at", core.store.tables.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["approval_id"],
            ["approval_requests.id"],
            name=op.f("fk_approval_backups_approval_id_approval_requests"),
        ),
        sa.PrimaryKeyConstraint("approval_id", name=op.f("pk_approval_backups")),
    )
    op.create_index(op.f("ix_approval_backups_due_at"), "approval_backups", ["due_at"])


def downgrade() -> None:
    op.drop_table("approval_backups")
    op.drop_table("out_of_office")
    op.drop_table("standing_rules")
