"""The tables as SQLAlchemy Core ``Table`` objects: the one definition of the schema.

Columns, types, defaults, indexes and constraints are defined here once; the
mapped classes in ``core.store.tables`` map these tables (``__table__``) and add
relationships, and Alembic's migrations are checked against this metadata. This
module imports no ORM, so a reader that needs only Core queries (the CLI's
listings, ``core.records.listing``) starts without ``sqlalchemy.orm`` and the
class mapping (bench/cli.py).

Names of constraints and indexes follow one naming convention so that Alembic
migrations refer to them stably on SQLite and PostgreSQL alike. Every
timestamp is timezone-aware UTC. A column is NOT NULL unless it says otherwise
(``nullable=False`` is written out: a Core column is nullable by default).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    and_,
    select,
)
from sqlalchemy.engine import Dialect

from core.base.clock import utcnow  # re-exported: rows are stamped with it

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_id() -> str:
    return str(uuid.uuid4())


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite keeps no zone, so values are normalised to UTC on the way in and
    tagged UTC on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class _PostgresJSONB(TypeDecorator[Any]):
    """JSONB on PostgreSQL, its dialect imported only when a PostgreSQL engine uses it.

    ``sqlalchemy.dialects.postgresql`` imports all of its drivers' modules; a
    command-line listing on SQLite would pay for that on every start
    (``bench/cli.py``).
    """

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        from sqlalchemy.dialects.postgresql import JSONB

        return dialect.type_descriptor(JSONB())


JSONType = JSON().with_variant(_PostgresJSONB(), "postgresql")
# SQLite only auto-increments INTEGER PRIMARY KEY columns.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(naming_convention=NAMING_CONVENTION)


def timestamps() -> tuple[Column[datetime], Column[datetime]]:
    """``created_at`` (indexed) and ``updated_at``, stamped on insert and update."""
    return (
        Column("created_at", UTCDateTime(), default=utcnow, index=True, nullable=False),
        Column("updated_at", UTCDateTime(), default=utcnow, onupdate=utcnow, nullable=False),
    )


workflows = Table(
    "workflows",
    metadata,
    Column("id", String(36), primary_key=True, default=new_id),
    Column("name", String(200), nullable=False),
    Column("description", Text, default="", nullable=False),
    Column("definition", JSONType, nullable=False),
    Column("input_data", JSONType, default=dict, nullable=False),
    # The workflow's context: input data plus what approvals and steps added.
    Column("context", JSONType, default=dict, nullable=False),
    # Step outputs live once, on their step runs: ``step_outputs`` is derived
    # from them (``output_runs``, loaded with the row) and never written here.
    Column("status", String(32), default="pending", nullable=False),
    Column("current_step", Integer, default=0, nullable=False),
    Column("current_step_run_id", BigInteger),
    Column("error", Text),
    # Errors Countersign's own code raised while advancing the current step in
    # a row (not the tool's failures): bounded retries, then the step fails.
    Column("engine_errors", Integer, default=0, server_default="0", nullable=False),
    Column("created_by", String(320), default="system", nullable=False),
    Column("tenant", String(100), index=True),
    Column("started_at", UTCDateTime()),
    Column("finished_at", UTCDateTime()),
    # Scheduling: a runner may claim the row when status is "running",
    # runnable_at has passed and no unexpired lease is held.
    Column("runnable_at", UTCDateTime()),
    Column("lease_owner", String(100)),
    Column("lease_expires_at", UTCDateTime()),
    # Trace context (W3C traceparent) so a resumed run continues its trace.
    Column("trace_context", JSONType, default=dict, nullable=False),
    *timestamps(),
    Index("ix_workflows_claim", "status", "runnable_at"),
    Index("ix_workflows_status_created", "status", "created_at"),
)


step_runs = Table(
    "step_runs",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("workflow_id", ForeignKey("workflows.id"), index=True, nullable=False),
    Column("step_index", Integer, nullable=False),
    Column("step_name", String(200), nullable=False),
    Column("step_type", String(32), nullable=False),
    # running, waiting_approval, completed, skipped, failed, rolled_back, compensated
    Column("status", String(32), default="running", nullable=False),
    Column("attempt", Integer, default=1, nullable=False),
    Column("approval_id", String(36)),
    Column("output", JSONType),
    Column("error", Text),
    Column("idempotency_key", String(200), nullable=False),
    Column("started_at", UTCDateTime(), default=utcnow, nullable=False),
    Column("finished_at", UTCDateTime()),
    Column("executed_by", String(100)),
    # Set when a finished rollback took this run's output out of the
    # workflow's outputs (its status says whether it was compensated).
    Column("undone_at", UTCDateTime()),
)


approval_requests = Table(
    "approval_requests",
    metadata,
    Column("id", String(36), primary_key=True, default=new_id),
    Column("workflow_id", ForeignKey("workflows.id"), index=True),
    Column("step_name", String(200)),
    Column("step_run_id", BigInteger),
    Column("title", String(500), nullable=False),
    Column("description", Text, default="", nullable=False),
    Column("approval_type", String(16), nullable=False),
    # pending, approved, rejected, modified, expired, cancelled
    Column("status", String(16), default="pending", index=True, nullable=False),
    Column("requested_by", String(320), default="system", nullable=False),
    # Who may answer now (emails or group names); for budget levels, the
    # current level's approvers.
    Column("approvers", JSONType, default=list, nullable=False),
    Column("threshold", Integer, default=1, nullable=False),
    # The normalised approval config (levels, rules, channels).
    Column("config", JSONType, default=dict, nullable=False),
    Column("context_data", JSONType, default=dict, nullable=False),
    # JSON Schema the answer must satisfy, and UI hints for forms.
    Column("response_schema", JSONType, default=dict, nullable=False),
    Column("ui_schema", JSONType, default=dict, nullable=False),
    # The agent's or step's proposed action, shown to the approver.
    Column("proposed_action", JSONType, default=dict, nullable=False),
    # The call this request guards, as proposed (tool, rendered arguments,
    # digest, input schema; core.definitions.calls), and the call the decision released
    # so far (set at each level passed and at the decision). NULL when the
    # request guards no call.
    Column("proposed_call", JSONType),
    Column("released_call", JSONType),
    Column("level", Integer, default=0, nullable=False),
    Column("escalations", Integer, default=0, nullable=False),
    Column("expires_at", UTCDateTime(), index=True),
    Column("decided_at", UTCDateTime()),
    Column("decided_by", String(320)),
    Column("decision_data", JSONType),
    Column("tenant", String(100), index=True),
    *timestamps(),
    Index("ix_approval_requests_status_created", "status", "created_at"),
)


approval_assignees = Table(
    "approval_assignees",
    metadata,
    Column("approval_id", ForeignKey("approval_requests.id"), primary_key=True),
    Column("principal", String(320), primary_key=True, index=True),
    # Copies of the request's deadline and age, so an inbox page is two index
    # walks that stop at the page size, however many requests wait.
    Column("expires_at", UTCDateTime()),
    Column("created_at", UTCDateTime()),
    Index("ix_approval_assignees_due", "principal", "expires_at", "created_at"),
    Index("ix_approval_assignees_newest", "principal", "created_at"),
)


approval_responses = Table(
    "approval_responses",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("approval_id", ForeignKey("approval_requests.id"), index=True, nullable=False),
    Column("approver", String(320), nullable=False),
    Column("level", Integer, default=0, nullable=False),
    Column("decision", String(16), nullable=False),  # approve, reject, modify
    Column("channel", String(32), default="api", nullable=False),
    Column("comment", Text, default="", nullable=False),
    Column("data", JSONType, default=dict, nullable=False),
    Column("created_at", UTCDateTime(), default=utcnow, nullable=False),
    # The tamper-evident trail (core.records.trail): chain, position, previous hash, own hash.
    Column("trail_chain", String(80)),
    Column("trail_seq", BigInteger),
    Column("trail_prev", String(64)),
    Column("trail_hash", String(64)),
    UniqueConstraint("approval_id", "approver", "level"),
    Index("ix_approval_responses_trail", "trail_chain", "trail_seq", unique=True),
)


workflow_events = Table(
    "workflow_events",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("workflow_id", String(36), index=True),
    Column("approval_id", String(36), index=True),
    # Set for supervised-conversation events (take over, inject, release).
    Column("session_id", String(36), index=True),
    Column("event_type", String(64), nullable=False),
    Column("actor", String(320), nullable=False),
    Column("step_name", String(200)),
    Column("before", JSONType),
    Column("after", JSONType),
    Column("data", JSONType, default=dict, nullable=False),
    Column("created_at", UTCDateTime(), default=utcnow, index=True, nullable=False),
    # The tamper-evident trail (core.records.trail): chain, position, previous hash, own hash.
    Column("trail_chain", String(80)),
    Column("trail_seq", BigInteger),
    Column("trail_prev", String(64)),
    Column("trail_hash", String(64)),
    Index("ix_workflow_events_trail", "trail_chain", "trail_seq", unique=True),
)


workflow_checkpoints = Table(
    "workflow_checkpoints",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("workflow_id", ForeignKey("workflows.id"), index=True, nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", Text, default="", nullable=False),
    Column("step_index", Integer, nullable=False),
    Column("step_name", String(200)),
    Column("context", JSONType, nullable=False),
    # Highest step run id when taken: later completed runs are compensated,
    # and the outputs of the runs up to it are the checkpoint's (not copied).
    Column("step_run_watermark", BigInteger, default=0, nullable=False),
    # Set when a rollback to an earlier checkpoint abandoned this one.
    Column("superseded_by_event_id", BigInteger),
    Column("created_by", String(320), default="system", nullable=False),
    Column("created_at", UTCDateTime(), default=utcnow, nullable=False),
)


notifications = Table(
    "notifications",
    metadata,
    Column("id", String(36), primary_key=True, default=new_id),
    Column("approval_id", String(36), index=True),
    Column("workflow_id", String(36)),
    Column("kind", String(64), default="approval.requested", nullable=False),
    Column("channel", String(32), nullable=False),
    Column("recipient", String(320), nullable=False),
    # pending, sent, failed (will retry), dead
    Column("status", String(16), default="pending", index=True, nullable=False),
    Column("attempts", Integer, default=0, nullable=False),
    Column("next_attempt_at", UTCDateTime(), default=utcnow, nullable=False),
    Column("last_error", Text),
    Column("payload", JSONType, default=dict, nullable=False),
    Column("sent_at", UTCDateTime()),
    # Where the channel put the message (e.g. Slack channel and ts) for updates.
    Column("external_ref", JSONType, default=dict, nullable=False),
    *timestamps(),
    UniqueConstraint("approval_id", "kind", "channel", "recipient"),
)


channel_configurations = Table(
    "channel_configurations",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("channel", String(32), unique=True, nullable=False),
    Column("enabled", Boolean(), default=True, nullable=False),
    Column("settings", JSONType, default=dict, nullable=False),
    *timestamps(),
)


users = Table(
    "users",
    metadata,
    Column("email", String(320), primary_key=True),
    Column("name", String(200), default="", nullable=False),
    Column("role", String(16), default="approver", nullable=False),
    Column("groups", JSONType, default=list, nullable=False),
    Column("password_hash", String(300)),
    Column("tenant", String(100)),
    # The user's own model settings: the last layer after platform and tenant.
    Column("settings", JSONType, default=dict, nullable=False),
    # Browser sessions carry this; bumping it (password or role change, removal,
    # "sign out everywhere") ends every session made before (core.identity.users.session_user).
    Column("session_version", Integer, default=0, server_default="0", nullable=False),
    # Set while an admin has disabled the account (core.identity.account_state): it signs in,
    # answers and authenticates nowhere until enabled again (migration 0009).
    Column("disabled_at", UTCDateTime()),
    *timestamps(),
)


sign_in_failures = Table(
    "sign_in_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account", String(320), index=True, nullable=False),
    Column("address", String(100), index=True, nullable=False),
    Column("at", UTCDateTime(), default=utcnow, index=True, nullable=False),
)


runner_heartbeats = Table(
    "runner_heartbeats",
    metadata,
    Column("runner_id", String(100), primary_key=True),
    Column("hostname", String(200), default="", nullable=False),
    Column("pid", Integer, default=0, nullable=False),
    Column("started_at", UTCDateTime(), default=utcnow, nullable=False),
    Column("last_seen_at", UTCDateTime(), default=utcnow, index=True, nullable=False),
    Column("steps_executed", Integer, default=0, nullable=False),
)


agent_runs = Table(
    "agent_runs",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("workflow_id", ForeignKey("workflows.id"), index=True, nullable=False),
    Column("step_run_id", BigInteger, index=True, nullable=False),
    Column("step_name", String(200), nullable=False),
    # running, suspended, completed, failed
    Column("status", String(16), default="running", nullable=False),
    Column("model", String(200), default="", nullable=False),
    # Serialised agent memory (steps, tool calls, observations) and extra state.
    Column("memory", JSONType, default=dict, nullable=False),
    Column("state", JSONType, default=dict, nullable=False),
    # The held tool call waiting for a person, if any.
    Column("pending_call", JSONType),
    Column("approval_id", String(36)),
    *timestamps(),
)


api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("token_hash", String(128), unique=True, nullable=False),
    Column("user_email", String(320), nullable=False),
    Column("last_used_at", UTCDateTime()),
    Column("revoked_at", UTCDateTime()),
    # The actions the token may do (core.identity.permissions.Action values), never
    # more than its user's role at the time of use; NULL (tokens made before
    # scopes existed): whatever its user's role allows.
    Column("scopes", JSONType),
    Column("expires_at", UTCDateTime()),
    *timestamps(),
)


used_tokens = Table(
    "used_tokens",
    metadata,
    Column("token_id", String(64), primary_key=True),
    Column("used_at", UTCDateTime(), default=utcnow, index=True, nullable=False),
)


agent_profiles = Table(
    "agent_profiles",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("role", String(200), default="", nullable=False),
    Column("instructions", Text, default="", nullable=False),
    Column("agent_type", String(32), default="tool_calling", nullable=False),
    Column("model_provider", String(32)),
    Column("model_id", String(200)),
    Column("tools", JSONType, default=list, nullable=False),
    Column("held_tools", JSONType, default=list, nullable=False),
    Column("max_steps", Integer, default=10, nullable=False),
    # The rest of AgentSpec (model api_base/api_key_env/options, approval,
    # authorized_imports, executor): never an API key, only its variable's name.
    Column("settings", JSONType, default=dict, nullable=False),
    Column("created_by", String(320), default="system", nullable=False),
    *timestamps(),
)


agent_teams = Table(
    "agent_teams",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("description", Text, default="", nullable=False),
    # Profile names, in pipeline order.
    Column("members", JSONType, default=list, nullable=False),
    # Optional per-team knobs (e.g. an approval before a given member).
    Column("settings", JSONType, default=dict, nullable=False),
    Column("created_by", String(320), default="system", nullable=False),
    *timestamps(),
)


tenants = Table(
    "tenants",
    metadata,
    Column("slug", String(100), primary_key=True),
    Column("name", String(200), default="", nullable=False),
    # Model settings at tenant level (provider, model id, api base...): never
    # a key in clear; keys live in tenant_secrets, encrypted.
    Column("settings", JSONType, default=dict, nullable=False),
    *timestamps(),
)


tenant_secrets = Table(
    "tenant_secrets",
    metadata,
    Column("tenant", ForeignKey("tenants.slug"), primary_key=True),
    Column("name", String(100), primary_key=True),
    Column("ciphertext", Text, nullable=False),
    *timestamps(),
)


tenant_flows = Table(
    "tenant_flows",
    metadata,
    Column("tenant", ForeignKey("tenants.slug"), primary_key=True),
    Column("name", String(100), primary_key=True),
    Column("description", Text, default="", nullable=False),
    Column("agent_type", String(32), default="tool_calling", nullable=False),
    # Optional agent profile the flow starts from; tools/parameters override.
    Column("profile", String(100)),
    Column("tools", JSONType, default=list, nullable=False),
    Column("parameters", JSONType, default=dict, nullable=False),
    *timestamps(),
)


chat_sessions = Table(
    "chat_sessions",
    metadata,
    Column("id", String(36), primary_key=True, default=new_id),
    Column("tenant", String(100), index=True),
    Column("flow", String(100), nullable=False),
    Column("user_email", String(320), index=True, nullable=False),
    Column("title", String(500), default="", nullable=False),
    # active (the agent answers), supervised (a person took over), closed
    Column("status", String(16), default="active", index=True, nullable=False),
    Column("supervisor", String(320)),
    *timestamps(),
)


chat_messages = Table(
    "chat_messages",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("session_id", ForeignKey("chat_sessions.id"), index=True, nullable=False),
    # user, assistant, supervisor
    Column("role", String(16), nullable=False),
    Column("author", String(320), nullable=False),
    Column("content", Text, nullable=False),
    Column("visible_to_model", Boolean(), default=True, nullable=False),
    Column("created_at", UTCDateTime(), default=utcnow, nullable=False),
)


execution_logs = Table(
    "execution_logs",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("created_at", UTCDateTime(), default=utcnow, index=True, nullable=False),
    Column("tenant", String(100), index=True),
    Column("workflow_id", String(36), index=True),
    Column("session_id", String(36), index=True),
    Column("step_name", String(200)),
    Column("agent", String(100)),
    # agent_step, tool_call, model_error, agent_error, final_answer
    Column("kind", String(32), nullable=False),
    Column("level", String(8), default="info", nullable=False),
    Column("tool_name", String(200)),
    Column("message", Text, default="", nullable=False),
    Column("data", JSONType, default=dict, nullable=False),
    Column("duration_ms", Integer),
    Index("ix_execution_logs_kind_created", "kind", "created_at"),
)


alerts = Table(
    "alerts",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("rule", String(64), nullable=False),
    # What the alert is about: an approval id, workflow id, notification id
    # or runner id; unique per rule so a rule never raises twice.
    Column("subject", String(200), nullable=False),
    Column("severity", String(16), default="warning", nullable=False),
    Column("message", Text, nullable=False),
    Column("data", JSONType, default=dict, nullable=False),
    Column("raised_at", UTCDateTime(), default=utcnow, index=True, nullable=False),
    Column("resolved_at", UTCDateTime()),
    Column("acknowledged_by", String(320)),
    Column("acknowledged_at", UTCDateTime()),
    UniqueConstraint("rule", "subject"),
)


approval_reminders = Table(
    "approval_reminders",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("approval_id", ForeignKey("approval_requests.id"), index=True, nullable=False),
    Column("level", Integer, default=0, nullable=False),
    Column("escalation", Integer, default=0, nullable=False),
    Column("share", Float, nullable=False),
    Column("deadline", UTCDateTime(), nullable=False),
    Column("due_at", UTCDateTime(), nullable=False),
    # due, sent, skipped (the request was decided or moved on before it came due)
    Column("status", String(16), default="due", nullable=False),
    Column("sent_at", UTCDateTime()),
    Column("sent_by", String(200)),
    Column("created_at", UTCDateTime(), default=utcnow, nullable=False),
    UniqueConstraint("approval_id", "level", "escalation", "share"),
    Index("ix_approval_reminders_due", "status", "due_at"),
)


# -- approval policy: standing rules, out of office, backup approvers (migration 0010) ---------

standing_rules = Table(
    "standing_rules",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tool", String(200), index=True, nullable=False),
    # A core.definitions.gates expression over args (and tool, input, workflow), e.g. "args.amount <= 200".
    Column("condition", Text, nullable=False),
    Column("workflow_name", String(200)),
    Column("tenant", String(100), index=True),
    Column("expires_at", UTCDateTime(), index=True, nullable=False),
    Column("created_by", String(320), nullable=False),
    Column("note", Text, default="", nullable=False),
    # The request whose answer created the rule, if any.
    Column("source_approval_id", String(36)),
    Column("revoked_at", UTCDateTime()),
    Column("revoked_by", String(320)),
    Column("uses", Integer, default=0, nullable=False),
    Column("last_used_at", UTCDateTime()),
    *timestamps(),
)


out_of_office = Table(
    "out_of_office",
    metadata,
    Column("person", String(320), primary_key=True),
    Column("delegate", String(320), nullable=False),
    Column("until", UTCDateTime(), index=True, nullable=False),
    Column("set_by", String(320), nullable=False),
    *timestamps(),
)


approval_backups = Table(
    "approval_backups",
    metadata,
    Column("approval_id", ForeignKey("approval_requests.id"), primary_key=True),
    Column("backup_to", String(320), nullable=False),
    Column("due_at", UTCDateTime(), index=True, nullable=False),
    Column("asked_at", UTCDateTime()),
)


# A run's output is one of its workflow's step outputs while the run is
# completed, or compensated/rolled back by a rollback that has not finished
# (``undone_at`` unset): until then the workflow keeps its outputs.
OUTPUT_STATUSES = ("completed", "compensated", "rolled_back")


def output_visible_now() -> ColumnElement[bool]:
    runs = step_runs.c
    return and_(runs.status.in_(OUTPUT_STATUSES), runs.output.is_not(None), runs.undone_at.is_(None))


def outputs_query(
    workflow_id: str, *, watermark: int | None = None, taken_at: datetime | None = None
) -> Select[Any]:
    """(step_name, output) of the runs whose outputs are the workflow's, oldest first;
    with a checkpoint's ``watermark`` and ``taken_at``, only those it holds (what a
    rollback to it restores): runs up to the watermark finished by then."""
    runs = step_runs.c
    query = select(runs.step_name, runs.output).where(runs.workflow_id == workflow_id, output_visible_now())
    if watermark is not None:
        query = query.where(runs.id <= watermark)
    if taken_at is not None:
        query = query.where(runs.finished_at <= taken_at)
    return query.order_by(runs.id)
