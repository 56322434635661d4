"""The mapped classes (SQLAlchemy 2 ORM) of the tables in ``core.store.schema``.

Each class maps its table (``__table__``), which is defined once, in the schema
module: the ``Mapped[...]`` annotations here only type the attributes (a test
checks that they name exactly the table's columns, nullable where the column
is), and the relationships and derived properties live here. Code that needs
only Core queries imports ``core.store.schema`` and never pays for the ORM.
The schema's names (``utcnow``, ``new_id``, ``UTCDateTime``, ``outputs_query``...)
are importable from here as before.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import FromClause, and_, event, or_
from sqlalchemy.orm import DeclarativeBase, Mapped, foreign, relationship
from sqlalchemy.orm.attributes import set_committed_value

from core.store import (
    lengths,  # noqa: F401  (its flush hook refuses over-long values in words)
    schema,
)
from core.store.schema import (  # noqa: F401  (re-exported: the schema's names, as before the split)
    NAMING_CONVENTION,
    OUTPUT_STATUSES,
    BigIntPK,
    JSONType,
    UTCDateTime,
    new_id,
    output_visible_now,
    outputs_query,
    utcnow,
)


class Base(DeclarativeBase):
    metadata = schema.metadata
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType}


class Workflow(Base):
    __table__: ClassVar[FromClause] = schema.workflows

    id: Mapped[str]
    name: Mapped[str]
    description: Mapped[str]
    definition: Mapped[dict[str, Any]]
    input_data: Mapped[dict[str, Any]]
    context: Mapped[dict[str, Any]]
    status: Mapped[str]
    current_step: Mapped[int]
    current_step_run_id: Mapped[int | None]
    error: Mapped[str | None]
    engine_errors: Mapped[int]
    created_by: Mapped[str]
    tenant: Mapped[str | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    runnable_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None]
    lease_expires_at: Mapped[datetime | None]
    trace_context: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

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

    __table__: ClassVar[FromClause] = schema.step_runs

    id: Mapped[int]
    workflow_id: Mapped[str]
    step_index: Mapped[int]
    step_name: Mapped[str]
    step_type: Mapped[str]
    status: Mapped[str]
    attempt: Mapped[int]
    approval_id: Mapped[str | None]
    output: Mapped[dict[str, Any] | None]
    error: Mapped[str | None]
    idempotency_key: Mapped[str]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    executed_by: Mapped[str | None]
    undone_at: Mapped[datetime | None]


class ApprovalRequest(Base):
    __table__: ClassVar[FromClause] = schema.approval_requests

    id: Mapped[str]
    workflow_id: Mapped[str | None]
    step_name: Mapped[str | None]
    step_run_id: Mapped[int | None]
    title: Mapped[str]
    description: Mapped[str]
    approval_type: Mapped[str]
    status: Mapped[str]
    requested_by: Mapped[str]
    approvers: Mapped[list[str]]
    threshold: Mapped[int]
    config: Mapped[dict[str, Any]]
    context_data: Mapped[dict[str, Any]]
    response_schema: Mapped[dict[str, Any]]
    ui_schema: Mapped[dict[str, Any]]
    proposed_action: Mapped[dict[str, Any]]
    proposed_call: Mapped[dict[str, Any] | None]
    released_call: Mapped[dict[str, Any] | None]
    level: Mapped[int]
    escalations: Mapped[int]
    expires_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None]
    decision_data: Mapped[dict[str, Any] | None]
    tenant: Mapped[str | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ApprovalAssignee(Base):
    """Who may answer an open request now: one row per email or group name.

    Kept beside the request so an inbox is an indexed lookup, not a scan of
    JSON lists.
    """

    __table__: ClassVar[FromClause] = schema.approval_assignees

    approval_id: Mapped[str]
    principal: Mapped[str]
    expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime | None]


class ApprovalResponse(Base):
    """One approver's vote. Append-only."""

    __table__: ClassVar[FromClause] = schema.approval_responses

    id: Mapped[int]
    approval_id: Mapped[str]
    approver: Mapped[str]
    level: Mapped[int]
    decision: Mapped[str]
    channel: Mapped[str]
    comment: Mapped[str]
    data: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    trail_chain: Mapped[str | None]
    trail_seq: Mapped[int | None]
    trail_prev: Mapped[str | None]
    trail_hash: Mapped[str | None]


class WorkflowEvent(Base):
    """The audit trail. Rows are never updated or deleted (a trigger refuses)."""

    __table__: ClassVar[FromClause] = schema.workflow_events

    id: Mapped[int]
    workflow_id: Mapped[str | None]
    approval_id: Mapped[str | None]
    session_id: Mapped[str | None]
    event_type: Mapped[str]
    actor: Mapped[str]
    step_name: Mapped[str | None]
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]
    data: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    trail_chain: Mapped[str | None]
    trail_seq: Mapped[int | None]
    trail_prev: Mapped[str | None]
    trail_hash: Mapped[str | None]


