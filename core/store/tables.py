"""Database tables (SQLAlchemy 2, typed ``Mapped[]``).

Names of constraints and indexes follow one naming convention so that Alembic
migrations refer to them stably on SQLite and PostgreSQL alike. Every
timestamp is timezone-aware UTC.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Select,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    and_,
    event,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, foreign, mapped_column, relationship
from sqlalchemy.orm.attributes import set_committed_value

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


JSONType = JSON().with_variant(postgresql.JSONB(), "postgresql")
# SQLite only auto-increments INTEGER PRIMARY KEY columns.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType}


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Workflow(TimestampMixin, Base):
    __tablename__ = "workflows"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    definition: Mapped[dict[str, Any]] = mapped_column(JSONType)
    input_data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # The workflow's context: input data plus what approvals and steps added.
    context: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Step outputs live once, on their step runs: ``step_outputs`` is derived
    # from them (``output_runs``, loaded with the row) and never written here.
    status: Mapped[str] = mapped_column(String(32), default="pending")
    current_step: Mapped[int] = mapped_column(Integer, default=0)
    current_step_run_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    # Errors Countersign's own code raised while advancing the current step in
    # a row (not the tool's failures): bounded retries, then the step fails.
    engine_errors: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_by: Mapped[str] = mapped_column(String(320), default="system")
    tenant: Mapped[str | None] = mapped_column(String(100), default=None, index=True)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    # Scheduling: a runner may claim the row when status is "running",
    # runnable_at has passed and no unexpired lease is held.
    runnable_at: Mapped[datetime | None] = mapped_column(default=None)
    lease_owner: Mapped[str | None] = mapped_column(String(100), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    # Trace context (W3C traceparent) so a resumed run continues its trace.
    trace_context: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)

    __table_args__ = (
        Index("ix_workflows_claim", "status", "runnable_at"),
        Index("ix_workflows_status_created", "status", "created_at"),
    )

    # The runs whose outputs are the workflow's (see ``OUTPUT_STATUSES``),
    # oldest first: a later run of a step name replaces an earlier one's.
    # Loaded with the row (one SELECT ... IN per query), so a detached
    # workflow still answers ``step_outputs``; the runner's locking SELECT
    # opts out (``lazyload``) and reads outputs per name (core.engine.executor).
    output_runs: Mapped[list[StepRun]] = relationship(
        primaryjoin=lambda: and_(foreign(StepRun.workflow_id) == Workflow.id, output_visible_now()),
        order_by=lambda: StepRun.id,
        viewonly=True,
        lazy="selectin",
    )

    @property
    def step_outputs(self) -> dict[str, Any]:
        """Each step's output by name, as the next step's templates see it."""
        return {run.step_name: run.output for run in self.output_runs}


@event.listens_for(Workflow, "init")
def _new_workflow_has_no_outputs(target: Workflow, _args: Any, _kwargs: Any) -> None:
    """A workflow made here (not loaded) has run nothing yet: its outputs are known
    without a query, and still readable once its session is closed."""
    set_committed_value(target, "output_runs", [])


class StepRun(Base):
    """One execution of one step. Recorded before its action runs."""

    __tablename__ = "step_runs"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workflow_id: Mapped[str] = mapped_column(ForeignKey("workflows.id"), index=True)
    step_index: Mapped[int] = mapped_column(Integer)
    step_name: Mapped[str] = mapped_column(String(200))
    step_type: Mapped[str] = mapped_column(String(32))
    # running, waiting_approval, completed, skipped, failed, rolled_back, compensated
    status: Mapped[str] = mapped_column(String(32), default="running")
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    approval_id: Mapped[str | None] = mapped_column(String(36), default=None)
    output: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    executed_by: Mapped[str | None] = mapped_column(String(100), default=None)
    # Set when a finished rollback took this run's output out of the
    # workflow's outputs (its status says whether it was compensated).
    undone_at: Mapped[datetime | None] = mapped_column(default=None)


# A run's output is one of its workflow's step outputs while the run is
# completed, or compensated/rolled back by a rollback that has not finished
# (``undone_at`` unset): until then the workflow keeps its outputs.
OUTPUT_STATUSES = ("completed", "compensated", "rolled_back")


def output_visible_now() -> ColumnElement[bool]:
    return and_(StepRun.status.in_(OUTPUT_STATUSES), StepRun.output.is_not(None), StepRun.undone_at.is_(None))


def outputs_query(
    workflow_id: str, *, watermark: int | None = None, taken_at: datetime | None = None
) -> Select[Any]:
    """(step_name, output) of the runs whose outputs are the workflow's, oldest first;
    with a checkpoint's ``watermark`` and ``taken_at``, only those it holds (what a
    rollback to it restores): runs up to the watermark finished by then."""
    query = select(StepRun.step_name, StepRun.output).where(
        StepRun.workflow_id == workflow_id, output_visible_now()
    )
    if watermark is not None:
        query = query.where(StepRun.id <= watermark)
    if taken_at is not None:
        query = query.where(StepRun.finished_at <= taken_at)
    return query.order_by(StepRun.id)


class ApprovalRequest(TimestampMixin, Base):
    __tablename__ = "approval_requests"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workflow_id: Mapped[str | None] = mapped_column(ForeignKey("workflows.id"), index=True, default=None)
    step_name: Mapped[str | None] = mapped_column(String(200), default=None)
    step_run_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    approval_type: Mapped[str] = mapped_column(String(16))
    # pending, approved, rejected, modified, expired, cancelled
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    requested_by: Mapped[str] = mapped_column(String(320), default="system")
    # Who may answer now (emails or group names); for budget levels, the
    # current level's approvers.
    approvers: Mapped[list[str]] = mapped_column(JSONType, default=list)
    threshold: Mapped[int] = mapped_column(Integer, default=1)
    # The normalised approval config (levels, rules, channels).
    config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    context_data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # JSON Schema the answer must satisfy, and UI hints for forms.
    response_schema: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    ui_schema: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # The agent's or step's proposed action, shown to the approver.
    proposed_action: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # The call this request guards, as proposed (tool, rendered arguments,
    # digest, input schema; core.definitions.calls), and the call the decision released
    # so far (set at each level passed and at the decision). NULL when the
    # request guards no call.
    proposed_call: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    released_call: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    level: Mapped[int] = mapped_column(Integer, default=0)
    escalations: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    decided_by: Mapped[str | None] = mapped_column(String(320), default=None)
    decision_data: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    tenant: Mapped[str | None] = mapped_column(String(100), default=None, index=True)

    __table_args__ = (Index("ix_approval_requests_status_created", "status", "created_at"),)


class ApprovalAssignee(Base):
    """Who may answer an open request now: one row per email or group name.

    Kept beside the request so an inbox is an indexed lookup, not a scan of
    JSON lists.
    """

    __tablename__ = "approval_assignees"

    approval_id: Mapped[str] = mapped_column(ForeignKey("approval_requests.id"), primary_key=True)
    principal: Mapped[str] = mapped_column(String(320), primary_key=True, index=True)
    # Copies of the request's deadline and age, so an inbox page is two index
    # walks that stop at the page size, however many requests wait.
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        Index("ix_approval_assignees_due", "principal", "expires_at", "created_at"),
        Index("ix_approval_assignees_newest", "principal", "created_at"),
    )


class ApprovalResponse(Base):
    """One approver's vote. Append-only."""

    __tablename__ = "approval_responses"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    approval_id: Mapped[str] = mapped_column(ForeignKey("approval_requests.id"), index=True)
    approver: Mapped[str] = mapped_column(String(320))
    level: Mapped[int] = mapped_column(Integer, default=0)
    decision: Mapped[str] = mapped_column(String(16))  # approve, reject, modify
    channel: Mapped[str] = mapped_column(String(32), default="api")
    comment: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The tamper-evident trail (core.records.trail): chain, position, previous hash, own hash.
    trail_chain: Mapped[str | None] = mapped_column(String(80), default=None)
    trail_seq: Mapped[int | None] = mapped_column(BigInteger, default=None)
    trail_prev: Mapped[str | None] = mapped_column(String(64), default=None)
    trail_hash: Mapped[str | None] = mapped_column(String(64), default=None)

    __table_args__ = (
        UniqueConstraint("approval_id", "approver", "level"),
        Index("ix_approval_responses_trail", "trail_chain", "trail_seq", unique=True),
    )


