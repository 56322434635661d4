"""The seed's Python API, synchronous: ``SmolAgentOrchestrator`` and
``StateManager`` (``ApprovalEngine`` lives in core.approvals).

Unlike the seed, nothing here waits in-process for a person: a request for
approval parks the workflow in the database and returns; a runner picks the
workflow up again when the decision arrives, in any process.
"""

from __future__ import annotations

from typing import Any

from core import workflows as ops
from core.approvals import ApprovalEngine
from core.checkpoints import RollbackResult, rollback
from core.db import Database, get_database
from core.definitions import WorkflowDefinition
from core.models import ApprovalRequest, Workflow, WorkflowCheckpoint
from core.runner import Runner
from core.tools import ToolRegistry, default_registry


class StateManager:
    """Workflow state, events and checkpoints over one database."""

    def __init__(self, db: Database | None = None, registry: ToolRegistry | None = None) -> None:
        self.db = db or get_database()
        self.registry = registry or default_registry

    def create_workflow(
        self, name: str, definition: WorkflowDefinition | dict[str, Any],
        input_data: dict[str, Any] | None = None, created_by: str = "system",
        description: str | None = None, start: bool = False,
    ) -> Workflow:
        return ops.create_workflow(self.db, definition, name=name, description=description,
                                   input_data=input_data, created_by=created_by, start=start)

    def update_workflow_state(
        self, workflow_id: str, new_state: dict[str, Any], step_name: str | None = None,
        actor: str = "system",
    ) -> Workflow:
        """Merge ``new_state`` into the workflow's context, with an event."""
        from core import store

        with self.db.session() as session:
            workflow = store.get_workflow(session, workflow_id, for_update=True)
            before = dict(workflow.context)
            workflow.context = {**workflow.context, **new_state}
            store.append_event(session, "workflow.state_updated", actor, workflow_id=workflow_id,
                               step_name=step_name, before={"context": before},
                               after={"context": workflow.context})
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
        from core import store

        with self.db.session() as session:
            workflow = store.get_workflow(session, workflow_id, for_update=True)
            store.transition_workflow(session, workflow, new_status, actor, reason=reason or None)
            return workflow

    def create_checkpoint(
        self, workflow_id: str, checkpoint_name: str, step_name: str | None = None,
        description: str = "", actor: str = "system",
    ) -> WorkflowCheckpoint:
        return ops.create_checkpoint(self.db, workflow_id, checkpoint_name, actor,
                                     description=description, step_name=step_name)

    def rollback_workflow(
        self, workflow_id: str, checkpoint_name: str | None = None, reason: str = "",
        actor: str = "system",
    ) -> RollbackResult:
        return rollback(self.db, self.registry, workflow_id, checkpoint_name=checkpoint_name,
                        reason=reason, actor=actor)


class SmolAgentOrchestrator:
    """Create and run workflows, ask people, checkpoint and roll back."""

    def __init__(
        self, db: Database | None = None, *, registry: ToolRegistry | None = None,
        actor: str = "system",
    ) -> None:
        self.db = db or get_database()
        self.registry = registry or default_registry
        self.actor = actor
        self.state_manager = StateManager(self.db, self.registry)
        self.approval_engine = ApprovalEngine(self.db)
        self.workflow_id: str | None = None

    def _id(self, workflow_id: str | None) -> str:
        workflow_id = workflow_id or self.workflow_id
        if workflow_id is None:
            from core.errors import WorkflowNotFound

            raise WorkflowNotFound("No workflow given and none created by this orchestrator yet.")
        return workflow_id

    def create_workflow(
        self, name: str, description: str = "",
        workflow_definition: WorkflowDefinition | dict[str, Any] | None = None,
        input_data: dict[str, Any] | None = None, created_by: str | None = None,
    ) -> Workflow:
        workflow = ops.create_workflow(
            self.db, workflow_definition or {}, name=name, description=description,
            input_data=input_data, created_by=created_by or self.actor, start=False,
        )
        self.workflow_id = workflow.id
        return workflow

    def execute_workflow(self, workflow_id: str | None = None) -> dict[str, Any]:
        """Start the workflow and run it here until it waits for a person or ends."""
        workflow_id = self._id(workflow_id)
        if ops.get_workflow(self.db, workflow_id).status == "pending":
            ops.start_workflow(self.db, workflow_id, self.actor)
        Runner(self.db, registry=self.registry).run_until_idle()
        return self.get_workflow_status(workflow_id)

    def request_human_approval(
        self, title: str, description: str = "", approval_type: str = "binary",
        requested_from: str | list[str] | None = None, workflow_id: str | None = None,
        **config: Any,
    ) -> ApprovalRequest:
        return self.approval_engine.request_approval(
            workflow_id or self.workflow_id, title, description, approval_type, requested_from,
            requested_by=self.actor, config=config or None,
        )

    def create_checkpoint(
        self, checkpoint_name: str, step_name: str | None = None, description: str = "",
        workflow_id: str | None = None,
    ) -> WorkflowCheckpoint:
        return self.state_manager.create_checkpoint(self._id(workflow_id), checkpoint_name,
                                                    step_name, description, self.actor)

    def rollback_workflow(
        self, checkpoint_name: str | None = None, reason: str = "",
        workflow_id: str | None = None,
    ) -> RollbackResult:
        return self.state_manager.rollback_workflow(self._id(workflow_id), checkpoint_name,
                                                    reason, self.actor)

    def get_workflow_status(self, workflow_id: str | None = None) -> dict[str, Any]:
        return ops.workflow_status(self.db, self._id(workflow_id))
