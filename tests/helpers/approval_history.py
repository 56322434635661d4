"""A generated approval history with known timings, for the analytics tests.

Rows are written through the ORM as the engine writes them (so the trail
seals them), with chosen timestamps: each request's type, outcome,
escalation, and each vote's approver, channel, decision and answer time are
drawn from a seeded random generator and returned, so a test computes the
expected figures from this plan, independently of core.ops.analytics.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from core.store.db import Database
from core.store.tables import ApprovalRequest, ApprovalResponse, WorkflowEvent, new_id

APPROVERS = ("alice@example.com", "bob@example.com", "carol@example.com")
CHANNELS = ("dashboard", "slack", "email", "api")
TYPES = ("binary", "form", "budget")


@dataclass
class PlannedVote:
    approver: str
    channel: str
    decision: str
    seconds: float  # after its round began


@dataclass
class PlannedRequest:
    id: str
    type: str
    status: str
    created_at: datetime
    escalated: bool
    decided_after: float | None  # seconds, for decided requests
    next_level_after: float | None  # a second round began this many seconds after opening
    votes: list[PlannedVote] = field(default_factory=list)
    tenant: str | None = None


def generate(
    db: Database, *, now: datetime, count: int = 40, seed: int = 7, tenant: str | None = None
) -> list[PlannedRequest]:
    rng = random.Random(seed)
    plan: list[PlannedRequest] = []
    for i in range(count):
        status = rng.choice(["approved", "approved", "rejected", "modified", "expired", "pending"])
        created = now - timedelta(days=rng.uniform(0.1, 25), seconds=i)
        second_round = rng.random() < 0.25 if status != "expired" else False
        request = PlannedRequest(
            new_id(),
            rng.choice(TYPES),
            status,
            created,
            escalated=rng.random() < 0.2,
            decided_after=None,
            next_level_after=rng.uniform(60, 600) if second_round else None,
            tenant=tenant,
        )
        if status in ("approved", "rejected", "modified"):
            voters = rng.sample(APPROVERS, rng.choice([1, 2]))
            for voter in voters:
                fast = rng.random() < 0.3
                seconds = rng.uniform(0.5, 4.9) if fast else rng.uniform(6, 7200)
                decision = "reject" if status == "rejected" else rng.choice(["approve", "modify"])
                request.votes.append(PlannedVote(voter, rng.choice(CHANNELS), decision, seconds))
            begun = request.next_level_after or 0.0
            request.decided_after = begun + max(v.seconds for v in request.votes)
        plan.append(request)
    write(db, plan)
    return plan


def write(db: Database, plan: list[PlannedRequest]) -> None:
    with db.session() as session:
        for r in plan:
            begun = r.created_at + timedelta(seconds=r.next_level_after or 0.0)
            session.add(
                ApprovalRequest(
                    id=r.id,
                    title=f"request {r.id[:8]}",
                    approval_type=r.type,
                    status=r.status,
                    approvers=list(APPROVERS),
                    created_at=r.created_at,
                    updated_at=r.created_at,
                    escalations=1 if r.escalated else 0,
                    tenant=r.tenant,
                    decided_at=(
                        r.created_at + timedelta(seconds=r.decided_after)
                        if r.decided_after is not None
                        else r.created_at + timedelta(hours=1)
                        if r.status == "expired"
                        else None
                    ),
                )
            )
            session.flush()
            if r.next_level_after is not None:
                session.add(
                    WorkflowEvent(
                        approval_id=r.id,
                        event_type="approval.level_passed",
                        actor="system",
                        data={},
                        created_at=begun,
                    )
                )
            for v in r.votes:
                session.add(
                    ApprovalResponse(
                        approval_id=r.id,
                        approver=v.approver,
                        channel=v.channel,
                        decision=v.decision,
                        level=1 if r.next_level_after is not None else 0,
                        comment="",
                        data={},
                        created_at=begun + timedelta(seconds=v.seconds),
                    )
                )


__all__ = ["APPROVERS", "CHANNELS", "TYPES", "PlannedVote", "PlannedRequest", "generate", "write"]
