"""The seed's Python API, synchronous: ``SmolAgentOrchestrator`` and
``StateManager`` (``ApprovalEngine`` lives in core.approvals.engine). The seed's own,
awaitable API is ``core.orchestrator_async``, which runs this one in worker
threads.

A request for approval parks the workflow in the database; a runner picks the
workflow up again when the decision arrives, in any process. By default
``execute_workflow`` returns as soon as the workflow waits for a person
(``wait=True`` polls until it ends instead); nothing is lost if this process
stops meanwhile.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from core.approvals.engine import ApprovalEngine
from core.definitions.workflow import WorkflowDefinition
from core.engine import workflows as ops
from core.engine.checkpoints import RollbackResult, rollback
from core.engine.runner import Runner
from core.engine.tools import ToolRegistry
from core.runtime import build_runner, install_session_hooks, load_tools
from core.store.db import Database, get_database
from core.store.tables import ApprovalRequest, Workflow, WorkflowCheckpoint

if TYPE_CHECKING:
    from core.channels.dispatcher import Dispatcher

# Statuses in which a workflow may still finish without anyone resuming it.
STILL_GOING = ("pending", "running", "waiting_approval")
POLL_SECONDS = 0.25
# Keys of a model_config that would put a secret into the stored definition.
_SECRET_MODEL_KEYS = ("api_key", "token", "hf_token", "password", "secret")
_MODEL_KEYS = ("provider", "model_id", "api_base", "api_key_env", "options")
_AGENT_TYPES = {
    "code": "code",
    "codeagent": "code",
    "tool_calling": "tool_calling",
    "toolcalling": "tool_calling",
    "toolcallingagent": "tool_calling",
    "tool": "tool_calling",
}


def agent_defaults(model_config: dict[str, Any] | None, agent_type: str | None) -> dict[str, Any]:
    """The seed's ``model_config`` and ``agent_type`` as a task step's ``agent`` settings.

    The model's fields are ``ModelSpec``'s; other keys become its ``options``
    (passed to the smolagents model). A key or token is refused: definitions
    are stored in the database, so name the environment variable holding it
    (``api_key_env``) instead. ``plan`` (the rehearsal model's script) is the
    agent facade's and not part of a step's model.
    """
    from core.base.errors import ConfigurationError
    from core.definitions.agents import ModelSpec

    defaults: dict[str, Any] = {}
    if agent_type is not None:
        kind = _AGENT_TYPES.get(agent_type.replace("-", "_").lower())
        if kind is None:
            raise ConfigurationError(f"agent_type {agent_type!r}: use code or tool_calling.")
        defaults["type"] = kind
    if model_config:
        secretish = sorted(k for k in model_config if k.lower() in _SECRET_MODEL_KEYS)
        if secretish:
            raise ConfigurationError(
                f"model_config: {', '.join(secretish)} would be stored with every workflow; put "
                "the key in the environment and name the variable in api_key_env."
            )
        model = {k: v for k, v in model_config.items() if k in _MODEL_KEYS}
        extra = {k: v for k, v in model_config.items() if k not in _MODEL_KEYS and k != "plan"}
        if extra:
            model["options"] = {**dict(model.get("options") or {}), **extra}
        try:
            defaults["model"] = ModelSpec.model_validate(model).model_dump(exclude_defaults=True)
        except ValueError as exc:
            raise ConfigurationError(f"model_config: {exc}") from None
    return defaults


def with_agent_defaults(
    definition: WorkflowDefinition | dict[str, Any], defaults: dict[str, Any]
) -> WorkflowDefinition | dict[str, Any]:
    """``definition`` with ``defaults`` under every task step's own agent settings."""
    if not defaults:
        return definition
    from core.definitions.workflow import definition_dict

    data = definition_dict(definition) if isinstance(definition, WorkflowDefinition) else dict(definition)
    steps = []
    for raw in data.get("steps") or []:
        step = dict(raw) if isinstance(raw, dict) else raw
        if isinstance(step, dict) and step.get("type", "task") == "task":
            own = step.get("agent")
            if own is None:
                step["agent"] = dict(defaults)
            elif isinstance(own, dict):  # a profile name (str) is left as it is
                merged = {**defaults, **own}
                if isinstance(own.get("model"), dict) and "model" in defaults:
                    merged["model"] = {**defaults["model"], **own["model"]}
                step["agent"] = merged
        steps.append(step)
    return {**data, "steps": steps}


class StateManager:
    """Workflow state, events and checkpoints over one database."""

    def __init__(self, db: Database | None = None, registry: ToolRegistry | None = None) -> None:
        self.db = db or get_database()
        install_session_hooks()
        self.registry = registry or load_tools()

    def create_workflow(
        self,
        name: str,
        definition: WorkflowDefinition | dict[str, Any],
        input_data: dict[str, Any] | None = None,
        created_by: str = "system",
        description: str | None = None,
        start: bool = False,
    ) -> Workflow:
        return ops.create_workflow(
            self.db,
            definition,
            name=name,
            description=description,
            input_data=input_data,
            created_by=created_by,
            start=start,
        )

    def update_workflow_state(
        self,
        workflow_id: str,
        new_state: dict[str, Any],
        step_name: str | None = None,
        actor: str = "system",
    ) -> Workflow:
        """Merge ``new_state`` into the workflow's context, with an event."""
        from core.records import rows as store

        with self.db.session() as session:
            workflow = store.get_workflow(session, workflow_id, for_update=True)
            before = dict(workflow.context)
            workflow.context = {**workflow.context, **new_state}
            store.append_event(
                session,
                "workflow.state_updated",
                actor,
                workflow_id=workflow_id,
                step_name=step_name,
                before={"context": before},
                after={"context": workflow.context},
            )
            return workflow

    def transition_workflow_status(
        self, workflow_id: str, new_status: str, actor: str = "system", reason: str = ""
    ) -> Workflow:
        if new_status == "running":
            if ops.get_workflow(self.db, workflow_id).status == "paused":
                return ops.resume_workflow(self.db, workflow_id, actor)
            return ops.start_workflow(self.db, workflow_id, actor)
        if new_status == "paused":
            return ops.pause_workflow(self.db, workflow_id, actor, reason)
        if new_status == "cancelled":
            return ops.cancel_workflow(self.db, workflow_id, actor, reason)
        from core.records import rows as store

        with self.db.session() as session:
            workflow = store.get_workflow(session, workflow_id, for_update=True)
            store.transition_workflow(session, workflow, new_status, actor, reason=reason or None)
            return workflow

    def create_checkpoint(
        self,
        workflow_id: str,
        checkpoint_name: str,
        step_name: str | None = None,
        description: str = "",
        actor: str = "system",
    ) -> WorkflowCheckpoint:
        return ops.create_checkpoint(
            self.db, workflow_id, checkpoint_name, actor, description=description, step_name=step_name
        )

    def rollback_workflow(
        self,
        workflow_id: str,
        checkpoint_name: str | None = None,
        reason: str = "",
        actor: str = "system",
    ) -> RollbackResult:
        return rollback(
            self.db, self.registry, workflow_id, checkpoint_name=checkpoint_name, reason=reason, actor=actor
        )


class SmolAgentOrchestrator:
    """Create and run workflows, ask people, checkpoint and roll back.

    ``model_config`` and ``agent_type`` (the seed's) become the agent settings
    of every task step that does not set its own. With ``dispatch_notifications``
    this process also delivers the notifications due while it runs workflows.
    """

    poll_seconds = POLL_SECONDS

    def __init__(
        self,
        db: Database | None = None,
        *,
        registry: ToolRegistry | None = None,
        actor: str = "system",
        model_config: dict[str, Any] | None = None,
        agent_type: str | None = None,
        dispatch_notifications: bool = True,
    ) -> None:
        self.db = db or get_database()
        install_session_hooks()
        self.registry = registry or load_tools()
        self.actor = actor
        self.model_config = dict(model_config or {})
        self.agent_type = agent_type
        self.agent_defaults = agent_defaults(model_config, agent_type)
        self.dispatch_notifications = dispatch_notifications
        self.state_manager = StateManager(self.db, self.registry)
        self.approval_engine = ApprovalEngine(self.db)
        self.workflow_id: str | None = None
        self._runner: Runner | None = None
        self._dispatcher: Dispatcher | None = None
        self._round_lock = threading.Lock()
        self._agent: SeedAgent | None = None

    def _id(self, workflow_id: str | None) -> str:
        workflow_id = workflow_id or self.workflow_id
        if workflow_id is None:
            from core.base.errors import WorkflowNotFound

            raise WorkflowNotFound("No workflow given and none created by this orchestrator yet.")
        return workflow_id

    @property
    def agent(self) -> SeedAgent:
        """The seed's ``orchestrator.agent``: ``agent.run(task)`` (see ``SeedAgent``)."""
        if self._agent is None:
            self._agent = SeedAgent(self)
        return self._agent

    # -- integrations (the seed's configure_*_integration) ----------------------------

    def configure_slack_integration(
        self,
        bot_token: str,
        signing_secret: str | None = None,
        *,
        app_token: str | None = None,
        user_map: dict[str, str] | None = None,
        enabled: bool = True,
    ) -> dict[str, Any]:
        """Slack's tokens into this process's environment, its settings into the database."""
        from core.channels.configure import configure_slack

        return configure_slack(
            self.db,
            bot_token=bot_token,
            signing_secret=signing_secret,
            app_token=app_token,
            user_map=user_map,
            enabled=enabled,
            actor=self.actor,
        )

    def configure_email_integration(
        self,
        sendgrid_api_key: str | None = None,
        smtp_config: dict[str, Any] | None = None,
        *,
        from_email: str | None = None,
        enabled: bool = True,
    ) -> dict[str, Any]:
        """SendGrid (the key) or SMTP (``smtp_config``; its password) as the email channel."""
        from core.channels.configure import configure_email

        return configure_email(
            self.db,
            sendgrid_api_key=sendgrid_api_key,
            smtp_config=smtp_config,
            from_email=from_email,
            enabled=enabled,
            actor=self.actor,
        )

    def configure_webhook_integration(
        self,
        urls: list[str] | str | None = None,
        *,
        secret: str | None = None,
        enabled: bool = True,
    ) -> dict[str, Any]:
        """Outbound webhooks: endpoints (or per request ``channel_configs.webhook.url``),
        signed with ``secret`` or the environment's ``COUNTERSIGN_WEBHOOK_SECRET``."""
        from core.channels.configure import configure_webhook

        return configure_webhook(self.db, urls=urls, secret=secret, enabled=enabled, actor=self.actor)

    # -- workflows ----------------------------------------------------------------------

    def create_workflow(
        self,
        name: str,
        description: str = "",
        workflow_definition: WorkflowDefinition | dict[str, Any] | None = None,
        input_data: dict[str, Any] | None = None,
        created_by: str | None = None,
    ) -> Workflow:
        workflow = self._create(name, description, workflow_definition, input_data, created_by)
        self.workflow_id = workflow.id
        return workflow

    def _create(
        self,
        name: str,
        description: str,
        workflow_definition: WorkflowDefinition | dict[str, Any] | None,
        input_data: dict[str, Any] | None,
        created_by: str | None,
    ) -> Workflow:
        definition = with_agent_defaults(workflow_definition or {}, self.agent_defaults)
        return ops.create_workflow(
            self.db,
            definition,
            name=name,
            description=description,
            input_data=input_data,
            created_by=created_by or self.actor,
            start=False,
        )

    def execute_workflow(
        self,
        workflow_id: str | None = None,
        task: str | None = None,
        context: dict[str, Any] | None = None,
        *,
        wait: bool = False,
        wait_timeout: float | None = None,
    ) -> dict[str, Any]:
        """Start the workflow and run it here until it waits for a person or ends.

        ``context`` is merged into the workflow's context (with an event) and
        ``task``, when given, is put there as ``task``: the agents of its task
        steps see both. With ``wait`` this polls until the workflow ends, is
        paused, or ``wait_timeout`` seconds pass, running whatever becomes
        runnable meanwhile (a decision made anywhere resumes it).
        """
        workflow_id = self.prepare(workflow_id, task, context)
        report = self.run_round(workflow_id)
        if not wait:
            return report
        deadline = None if wait_timeout is None else time.monotonic() + wait_timeout
        while report["status"] in STILL_GOING and (deadline is None or time.monotonic() < deadline):
            time.sleep(self.poll_seconds)
            report = self.run_round(workflow_id)
        return report

    def prepare(
        self, workflow_id: str | None = None, task: str | None = None, context: dict[str, Any] | None = None
    ) -> str:
        """What ``execute_workflow`` does before running: merge ``context``/``task``, start."""
        workflow_id = self._id(workflow_id)
        extra = dict(context or {})
        if task is not None:
            extra["task"] = task
        if extra:
            self.state_manager.update_workflow_state(workflow_id, extra, actor=self.actor)
        if ops.get_workflow(self.db, workflow_id).status == "pending":
            ops.start_workflow(self.db, workflow_id, self.actor)
        return workflow_id

    def run_round(self, workflow_id: str | None = None) -> dict[str, Any]:
        """Run every runnable workflow until idle, deliver due notifications once, and
        return the workflow's status."""
        self._round()
        return self.get_workflow_status(workflow_id)

    def _round(self) -> None:
        with self._round_lock:
            if self._runner is None:
                self._runner = build_runner(self.db, registry=self.registry)
            self._runner.run_until_idle()
            if self.dispatch_notifications:
                if self._dispatcher is None:
                    from core.channels.dispatcher import Dispatcher

                    self._dispatcher = Dispatcher(self.db)
                self._dispatcher.dispatch_once()

    def request_human_approval(
        self,
        title: str,
        description: str = "",
        approval_type: str = "binary",
        requested_from: str | list[str] | None = None,
        workflow_id: str | None = None,
        **config: Any,
    ) -> ApprovalRequest:
        return self.approval_engine.request_approval(
            workflow_id or self.workflow_id,
            title,
            description,
            approval_type,
            requested_from,
            requested_by=self.actor,
            config=config or None,
        )

    def wait_for_decision(self, approval_id: str, wait_timeout: float | None = None) -> ApprovalRequest:
        """Poll (running workflows and deliveries meanwhile) until the request is decided
        or ``wait_timeout`` seconds pass; the request as it then is."""
        deadline = None if wait_timeout is None else time.monotonic() + wait_timeout
        approval = self.approval_engine.get(approval_id)
        while approval.status == "pending" and (deadline is None or time.monotonic() < deadline):
            time.sleep(self.poll_seconds)
            approval = self.decision_round(approval_id)
        return approval

    def decision_round(self, approval_id: str) -> ApprovalRequest:
        """One round (``run_round``), then the request as it is."""
        self._round()
        return self.approval_engine.get(approval_id)

    def create_checkpoint(
        self,
        checkpoint_name: str,
        step_name: str | None = None,
        description: str = "",
        workflow_id: str | None = None,
    ) -> WorkflowCheckpoint:
        return self.state_manager.create_checkpoint(
            self._id(workflow_id), checkpoint_name, step_name, description, self.actor
        )

    def rollback_workflow(
        self,
        checkpoint_name: str | None = None,
        reason: str = "",
        workflow_id: str | None = None,
    ) -> RollbackResult:
        return self.state_manager.rollback_workflow(
            self._id(workflow_id), checkpoint_name, reason, self.actor
        )

    def get_workflow_status(self, workflow_id: str | None = None) -> dict[str, Any]:
        return ops.workflow_status(self.db, self._id(workflow_id))


class SeedAgent:
    """The seed's ``orchestrator.agent``: a smolagents agent with the approval,
    checkpoint and rollback tools (``tool_classes``).

    ``run(task)`` runs the task as a one-step workflow (a ``task`` step with
    the orchestrator's model and agent type), so its requests for approval
    park durably like any other; it waits until the workflow ends and returns
    the agent's final answer, as smolagents' ``agent.run`` does. ``plan`` is
    the rehearsal model's script (the labelled stand-in used when no model is
    configured): the tool calls it makes, in order.
    """

    def __init__(self, orchestrator: SmolAgentOrchestrator) -> None:
        self.orchestrator = orchestrator
        self.plan: list[dict[str, Any]] | None = orchestrator.model_config.get("plan")
        self.last_workflow_id: str | None = None

    @property
    def tool_classes(self) -> dict[str, type]:
        """The tools the agent gets, by name (smolagents ``Tool`` classes)."""
        from core.agents.seed_tools import SEED_TOOLS

        return dict(SEED_TOOLS)

    def run(
        self,
        task: str,
        *,
        plan: list[dict[str, Any]] | None = None,
        wait_timeout: float | None = None,
        name: str = "Agent task",
    ) -> Any:
        from core.base.errors import Conflict

        step: dict[str, Any] = {"name": "agent_task", "type": "task", "task": task}
        if plan or self.plan:
            step["plan"] = plan or self.plan
        workflow = self.orchestrator._create(name, task[:200], {"name": name, "steps": [step]}, None, None)
        self.last_workflow_id = workflow.id
        report = self.orchestrator.execute_workflow(workflow.id, wait=True, wait_timeout=wait_timeout)
        if report["status"] == "completed":
            return (report["step_outputs"].get("agent_task") or {}).get("result")
        if report["status"] in STILL_GOING:
            raise TimeoutError(
                f"The agent's workflow {workflow.id} is still {report['status']} after {wait_timeout} s."
            )
        raise Conflict(
            f"The agent's workflow {workflow.id} ended {report['status']}"
            + (f": {report['error']}" if report.get("error") else ".")
        )

    async def arun(self, task: str, **kwargs: Any) -> Any:
        """``run`` in a worker thread, for async callers."""
        import asyncio

        return await asyncio.to_thread(self.run, task, **kwargs)