class WorkflowCheckpoint(Base):
    __table__: ClassVar[FromClause] = schema.workflow_checkpoints

    id: Mapped[int]
    workflow_id: Mapped[str]
    name: Mapped[str]
    description: Mapped[str]
    step_index: Mapped[int]
    step_name: Mapped[str | None]
    context: Mapped[dict[str, Any]]
    step_run_watermark: Mapped[int]
    superseded_by_event_id: Mapped[int | None]
    created_by: Mapped[str]
    created_at: Mapped[datetime]

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


class Notification(Base):
    """The outbox: one row per approval, channel and recipient."""

    __table__: ClassVar[FromClause] = schema.notifications

    id: Mapped[str]
    approval_id: Mapped[str | None]
    workflow_id: Mapped[str | None]
    kind: Mapped[str]
    channel: Mapped[str]
    recipient: Mapped[str]
    status: Mapped[str]
    attempts: Mapped[int]
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None]
    payload: Mapped[dict[str, Any]]
    sent_at: Mapped[datetime | None]
    external_ref: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ChannelConfiguration(Base):
    """Non-secret channel settings. Secrets live in the environment only."""

    __table__: ClassVar[FromClause] = schema.channel_configurations

    id: Mapped[int]
    channel: Mapped[str]
    enabled: Mapped[bool]
    settings: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class User(Base):
    __table__: ClassVar[FromClause] = schema.users

    email: Mapped[str]
    name: Mapped[str]
    role: Mapped[str]
    groups: Mapped[list[str]]
    password_hash: Mapped[str | None]
    tenant: Mapped[str | None]
    settings: Mapped[dict[str, Any]]
    session_version: Mapped[int]
    disabled_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SignInFailure(Base):
    """A refused sign-in, kept for the per-account and per-address limits (core.identity.users)."""

    __table__: ClassVar[FromClause] = schema.sign_in_failures

    id: Mapped[int]
    account: Mapped[str]
    address: Mapped[str]
    at: Mapped[datetime]


class RunnerHeartbeat(Base):
    __table__: ClassVar[FromClause] = schema.runner_heartbeats

    runner_id: Mapped[str]
    hostname: Mapped[str]
    pid: Mapped[int]
    started_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    steps_executed: Mapped[int]