class WorkflowEvent(Base):
    """The audit trail. Rows are never updated or deleted (a trigger refuses)."""

    __tablename__ = "workflow_events"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workflow_id: Mapped[str | None] = mapped_column(String(36), index=True, default=None)
    approval_id: Mapped[str | None] = mapped_column(String(36), index=True, default=None)
    # Set for supervised-conversation events (take over, inject, release).
    session_id: Mapped[str | None] = mapped_column(String(36), index=True, default=None)
    event_type: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(320))
    step_name: Mapped[str | None] = mapped_column(String(200), default=None)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # The tamper-evident trail (core.records.trail): chain, position, previous hash, own hash.
    trail_chain: Mapped[str | None] = mapped_column(String(80), default=None)
    trail_seq: Mapped[int | None] = mapped_column(BigInteger, default=None)
    trail_prev: Mapped[str | None] = mapped_column(String(64), default=None)
    trail_hash: Mapped[str | None] = mapped_column(String(64), default=None)

    __table_args__ = (Index("ix_workflow_events_trail", "trail_chain", "trail_seq", unique=True),)


class WorkflowCheckpoint(Base):
    __tablename__ = "workflow_checkpoints"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workflow_id: Mapped[str] = mapped_column(ForeignKey("workflows.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    step_index: Mapped[int] = mapped_column(Integer)
    step_name: Mapped[str | None] = mapped_column(String(200), default=None)
    context: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # Highest step run id when taken: later completed runs are compensated,
    # and the outputs of the runs up to it are the checkpoint's (not copied).
    step_run_watermark: Mapped[int] = mapped_column(BigInteger, default=0)
    # Set when a rollback to an earlier checkpoint abandoned this one.
    superseded_by_event_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    created_by: Mapped[str] = mapped_column(String(320), default="system")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    # The runs whose outputs the workflow had when this was taken: up to the
    # watermark, finished by then (a run waiting for a person when the
    # checkpoint was taken is under the watermark but not among its outputs),
    # and not undone by a rollback finished before it.
    output_runs: Mapped[list[StepRun]] = relationship(
        primaryjoin=lambda: and_(
            foreign(StepRun.workflow_id) == WorkflowCheckpoint.workflow_id,
            StepRun.id <= WorkflowCheckpoint.step_run_watermark,
            StepRun.finished_at <= WorkflowCheckpoint.created_at,
            StepRun.status.in_(OUTPUT_STATUSES),
            StepRun.output.is_not(None),
            or_(StepRun.undone_at.is_(None), StepRun.undone_at > WorkflowCheckpoint.created_at),
        ),
        order_by=lambda: StepRun.id,
        viewonly=True,
        lazy="selectin",
    )

    @property
    def step_outputs(self) -> dict[str, Any]:
        """The step outputs as they were when the checkpoint was taken."""
        return {run.step_name: run.output for run in self.output_runs}


class Notification(TimestampMixin, Base):
    """The outbox: one row per approval, channel and recipient."""

    __tablename__ = "notifications"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    approval_id: Mapped[str | None] = mapped_column(String(36), index=True, default=None)
    workflow_id: Mapped[str | None] = mapped_column(String(36), default=None)
    kind: Mapped[str] = mapped_column(String(64), default="approval.requested")
    channel: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(320))
    # pending, sent, failed (will retry), dead
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    # Where the channel put the message (e.g. Slack channel and ts) for updates.
    external_ref: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)

    __table_args__ = (UniqueConstraint("approval_id", "kind", "channel", "recipient"),)


