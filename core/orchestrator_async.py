"""The SmolAgent orchestrator's own API, awaitable, as seed 002 shows it.

Switch by changing the import::

    # from src.agents.orchestrator import SmolAgentOrchestrator
    from core.orchestrator_async import SmolAgentOrchestrator

    orchestrator = SmolAgentOrchestrator(db_session=session, model_config={...},
                                         agent_type="code")
    workflow = await orchestrator.create_workflow(name=..., workflow_definition={...})
    result = await orchestrator.execute_workflow()

``db_session`` is an SQLAlchemy ``AsyncSession`` (or ``AsyncEngine``, or an
async URL: ``postgresql+asyncpg``, ``postgresql+psycopg``, ``sqlite+aiosqlite``).
Countersign does not use that session's connection: it opens its own
synchronous engine on the same database (``core.store.async_db``) and every
awaitable method runs the synchronous facade (``core.orchestrator``) in a
worker thread (``asyncio.to_thread``). One engine, one set of rules.

Where this API behaves differently from the seed's, docs/switching.md says
how and why.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from core import orchestrator as sync
from core.engine.checkpoints import RollbackResult
from core.engine.recovery import RecoveryOutcome, WorkflowRecoveryService
from core.store.async_db import database_for, ensure_schema

if TYPE_CHECKING:
    from core.approvals.engine import ApprovalEngine as SyncApprovalEngine
    from core.definitions.workflow import WorkflowDefinition
    from core.engine.tools import ToolRegistry
    from core.store.db import Database
    from core.store.tables import ApprovalRequest, ApprovalResponse, Workflow, WorkflowCheckpoint

T = TypeVar("T")
# The seed's tool classes, imported on first use (they import smolagents).
_TOOL_NAMES = (
    "ApprovalRequiredTool",
    "ApprovalTool",
    "ApprovalRequestTool",
    "CheckpointTool",
    "RollbackTool",
)


def __getattr__(name: str) -> Any:
    if name in _TOOL_NAMES:
        import core.agents.seed_tools

        return getattr(core.agents.seed_tools, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


async def _in_thread(db: Database, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    def work() -> T:
        ensure_schema(db)
        return function(*args, **kwargs)

    return await asyncio.to_thread(work)


class ApprovalEngine:
    """The seed's ApprovalEngine, awaitable (``core.approvals.engine.ApprovalEngine`` underneath)."""

    def __init__(self, engine: SyncApprovalEngine) -> None:
        self.sync = engine
        self.db = engine.db

    async def request_approval(
        self,
        workflow_id: str | None,
        title: str,
        description: str = "",
        approval_type: str = "binary",
        requested_from: str | list[str] | None = None,
        **kwargs: Any,
    ) -> ApprovalRequest:
        return await _in_thread(
            self.db,
            self.sync.request_approval,
            workflow_id,
            title,
            description,
            approval_type,
            requested_from,
            **kwargs,
        )

    async def respond_to_approval(
        self,
        approval_id: str,
        approver_id: str,
        decision: str,
        data: dict[str, Any] | None = None,
        comment: str = "",
        channel: str = "api",
    ) -> ApprovalRequest:
        return await _in_thread(
            self.db, self.sync.respond_to_approval, approval_id, approver_id, decision, data, comment, channel
        )

    async def expire_approval(self, approval_id: str, actor: str = "system") -> ApprovalRequest:
        return await _in_thread(self.db, self.sync.expire_approval, approval_id, actor)

    async def list_pending_approvals(
        self, requested_from: str | None = None, workflow_id: str | None = None, **kwargs: Any
    ) -> list[ApprovalRequest]:
        return await _in_thread(
            self.db, self.sync.list_pending_approvals, requested_from, workflow_id, **kwargs
        )

    async def get(self, approval_id: str) -> ApprovalRequest:
        return await _in_thread(self.db, self.sync.get, approval_id)

    async def responses(self, approval_id: str) -> list[ApprovalResponse]:
        return await _in_thread(self.db, self.sync.responses, approval_id)


