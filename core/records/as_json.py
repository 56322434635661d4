"""Rows as plain dictionaries for JSON output (the CLI's ``--json``, exports):
datetimes as ISO 8601 strings, JSON columns as they are. A mapped object and a
Core row of the same table (``core.records.listing``) give the same dictionary."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Row

    from core.records.listing import ListedWorkflow
    from core.store.tables import ApprovalRequest, Workflow, WorkflowCheckpoint, WorkflowEvent

__all__ = ["approval_dict", "checkpoint_dict", "event_dict", "workflow_dict"]


def _iso(value: Any) -> Any:
    return value.isoformat() if value is not None else None


def workflow_dict(w: Workflow | ListedWorkflow) -> dict[str, Any]:
    return {
        "id": w.id,
        "name": w.name,
        "description": w.description,
        "status": w.status,
        "current_step": w.current_step,
        "error": w.error,
        "created_by": w.created_by,
        "created_at": _iso(w.created_at),
        "updated_at": _iso(w.updated_at),
        "started_at": _iso(w.started_at),
        "finished_at": _iso(w.finished_at),
        "input_data": w.input_data,
        "context": w.context,
        "step_outputs": w.step_outputs,
    }


def event_dict(e: WorkflowEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "type": e.event_type,
        "actor": e.actor,
        "step": e.step_name,
        "approval_id": e.approval_id,
        "before": e.before,
        "after": e.after,
        "data": e.data,
        "created_at": _iso(e.created_at),
    }


def checkpoint_dict(c: WorkflowCheckpoint) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "description": c.description,
        "step_index": c.step_index,
        "step_name": c.step_name,
        "created_by": c.created_by,
        "created_at": _iso(c.created_at),
        "superseded": c.superseded_by_event_id is not None,
    }


def approval_dict(a: ApprovalRequest | Row[Any]) -> dict[str, Any]:
    return {
        "id": a.id,
        "workflow_id": a.workflow_id,
        "step": a.step_name,
        "title": a.title,
        "description": a.description,
        "type": a.approval_type,
        "status": a.status,
        "approvers": a.approvers,
        "threshold": a.threshold,
        "level": a.level,
        "requested_by": a.requested_by,
        "context_data": a.context_data,
        "proposed_action": a.proposed_action,
        "proposed_call": a.proposed_call,
        "released_call": a.released_call,
        "response_schema": a.response_schema,
        "ui_schema": a.ui_schema,
        "created_at": _iso(a.created_at),
        "expires_at": _iso(a.expires_at),
        "decided_at": _iso(a.decided_at),
        "decided_by": a.decided_by,
        "decision_data": a.decision_data,
    }
