"""``python -m core audit export``: a workflow's approvals as an auditor reads them.

For every request: who was asked (at opening, each level, each escalation),
what they saw (the proposed call, or the proposed action), what each one
decided, through which channel and with which verified identity
(core.identity.verified), what the decision released and what then ran. The
record starts with the verification of the workflow's hash chain
(core.records.trail_verify) and ends with every trail entry and its hash, so the
auditor can recompute the chain. JSON Lines here; PDF in core.ops.audit_pdf;
``core.ops.audit_files.export`` gives either.

What the export states comes from the sealed trail, not from the rows beside it
that anyone who can write the database could change unnoticed: who opened a
request and what call it showed (``approval.requested``), its outcome, who
decided it and when, and the call it released (``approval.decided``), the votes
(sealed themselves) and each run's outcome (``step.completed``, ...). Where a row
says otherwise, ``audit verify`` names it (core.records.trail_verify.cross_check),
the trail record says ``intact: false`` and the request carries the differences in
``mismatches``; a stored released call whose digest does not match its arguments
is noted there too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.base.errors import CallNotReleased
from core.definitions.calls import verify_call
from core.identity.permissions import Action, check
from core.identity.verified import describe
from core.records import rows as store
from core.records.trail_verify import (
    ChainReport,
    Mismatch,
    call_of,
    sealed_request,
    sealed_run,
    title_agrees,
    verify_chain,
)
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
    # Where the rows beside the trail say otherwise than its sealed events (which the
    # fields above state), one line each; empty when they agree.
    mismatches: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AuditRecord:
    workflow: dict[str, Any]
    trail: dict[str, Any]
    requests: list[RequestRecord]
    entries: list[dict[str, Any]] = field(default_factory=list)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


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


def _ran(events: list[WorkflowEvent], run_id: int | None, stored: StepRun | None) -> dict[str, Any] | None:
    """The run that carried a released call out, with its outcome as the trail sealed it
    (the row's, marked so, while no event has recorded one)."""
    if run_id is None:
        return None
    sealed = sealed_run(events, run_id)
    if sealed.event is not None:
        return {
            "step": sealed.step if sealed.step is not None else sealed.event.step_name,
            "step_run": run_id,
            "status": sealed.status,
            "finished_at": _iso(sealed.event.created_at),
        }
    if stored is None:
        return {"step": sealed.step, "step_run": run_id, "status": None, "finished_at": None}
    return {
        "step": stored.step_name,
        "step_run": run_id,
        "status": stored.status,
        "finished_at": _iso(stored.finished_at),
        "sealed": False,  # no event has recorded its outcome yet: the row's word
    }


def _digest_note(approval: ApprovalRequest) -> list[str]:
    if approval.released_call is None:
        return []
    try:
        verify_call(approval.released_call)
    except CallNotReleased:
        return [
            f"approval_requests row {approval.id} field released_call: its digest does not match "
            "its tool and arguments (the stored call was changed after the decision)"
        ]
    return []


def _request(
    session: Session,
    approval: ApprovalRequest,
    events: list[WorkflowEvent],
    sealed_events: list[WorkflowEvent],
    mismatches: list[Mismatch],
) -> RequestRecord:
    mine = [e for e in events if e.approval_id == approval.id]
    votes = list(
        session.scalars(
            select(ApprovalResponse)
            .where(ApprovalResponse.approval_id == approval.id)
            .order_by(ApprovalResponse.id)
        )
    )
    sealed = sealed_request(sealed_events, approval.id)
    asked = (sealed.requested.data or {}) if sealed.requested is not None else {}
    shown: dict[str, Any] = {"description": approval.description}
    proposed = asked["call"] if "call" in asked else approval.proposed_call
    if proposed is not None:
        shown["call"] = call_of(proposed)
    else:
        shown["action"] = approval.proposed_action or {}
    released = sealed.released_call if sealed.requested is not None else call_of(approval.released_call)
    run_id = sealed.run_id if sealed.run_id is not None else approval.step_run_id
    ran = None
    if released is not None and run_id is not None:
        ran = _ran(sealed_events, run_id, session.get(StepRun, run_id))
    notes = [
        str(m)
        for m in mismatches
        if (m.table == "approval_requests" and m.row_id == approval.id)
        or (m.table == "step_runs" and run_id is not None and m.row_id == run_id)
    ]
    decided_at = sealed.decided_at if sealed.requested is not None else approval.decided_at
    return RequestRecord(
        approval.id,
        approval.title
        if title_agrees(approval.title, asked.get("title", approval.title))
        else asked["title"],
        str(asked.get("type", approval.approval_type)),
        sealed.requested.step_name if sealed.requested is not None else approval.step_name,
        _iso(sealed.requested.created_at if sealed.requested is not None else approval.created_at) or "",
        sealed.requested.actor if sealed.requested is not None else approval.requested_by,
        _asked(mine),
        shown,
        _votes(votes, mine),
        (sealed.outcome if sealed.requested is not None else None) or approval.status,
        sealed.decided_by if sealed.requested is not None else approval.decided_by,
        _iso(decided_at),
        released,
        ran,
        notes + _digest_note(approval),
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


def _trail(report: ChainReport, notes: list[str]) -> dict[str, Any]:
    return {
        "intact": report.intact and not notes,
        "entries": report.entries,
        "head": report.head,
        "broken": None if report.broken is None else str(report.broken),
        # Rows beside the chain that contradict its sealed events, and stored calls
        # whose digest does not match them: each one line (core.records.trail_verify).
        "mismatches": [str(m) for m in report.mismatches] + notes,
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
        approvals = list(
            session.scalars(
                select(ApprovalRequest)
                .where(ApprovalRequest.workflow_id == workflow.id)
                .order_by(ApprovalRequest.created_at)
            )
        )
        report = verify_chain(session, workflow.id)
        sealed = [e for e in sorted(events, key=lambda e: e.trail_seq or 0) if e.trail_hash is not None]
        sealed = [e for e in sealed if e.trail_chain == workflow.id]
        requests = [_request(session, a, events, sealed, list(report.mismatches)) for a in approvals]
        digest_notes = [note for a in approvals for note in _digest_note(a)]
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
            trail=_trail(report, digest_notes),
            requests=requests,
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
