"""Agent teams, tenants and their flows and secrets, supervised chat sessions,
execution logs and alerts; users get their own settings, events a session id.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 21:27:18.460014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import core.store.tables

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "agent_teams",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("members", JSON, nullable=False),
        sa.Column("settings", JSON, nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", core.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", core.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_agent_teams")),
    )
    with op.batch_alter_table("agent_teams", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_agent_teams_created_at"), ["created_at"], unique=False)

    op.create_table(
        "alerts",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.Column("raised_at", core.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", core.store.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=320), nullable=True),
        sa.Column("acknowledged_at", core.store.tables.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("rule", "subject", name=op.f("uq_alerts_rule_subject")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alerts_raised_at"), ["raised_at"], unique=False)

    op.create_table(
        "chat_sessions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant", sa.String(length=100), nullable=True),
        sa.Column("flow", sa.String(length=100), nullable=False),
        sa.Column("user_email", sa.String(length=320), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("supervisor", sa.String(length=320), nullable=True),
        sa.Column("created_at", core.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", core.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_sessions")),
    )
    with op.batch_alter_table("chat_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chat_sessions_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_chat_sessions_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_chat_sessions_tenant"), ["tenant"], unique=False)
        batch_op.create_index(batch_op.f("ix_chat_sessions_user_email"), ["user_email"], unique=False)

    op.create_table(
        "execution_logs",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("created_at", core.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant", sa.String(length=100), nullable=True),
        sa.Column("workflow_id", sa.String(length=36), nullable=True),
        sa.Column("session_id", sa.String(length=36), nullable=True),
        sa.Column("step_name", sa.String(length=200), nullable=True),
        sa.Column("agent", sa.String(length=100), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("tool_name", sa.String(length=200), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_execution_logs")),
    )
    with op.batch_alter_table("execution_logs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_execution_logs_created_at"), ["created_at"], unique=False)
        batch_op.create_index("ix_execution_logs_kind_created", ["kind", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_execution_logs_session_id"), ["session_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_execution_logs_tenant"), ["tenant"], unique=False)
        batch_op.create_index(batch_op.f("ix_execution_logs_workflow_id"), ["workflow_id"], unique=False)

    op.create_table(
        "tenants",
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("settings", JSON, nullable=False),
        sa.Column("created_at", core.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", core.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("slug", name=op.f("pk_tenants")),
    )
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tenants_created_at"), ["created_at"], unique=False)

    op.create_table(
        "chat_messages",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("session_id", sa.String(length=36), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("author", sa.String(length=320), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("visible_to_model", sa.Boolean(), nullable=False),
        sa.Column("created_at", core.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"], ["chat_sessions.id"], name=op.f("fk_chat_messages_session_id_chat_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_messages")),
    )
    with op.batch_alter_table("chat_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chat_messages_session_id"), ["session_id"], unique=False)

    op.create_table(
        "tenant_flows",
        sa.Column("tenant", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("agent_type", sa.String(length=32), nullable=False),
        sa.Column("profile", sa.String(length=100), nullable=True),
        sa.Column("tools", JSON, nullable=False),
        sa.Column("parameters", JSON, nullable=False),
        sa.Column("created_at", core.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", core.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant"], ["tenants.slug"], name=op.f("fk_tenant_flows_tenant_tenants")),
        sa.PrimaryKeyConstraint("tenant", "name", name=op.f("pk_tenant_flows")),
    )
    with op.batch_alter_table("tenant_flows", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tenant_flows_created_at"), ["created_at"], unique=False)

    op.create_table(
        "tenant_secrets",
        sa.Column("tenant", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("created_at", core.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", core.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant"], ["tenants.slug"], name=op.f("fk_tenant_secrets_tenant_tenants")),
        sa.PrimaryKeyConstraint("tenant", "name", name=op.f("pk_tenant_secrets")),
    )
    with op.batch_alter_table("tenant_secrets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tenant_secrets_created_at"), ["created_at"], unique=False)

    with op.batch_alter_table("users", schema=None) as batch_op:
        # Existing users start with no settings of their own.
        batch_op.add_column(sa.Column("settings", JSON, nullable=False, server_default=sa.text("'{}'")))

    with op.batch_alter_table("workflow_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_id", sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f("ix_workflow_events_session_id"), ["session_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("workflow_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workflow_events_session_id"))
        batch_op.drop_column("session_id")

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("settings")

    with op.batch_alter_table("tenant_secrets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tenant_secrets_created_at"))

    op.drop_table("tenant_secrets")
    with op.batch_alter_table("tenant_flows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tenant_flows_created_at"))

    op.drop_table("tenant_flows")
    with op.batch_alter_table("chat_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chat_messages_session_id"))

    op.drop_table("chat_messages")
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tenants_created_at"))

    op.drop_table("tenants")
    with op.batch_alter_table("execution_logs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_execution_logs_workflow_id"))
        batch_op.drop_index(batch_op.f("ix_execution_logs_tenant"))
        batch_op.drop_index(batch_op.f("ix_execution_logs_session_id"))
        batch_op.drop_index("ix_execution_logs_kind_created")
        batch_op.drop_index(batch_op.f("ix_execution_logs_created_at"))

    op.drop_table("execution_logs")
    with op.batch_alter_table("chat_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chat_sessions_user_email"))
        batch_op.drop_index(batch_op.f("ix_chat_sessions_tenant"))
        batch_op.drop_index(batch_op.f("ix_chat_sessions_status"))
        batch_op.drop_index(batch_op.f("ix_chat_sessions_created_at"))

    op.drop_table("chat_sessions")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alerts_raised_at"))

    op.drop_table("alerts")
    with op.batch_alter_table("agent_teams", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agent_teams_created_at"))

    op.drop_table("agent_teams")