class StateManager:
    """The seed's StateManager, awaitable (``core.orchestrator.StateManager`` underneath)."""

    def __init__(self, manager: sync.StateManager) -> None:
        self.sync = manager
        self.db = manager.db

    async def create_workflow(
        self,
        name: str,
        definition: WorkflowDefinition | dict[str, Any],
        input_data: dict[str, Any] | None = None,
        created_by: str = "system",
        description: str | None = None,
        start: bool = False,
    ) -> Workflow:
        return await _in_thread(
            self.db, self.sync.create_workflow, name, definition, input_data, created_by, description, start
        )

    async def update_workflow_state(
        self, workflow_id: str, new_state: dict[str, Any], step_name: str | None = None, actor: str = "system"
    ) -> Workflow:
        return await _in_thread(
            self.db, self.sync.update_workflow_state, workflow_id, new_state, step_name, actor
        )

    async def transition_workflow_status(
        self, workflow_id: str, new_status: str, actor: str = "system", reason: str = ""
    ) -> Workflow:
        return await _in_thread(
            self.db, self.sync.transition_workflow_status, workflow_id, new_status, actor, reason
        )

    async def create_checkpoint(
        self,
        workflow_id: str,
        checkpoint_name: str,
        step_name: str | None = None,
        description: str = "",
        actor: str = "system",
    ) -> WorkflowCheckpoint:
        return await _in_thread(
            self.db, self.sync.create_checkpoint, workflow_id, checkpoint_name, step_name, description, actor
        )

    async def rollback_workflow(
        self, workflow_id: str, checkpoint_name: str | None = None, reason: str = "", actor: str = "system"
    ) -> RollbackResult:
        return await _in_thread(
            self.db, self.sync.rollback_workflow, workflow_id, checkpoint_name, reason, actor
        )


