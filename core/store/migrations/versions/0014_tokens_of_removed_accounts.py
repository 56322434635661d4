"""API tokens of removed accounts: deleted (data only; no table changes).

Removing an account now deletes its API tokens (core.identity.users.remove_user);
before, the rows stayed, refused only while the address had no account, and answered
again once it was added back. This deletes the rows earlier versions left: tokens
whose address has no account, and tokens made before a ``user.removed`` event of
their address (made for an account removed since, whatever account the address has
now). core.identity.issued refuses such a token at run time too.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 18:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import core.store.tables

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    when = core.store.tables.UTCDateTime(timezone=True)
    tokens = sa.table("api_tokens", sa.column("user_email", sa.String()), sa.column("created_at", when))
    users = sa.table("users", sa.column("email", sa.String()))
    events = sa.table(
        "workflow_events",
        sa.column("workflow_id", sa.String()),
        sa.column("event_type", sa.String()),
        sa.column("data", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
        sa.column("created_at", when),
    )
    no_account = ~sa.exists().where(users.c.email == tokens.c.user_email)
    removed_since = sa.exists().where(
        events.c.workflow_id.is_(None),
        events.c.event_type == "user.removed",
        events.c.data["user"].as_string() == tokens.c.user_email,
        events.c.created_at > tokens.c.created_at,
    )
    op.get_bind().execute(sa.delete(tokens).where(sa.or_(no_account, removed_since)))


def downgrade() -> None:
    pass  # the deleted rows acted as nobody; there is nothing to put back