class ChannelConfiguration(TimestampMixin, Base):
    """Non-secret channel settings. Secrets live in the environment only."""

    __tablename__ = "channel_configurations"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(32), unique=True)
    enabled: Mapped[bool] = mapped_column(default=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class User(TimestampMixin, Base):
    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16), default="approver")
    groups: Mapped[list[str]] = mapped_column(JSONType, default=list)
    password_hash: Mapped[str | None] = mapped_column(String(300), default=None)
    tenant: Mapped[str | None] = mapped_column(String(100), default=None)
    # The user's own model settings: the last layer after platform and tenant.
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Browser sessions carry this; bumping it (password or role change, removal,
    # "sign out everywhere") ends every session made before (core.identity.users.session_user).
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Set while an admin has disabled the account (core.identity.account_state): it signs in,
    # answers and authenticates nowhere until enabled again (migration 0009).
    disabled_at: Mapped[datetime | None] = mapped_column(default=None)


class SignInFailure(Base):
    """A refused sign-in, kept for the per-account and per-address limits (core.identity.users)."""

    __tablename__ = "sign_in_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(String(320), index=True)
    address: Mapped[str] = mapped_column(String(100), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class RunnerHeartbeat(Base):
    __tablename__ = "runner_heartbeats"

    runner_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(200), default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    steps_executed: Mapped[int] = mapped_column(Integer, default=0)


class AgentRun(TimestampMixin, Base):
    """A smolagents run inside a task step, with its saved memory.

    When the agent asks a person, the run stops and its memory is kept here;
    any runner process continues it from this row after the decision.
    """

    __tablename__ = "agent_runs"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workflow_id: Mapped[str] = mapped_column(ForeignKey("workflows.id"), index=True)
    step_run_id: Mapped[int] = mapped_column(BigInteger, index=True)
    step_name: Mapped[str] = mapped_column(String(200))
    # running, suspended, completed, failed
    status: Mapped[str] = mapped_column(String(16), default="running")
    model: Mapped[str] = mapped_column(String(200), default="")
    # Serialised agent memory (steps, tool calls, observations) and extra state.
    memory: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    state: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # The held tool call waiting for a person, if any.
    pending_call: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    approval_id: Mapped[str | None] = mapped_column(String(36), default=None)


class ApiToken(TimestampMixin, Base):
    """An API token for the REST gateway; only its hash is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    user_email: Mapped[str] = mapped_column(String(320))
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    # The actions the token may do (core.identity.permissions.Action values), never
    # more than its user's role at the time of use; NULL (tokens made before
    # scopes existed): whatever its user's role allows.
    scopes: Mapped[list[str] | None] = mapped_column(JSONType, default=None)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)


class UsedToken(Base):
    """Single-use link tokens already spent (email approval links) and the once keys of
    Slack clicks and webhook deliveries (core.approvals.once); pruned once no token they stand for
    could still be valid (core.ops.token_pruning; the index from migration 0009)."""

    __tablename__ = "used_tokens"

    token_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    used_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class AgentProfile(TimestampMixin, Base):
    """A named agent a task step can use (``agent: <name>``), managed from
    the Agents page and ``python -m core agents``. Validated as
    ``core.definitions.agents.AgentSpec`` before it is stored."""

    __tablename__ = "agent_profiles"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    role: Mapped[str] = mapped_column(String(200), default="")
    instructions: Mapped[str] = mapped_column(Text, default="")
    agent_type: Mapped[str] = mapped_column(String(32), default="tool_calling")
    model_provider: Mapped[str | None] = mapped_column(String(32), default=None)
    model_id: Mapped[str | None] = mapped_column(String(200), default=None)
    tools: Mapped[list[str]] = mapped_column(JSONType, default=list)
    held_tools: Mapped[list[str]] = mapped_column(JSONType, default=list)
    max_steps: Mapped[int] = mapped_column(Integer, default=10)
    # The rest of AgentSpec (model api_base/api_key_env/options, approval,
    # authorized_imports, executor): never an API key, only its variable's name.
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_by: Mapped[str] = mapped_column(String(320), default="system")


class AgentTeam(TimestampMixin, Base):
    """An ordered list of agent profiles run as a pipeline: each member's
    answer is the next member's input. Started as an ordinary workflow."""

    __tablename__ = "agent_teams"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    # Profile names, in pipeline order.
    members: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # Optional per-team knobs (e.g. an approval before a given member).
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_by: Mapped[str] = mapped_column(String(320), default="system")


class Tenant(TimestampMixin, Base):
    """An organisation sharing the platform; sees only its own rows."""

    __tablename__ = "tenants"

    slug: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    # Model settings at tenant level (provider, model id, api base...): never
    # a key in clear; keys live in tenant_secrets, encrypted.
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class TenantSecret(TimestampMixin, Base):
    """A tenant's API key, Fernet-encrypted with a key from the environment."""

    __tablename__ = "tenant_secrets"

    tenant: Mapped[str] = mapped_column(ForeignKey("tenants.slug"), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    ciphertext: Mapped[str] = mapped_column(Text)


class TenantFlow(TimestampMixin, Base):
    """A named conversation flow of a tenant: agent type, tools, parameters."""

    __tablename__ = "tenant_flows"

    tenant: Mapped[str] = mapped_column(ForeignKey("tenants.slug"), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    agent_type: Mapped[str] = mapped_column(String(32), default="tool_calling")
    # Optional agent profile the flow starts from; tools/parameters override.
    profile: Mapped[str | None] = mapped_column(String(100), default=None)
    tools: Mapped[list[str]] = mapped_column(JSONType, default=list)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class ChatSession(TimestampMixin, Base):
    """A supervised conversation between a person and a tenant's flow."""

    __tablename__ = "chat_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant: Mapped[str | None] = mapped_column(String(100), default=None, index=True)
    flow: Mapped[str] = mapped_column(String(100))
    user_email: Mapped[str] = mapped_column(String(320), index=True)
    title: Mapped[str] = mapped_column(String(500), default="")
    # active (the agent answers), supervised (a person took over), closed
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)
    supervisor: Mapped[str | None] = mapped_column(String(320), default=None)


class ChatMessage(Base):
    """One message of a session. The full history is every row; the model's
    history is the rows with ``visible_to_model``. Append-only."""

    __tablename__ = "chat_messages"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("chat_sessions.id"), index=True)
    # user, assistant, supervisor
    role: Mapped[str] = mapped_column(String(16))
    author: Mapped[str] = mapped_column(String(320))
    content: Mapped[str] = mapped_column(Text)
    visible_to_model: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ExecutionLog(Base):
    """Every agent step, tool call and model error, across workflows and
    sessions: the Execution logs page reads this."""

    __tablename__ = "execution_logs"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    tenant: Mapped[str | None] = mapped_column(String(100), default=None, index=True)
    workflow_id: Mapped[str | None] = mapped_column(String(36), default=None, index=True)
    session_id: Mapped[str | None] = mapped_column(String(36), default=None, index=True)
    step_name: Mapped[str | None] = mapped_column(String(200), default=None)
    agent: Mapped[str | None] = mapped_column(String(100), default=None)
    # agent_step, tool_call, model_error, agent_error, final_answer
    kind: Mapped[str] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(8), default="info")
    tool_name: Mapped[str | None] = mapped_column(String(200), default=None)
    message: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    duration_ms: Mapped[int | None] = mapped_column(Integer, default=None)

    __table_args__ = (Index("ix_execution_logs_kind_created", "kind", "created_at"),)


class Alert(Base):
    """A raised alert (near expiry, failed workflow, dead delivery, missing
    runner heartbeat). One open row per rule and subject."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(64))
    # What the alert is about: an approval id, workflow id, notification id
    # or runner id; unique per rule so a rule never raises twice.
    subject: Mapped[str] = mapped_column(String(200))
    severity: Mapped[str] = mapped_column(String(16), default="warning")
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    raised_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    acknowledged_by: Mapped[str | None] = mapped_column(String(320), default=None)
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (UniqueConstraint("rule", "subject"),)


class ApprovalReminder(Base):
    """A reminder due before a request's deadline, and whether it went out (core.approvals.reminders).

    One row per request, deadline round (its level and escalation) and share of
    the time to answer; a runner claims a due row (``FOR UPDATE SKIP LOCKED``) and
    marks it sent in the transaction that queues the reminder, so each goes out once.
    """

    __tablename__ = "approval_reminders"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    approval_id: Mapped[str] = mapped_column(ForeignKey("approval_requests.id"), index=True)
    level: Mapped[int] = mapped_column(Integer, default=0)
    escalation: Mapped[int] = mapped_column(Integer, default=0)
    share: Mapped[float] = mapped_column(Float)
    deadline: Mapped[datetime] = mapped_column()
    due_at: Mapped[datetime] = mapped_column()
    # due, sent, skipped (the request was decided or moved on before it came due)
    status: Mapped[str] = mapped_column(String(16), default="due")
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    sent_by: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("approval_id", "level", "escalation", "share"),
        Index("ix_approval_reminders_due", "status", "due_at"),
    )


# -- approval policy: standing rules, out of office, backup approvers (migration 0010) ---------


class StandingRule(TimestampMixin, Base):
    """A standing permission: calls of ``tool`` whose arguments satisfy ``condition``,
    in ``tenant`` (NULL: the platform's own workflows) and ``workflow_name`` (NULL: any),
    are released without asking until ``expires_at`` (core.approvals.standing_rules)."""

    __tablename__ = "standing_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tool: Mapped[str] = mapped_column(String(200), index=True)
    # A core.definitions.gates expression over args (and tool, input, workflow), e.g. "args.amount <= 200".
    condition: Mapped[str] = mapped_column(Text)
    workflow_name: Mapped[str | None] = mapped_column(String(200), default=None)
    tenant: Mapped[str | None] = mapped_column(String(100), default=None, index=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    created_by: Mapped[str] = mapped_column(String(320))
    note: Mapped[str] = mapped_column(Text, default="")
    # The request whose answer created the rule, if any.
    source_approval_id: Mapped[str | None] = mapped_column(String(36), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_by: Mapped[str | None] = mapped_column(String(320), default=None)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)


class OutOfOffice(TimestampMixin, Base):
    """A person away until ``until``: requests addressed to them go to ``delegate``."""

    __tablename__ = "out_of_office"

    person: Mapped[str] = mapped_column(String(320), primary_key=True)
    delegate: Mapped[str] = mapped_column(String(320))
    until: Mapped[datetime] = mapped_column(index=True)
    set_by: Mapped[str] = mapped_column(String(320))


class ApprovalBackup(Base):
    """The backup approver of an open request, asked at ``due_at`` if nobody answered."""

    __tablename__ = "approval_backups"

    approval_id: Mapped[str] = mapped_column(ForeignKey("approval_requests.id"), primary_key=True)
    backup_to: Mapped[str] = mapped_column(String(320))
    due_at: Mapped[datetime] = mapped_column(index=True)
    asked_at: Mapped[datetime | None] = mapped_column(default=None)
