"""``python -m core audit export``: a workflow's approvals as an auditor reads them.

For every request: who was asked (at opening, each level, each escalation),
what they saw (the proposed call, or the proposed action), what each one
decided, through which channel and with which verified identity
(core.identity.verified), what the decision released and what then ran. The
record starts with the verification of the workflow's hash chain
(core.records.trail_verify) and ends with every trail entry and its hash, so the
auditor can recompute the chain. JSON Lines here; PDF in core.ops.audit_pdf;
``core.ops.audit_files.export`` gives either.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.identity.permissions import Action, check
from core.identity.verified import describe
from core.records import rows as store
from core.records.trail_verify import ChainReport, verify_chain
from core.store.tables import ApprovalRequest, ApprovalResponse, StepRun, Workflow, WorkflowEvent
from core.store.tenancy import tenant_of

if TYPE_CHECKING:
    from core.store.db import Database


@dataclass(frozen=True)
class Vote:
    approver: str
    decision: str
    channel: str
    identity: str  # the verified identity, as one line
    identity_details: dict[str, Any] | None
    level: int
    comment: str
    data: dict[str, Any]
    at: str
    trail_seq: int | None
    trail_hash: str | None


@dataclass(frozen=True)
class RequestRecord:
    id: str
    title: str
    type: str
    step: str | None
    opened_at: str
    requested_by: str
    asked: list[dict[str, Any]]  # [{"when": ..., "round": ..., "approvers": [...]}]
    shown: dict[str, Any]  # the proposed call (or action) the approvers saw
    votes: list[Vote]
    outcome: str
    decided_by: str | None
    decided_at: str | None
    released_call: dict[str, Any] | None
    ran: dict[str, Any] | None  # the step run that carried the released call out


@dataclass(frozen=True)
class AuditRecord:
    workflow: dict[str, Any]
    trail: dict[str, Any]
    requests: list[RequestRecord]
    entries: list[dict[str, Any]] = field(default_factory=list)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _call(call: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if call is None else {k: call.get(k) for k in ("tool", "arguments", "digest")}


def _asked(events: list[WorkflowEvent]) -> list[dict[str, Any]]:
    rounds = {
        "approval.requested": ("opened", "approvers"),
        "approval.level_passed": ("next level", "next_approvers"),
        "approval.escalated": ("escalated", "escalated_to"),
    }
    asked = []
    for e in events:
        if e.event_type in rounds:
            name, key = rounds[e.event_type]
            asked.append(
                {"when": _iso(e.created_at), "round": name, "approvers": list((e.data or {}).get(key) or [])}
            )
    return asked


def _votes(votes: list[ApprovalResponse], events: list[WorkflowEvent]) -> list[Vote]:
    answered = {
        (e.actor, (e.data or {}).get("level")): (e.data or {}).get("identity")
        for e in events
        if e.event_type == "approval.responded"
    }
    return [
        Vote(
            v.approver,
            v.decision,
            v.channel,
            describe(answered.get((v.approver, v.level)), v.approver, v.channel),
            answered.get((v.approver, v.level)),
            v.level,
            v.comment,
            v.data or {},
            v.created_at.isoformat(),
            v.trail_seq,
            v.trail_hash,
        )
        for v in votes
    ]


def _request(session: Session, approval: ApprovalRequest, events: list[WorkflowEvent]) -> RequestRecord:
    mine = [e for e in events if e.approval_id == approval.id]
    votes = list(
        session.scalars(
            select(ApprovalResponse)
            .where(ApprovalResponse.approval_id == approval.id)
            .order_by(ApprovalResponse.id)
        )
    )
    shown: dict[str, Any] = {"description": approval.description}
    if approval.proposed_call is not None:
        shown["call"] = _call(approval.proposed_call)
    else:
        shown["action"] = approval.proposed_action or {}
    run = session.get(StepRun, approval.step_run_id) if approval.step_run_id else None
    ran = (
        None
        if run is None or approval.released_call is None
        else {
            "step": run.step_name,
            "step_run": run.id,
            "status": run.status,
            "finished_at": _iso(run.finished_at),
        }
    )
    return RequestRecord(
        approval.id,
        approval.title,
        approval.approval_type,
        approval.step_name,
        approval.created_at.isoformat(),
        approval.requested_by,
        _asked(mine),
        shown,
        _votes(votes, mine),
        approval.status,
        approval.decided_by,
        _iso(approval.decided_at),
        _call(approval.released_call),
        ran,
    )


def _entries(session: Session, workflow_id: str) -> list[dict[str, Any]]:
    events = session.scalars(select(WorkflowEvent).where(WorkflowEvent.trail_chain == workflow_id))
    votes = session.scalars(select(ApprovalResponse).where(ApprovalResponse.trail_chain == workflow_id))
    rows = [
        {
            "table": "workflow_events",
            "id": e.id,
            "seq": e.trail_seq,
            "type": e.event_type,
            "actor": e.actor,
            "at": e.created_at.isoformat(),
            "prev": e.trail_prev,
            "hash": e.trail_hash,
        }
        for e in events
    ]
    rows += [
        {
            "table": "approval_responses",
            "id": v.id,
            "seq": v.trail_seq,
            "type": f"vote.{v.decision}",
            "actor": v.approver,
            "at": v.created_at.isoformat(),
            "prev": v.trail_prev,
            "hash": v.trail_hash,
        }
        for v in votes
    ]
    return sorted(rows, key=lambda r: (r["seq"] is None, r["seq"] or 0))


def _trail(report: ChainReport) -> dict[str, Any]:
    return {
        "intact": report.intact,
        "entries": report.entries,
        "head": report.head,
        "broken": None if report.broken is None else str(report.broken),
    }


def audit_record(db: Database, actor: str, workflow_id: str) -> AuditRecord:
    """The auditor's record of one workflow (audit:read, within the actor's tenant)."""
    with db.read() as session:
        workflow: Workflow = store.get_workflow(session, workflow_id, tenant=tenant_of(session, actor))
        check(session, actor, Action.AUDIT_READ, workflow=workflow)
        events = list(
            session.scalars(
                select(WorkflowEvent)
                .where(WorkflowEvent.workflow_id == workflow.id)
                .order_by(WorkflowEvent.id)
            )
        )
        approvals = session.scalars(
            select(ApprovalRequest)
            .where(ApprovalRequest.workflow_id == workflow.id)
            .order_by(ApprovalRequest.created_at)
        )
        return AuditRecord(
            workflow={
                "id": workflow.id,
                "name": workflow.name,
                "tenant": workflow.tenant,
                "created_by": workflow.created_by,
                "status": workflow.status,
                "created_at": _iso(workflow.created_at),
                "finished_at": _iso(workflow.finished_at),
            },
            trail=_trail(verify_chain(session, workflow.id)),
            requests=[_request(session, a, events) for a in approvals],
            entries=_entries(session, workflow.id),
        )


def jsonl_lines(record: AuditRecord) -> Iterator[str]:
    """One JSON object per line: the workflow, the trail's verification, each request,
    each trail entry (``record`` says which)."""
    yield json.dumps({"record": "workflow", **record.workflow}, sort_keys=True)
    yield json.dumps({"record": "trail", **record.trail}, sort_keys=True)
    for request in record.requests:
        yield json.dumps({"record": "request", **asdict(request)}, sort_keys=True, default=str)
    for entry in record.entries:
        yield json.dumps({"record": "entry", **entry}, sort_keys=True)


__all__ = ["Vote", "RequestRecord", "AuditRecord", "audit_record", "jsonl_lines"]