class SmolAgentOrchestrator:
    """The seed's orchestrator: every workflow method awaitable, the
    ``configure_*_integration`` calls plain (the seed calls them without await).

    ``execute_workflow`` waits, without blocking the event loop, until the
    workflow ends (or is paused), running it and delivering its notifications
    in this process meanwhile; a person's decision, made anywhere, resumes it.
    ``wait=False`` returns as soon as it waits for a person instead. Either
    way the workflow is parked in the database while it waits, so nothing is
    lost if this process stops: any runner finishes it.
    """

    poll_seconds = sync.POLL_SECONDS

    def __init__(
        self,
        db_session: Any = None,
        model_config: dict[str, Any] | None = None,
        agent_type: str | None = None,
        *,
        registry: ToolRegistry | None = None,
        actor: str = "system",
        dispatch_notifications: bool = True,
    ) -> None:
        self.db = database_for(db_session, migrate=False)
        self.core = sync.SmolAgentOrchestrator(
            self.db,
            registry=registry,
            actor=actor,
            model_config=model_config,
            agent_type=agent_type,
            dispatch_notifications=dispatch_notifications,
        )
        self.model_config = self.core.model_config
        self.agent_type = agent_type
        self.actor = actor
        self.approval_engine = ApprovalEngine(self.core.approval_engine)
        self.state_manager = StateManager(self.core.state_manager)
        self.last_rollback: RollbackResult | None = None

    @property
    def workflow_id(self) -> str | None:
        """The workflow this orchestrator created last (the default of every method)."""
        return self.core.workflow_id

    @workflow_id.setter
    def workflow_id(self, value: str | None) -> None:
        self.core.workflow_id = value

    @property
    def agent(self) -> sync.SeedAgent:
        """``agent.run(task)`` (blocking, as smolagents') or ``await agent.arun(task)``."""
        return self.core.agent

    async def _call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await _in_thread(self.db, function, *args, **kwargs)

    # -- integrations: plain calls, as the seed makes them ------------------------------

    def configure_slack_integration(
        self, bot_token: str, signing_secret: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        ensure_schema(self.db)
        return self.core.configure_slack_integration(bot_token, signing_secret, **kwargs)

    def configure_email_integration(
        self, sendgrid_api_key: str | None = None, smtp_config: dict[str, Any] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        ensure_schema(self.db)
        return self.core.configure_email_integration(sendgrid_api_key, smtp_config, **kwargs)

    def configure_webhook_integration(
        self, urls: list[str] | str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        ensure_schema(self.db)
        return self.core.configure_webhook_integration(urls, **kwargs)

    # -- workflows ------------------------------------------------------------------------

    async def create_workflow(
        self,
        name: str,
        description: str = "",
        workflow_definition: WorkflowDefinition | dict[str, Any] | None = None,
        input_data: dict[str, Any] | None = None,
        created_by: str | None = None,
    ) -> Workflow:
        return await self._call(
            self.core.create_workflow, name, description, workflow_definition, input_data, created_by
        )

    async def execute_workflow(
        self,
        workflow_id: str | None = None,
        task: str | None = None,
        context: dict[str, Any] | None = None,
        *,
        wait: bool = True,
        wait_timeout: float | None = None,
    ) -> dict[str, Any]:
        """Run the workflow; with ``wait`` (the default) until it ends or is paused,
        or ``wait_timeout`` seconds pass. Returns ``get_workflow_status``'s report."""
        workflow_id = await self._call(self.core.prepare, workflow_id, task, context)
        report = await self._call(self.core.run_round, workflow_id)
        deadline = None if wait_timeout is None else time.monotonic() + wait_timeout
        while (
            wait
            and report["status"] in sync.STILL_GOING
            and (deadline is None or time.monotonic() < deadline)
        ):
            await asyncio.sleep(self.poll_seconds)
            report = await self._call(self.core.run_round, workflow_id)
        return report

    async def request_human_approval(
        self,
        title: str,
        description: str = "",
        approval_type: str = "binary",
        requested_from: str | list[str] | None = None,
        workflow_id: str | None = None,
        *,
        wait: bool = True,
        wait_timeout: float | None = None,
        **config: Any,
    ) -> ApprovalRequest:
        """Ask a person; with ``wait`` (the default) return once they decided (or the
        request expired, or ``wait_timeout`` seconds passed): the request as it then is."""
        request = await self._call(
            self.core.request_human_approval,
            title,
            description,
            approval_type,
            requested_from,
            workflow_id,
            **config,
        )
        deadline = None if wait_timeout is None else time.monotonic() + wait_timeout
        while wait and request.status == "pending" and (deadline is None or time.monotonic() < deadline):
            await asyncio.sleep(self.poll_seconds)
            request = await self._call(self.core.decision_round, request.id)
        return request

    async def create_checkpoint(
        self,
        checkpoint_name: str,
        step_name: str | None = None,
        description: str = "",
        workflow_id: str | None = None,
    ) -> WorkflowCheckpoint:
        return await self._call(
            self.core.create_checkpoint, checkpoint_name, step_name, description, workflow_id
        )

    async def rollback_workflow(
        self, checkpoint_name: str | None = None, reason: str = "", workflow_id: str | None = None
    ) -> Workflow:
        """Roll back to the checkpoint (the latest if none is named); returns the restored
        workflow, paused at the checkpoint (the rollback's details: ``last_rollback``)."""
        from core.engine import workflows as ops

        result = await self._call(self.core.rollback_workflow, checkpoint_name, reason, workflow_id)
        self.last_rollback = result
        return await self._call(ops.get_workflow, self.db, result.workflow_id)

    async def resume_workflow(self, workflow_id: str | None = None) -> Workflow:
        """Resume a paused workflow (after a rollback, say); ``execute_workflow`` runs it."""
        from core.engine import workflows as ops

        return await self._call(ops.resume_workflow, self.db, self.core._id(workflow_id), self.actor)

    async def get_workflow_status(self, workflow_id: str | None = None) -> dict[str, Any]:
        return await self._call(self.core.get_workflow_status, workflow_id)


__all__ = [
    "ApprovalEngine",
    "RecoveryOutcome",
    "SmolAgentOrchestrator",
    "StateManager",
    "WorkflowRecoveryService",
    *_TOOL_NAMES,
]