class AgentRun(Base):
    """A smolagents run inside a task step, with its saved memory.

    When the agent asks a person, the run stops and its memory is kept here;
    any runner process continues it from this row after the decision.
    """

    __table__: ClassVar[FromClause] = schema.agent_runs

    id: Mapped[int]
    workflow_id: Mapped[str]
    step_run_id: Mapped[int]
    step_name: Mapped[str]
    status: Mapped[str]
    model: Mapped[str]
    memory: Mapped[dict[str, Any]]
    state: Mapped[dict[str, Any]]
    pending_call: Mapped[dict[str, Any] | None]
    approval_id: Mapped[str | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ApiToken(Base):
    """An API token for the REST gateway; only its hash is stored."""

    __table__: ClassVar[FromClause] = schema.api_tokens

    id: Mapped[int]
    name: Mapped[str]
    token_hash: Mapped[str]
    user_email: Mapped[str]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    scopes: Mapped[list[str] | None]
    expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class UsedToken(Base):
    """Single-use link tokens already spent (email approval links) and the once keys of
    Slack clicks and webhook deliveries (core.approvals.once); pruned once no token they stand for
    could still be valid (core.ops.token_pruning; the index from migration 0009)."""

    __table__: ClassVar[FromClause] = schema.used_tokens

    token_id: Mapped[str]
    used_at: Mapped[datetime]


class AgentProfile(Base):
    """A named agent a task step can use (``agent: <name>``), managed from
    the Agents page and ``python -m core agents``. Validated as
    ``core.definitions.agents.AgentSpec`` before it is stored."""

    __table__: ClassVar[FromClause] = schema.agent_profiles

    name: Mapped[str]
    role: Mapped[str]
    instructions: Mapped[str]
    agent_type: Mapped[str]
    model_provider: Mapped[str | None]
    model_id: Mapped[str | None]
    tools: Mapped[list[str]]
    held_tools: Mapped[list[str]]
    max_steps: Mapped[int]
    settings: Mapped[dict[str, Any]]
    created_by: Mapped[str]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AgentTeam(Base):
    """An ordered list of agent profiles run as a pipeline: each member's
    answer is the next member's input. Started as an ordinary workflow."""

    __table__: ClassVar[FromClause] = schema.agent_teams

    name: Mapped[str]
    description: Mapped[str]
    members: Mapped[list[str]]
    settings: Mapped[dict[str, Any]]
    created_by: Mapped[str]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Tenant(Base):
    """An organisation sharing the platform; sees only its own rows."""

    __table__: ClassVar[FromClause] = schema.tenants

    slug: Mapped[str]
    name: Mapped[str]
    settings: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class TenantSecret(Base):
    """A tenant's API key, Fernet-encrypted with a key from the environment."""

    __table__: ClassVar[FromClause] = schema.tenant_secrets

    tenant: Mapped[str]
    name: Mapped[str]
    ciphertext: Mapped[str]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class TenantFlow(Base):
    """A named conversation flow of a tenant: agent type, tools, parameters."""

    __table__: ClassVar[FromClause] = schema.tenant_flows

    tenant: Mapped[str]
    name: Mapped[str]
    description: Mapped[str]
    agent_type: Mapped[str]
    profile: Mapped[str | None]
    tools: Mapped[list[str]]
    parameters: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ChatSession(Base):
    """A supervised conversation between a person and a tenant's flow."""

    __table__: ClassVar[FromClause] = schema.chat_sessions

    id: Mapped[str]
    tenant: Mapped[str | None]
    flow: Mapped[str]
    user_email: Mapped[str]
    title: Mapped[str]
    status: Mapped[str]
    supervisor: Mapped[str | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ChatMessage(Base):
    """One message of a session. The full history is every row; the model's
    history is the rows with ``visible_to_model``. Append-only."""

    __table__: ClassVar[FromClause] = schema.chat_messages

    id: Mapped[int]
    session_id: Mapped[str]
    role: Mapped[str]
    author: Mapped[str]
    content: Mapped[str]
    visible_to_model: Mapped[bool]
    created_at: Mapped[datetime]


class ExecutionLog(Base):
    """Every agent step, tool call and model error, across workflows and
    sessions: the Execution logs page reads this."""

    __table__: ClassVar[FromClause] = schema.execution_logs

    id: Mapped[int]
    created_at: Mapped[datetime]
    tenant: Mapped[str | None]
    workflow_id: Mapped[str | None]
    session_id: Mapped[str | None]
    step_name: Mapped[str | None]
    agent: Mapped[str | None]
    kind: Mapped[str]
    level: Mapped[str]
    tool_name: Mapped[str | None]
    message: Mapped[str]
    data: Mapped[dict[str, Any]]
    duration_ms: Mapped[int | None]


class Alert(Base):
    """A raised alert (near expiry, failed workflow, dead delivery, missing
    runner heartbeat). One open row per rule and subject."""

    __table__: ClassVar[FromClause] = schema.alerts

    id: Mapped[int]
    rule: Mapped[str]
    subject: Mapped[str]
    severity: Mapped[str]
    message: Mapped[str]
    data: Mapped[dict[str, Any]]
    raised_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None]
    acknowledged_at: Mapped[datetime | None]


class ApprovalReminder(Base):
    """A reminder due before a request's deadline, and whether it went out (core.approvals.reminders).

    One row per request, deadline round (its level and escalation) and share of
    the time to answer; a runner claims a due row (``FOR UPDATE SKIP LOCKED``) and
    marks it sent in the transaction that queues the reminder, so each goes out once.
    """

    __table__: ClassVar[FromClause] = schema.approval_reminders

    id: Mapped[int]
    approval_id: Mapped[str]
    level: Mapped[int]
    escalation: Mapped[int]
    share: Mapped[float]
    deadline: Mapped[datetime]
    due_at: Mapped[datetime]
    status: Mapped[str]
    sent_at: Mapped[datetime | None]
    sent_by: Mapped[str | None]
    created_at: Mapped[datetime]


# -- approval policy: standing rules, out of office, backup approvers (migration 0010) ---------


class StandingRule(Base):
    """A standing permission: calls of ``tool`` whose arguments satisfy ``condition``,
    in ``tenant`` (NULL: the platform's own workflows) and ``workflow_name`` (NULL: any),
    are released without asking until ``expires_at`` (core.approvals.standing_rules)."""

    __table__: ClassVar[FromClause] = schema.standing_rules

    id: Mapped[int]
    tool: Mapped[str]
    condition: Mapped[str]
    workflow_name: Mapped[str | None]
    tenant: Mapped[str | None]
    expires_at: Mapped[datetime]
    created_by: Mapped[str]
    note: Mapped[str]
    source_approval_id: Mapped[str | None]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None]
    uses: Mapped[int]
    last_used_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class OutOfOffice(Base):
    """A person away until ``until``: requests addressed to them go to ``delegate``."""

    __table__: ClassVar[FromClause] = schema.out_of_office

    person: Mapped[str]
    delegate: Mapped[str]
    until: Mapped[datetime]
    set_by: Mapped[str]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ApprovalBackup(Base):
    """The backup approver of an open request, asked at ``due_at`` if nobody answered."""

    __table__: ClassVar[FromClause] = schema.approval_backups

    approval_id: Mapped[str]
    backup_to: Mapped[str]
    due_at: Mapped[datetime]
    asked_at: Mapped[datetime | None]
