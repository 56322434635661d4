"""Session versions on users, and refused sign-ins for the sign-in limits.

* ``users.session_version``: browser sessions carry it; bumping it ends them.
* ``sign_in_failures``: one row per refused sign-in (account, address, when),
  counted in a window by every dashboard and gateway process alike.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 15:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.store.tables

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_version", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "sign_in_failures",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("account", sa.String(length=320), nullable=False),
        sa.Column("address", sa.String(length=100), nullable=False),
        sa.Column("at", core.store.tables.UTCDateTime(timezone=True), nullable=False),
    )
    for column in ("account", "address", "at"):
        op.create_index(f"ix_sign_in_failures_{column}", "sign_in_failures", [column])


def downgrade() -> None:
    op.drop_table("sign_in_failures")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("session_version")
