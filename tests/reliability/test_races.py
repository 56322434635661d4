"""Races at scale, on SQLite and PostgreSQL: 1,000 pairs of answers to the same
request released together, and rollbacks released together with answers.

Pairs, by kind: two approvers of a one-vote request, one approving and one
rejecting (exactly one wins, the other is refused with ``ApprovalClosed``);
two approvers of a two-vote request (both votes count, one decision); one
approver clicking twice (one vote, the other refused with ``AlreadyVoted``).
Every call either returns the request or raises a named refusal; every
accepted vote is a row and an ``approval.responded`` event; every request
has exactly one outcome and one ``approval.decided`` event.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select

from core.approvals.engine import ApprovalEngine, open_approval
from core.base.errors import AlreadyVoted, ApprovalClosed
from core.definitions.workflow import parse_approval_config
from core.engine import workflows as ops
from core.engine.checkpoints import RollbackResult, rollback
from core.engine.tools import ToolRegistry
from core.store.db import Database
from core.store.tables import ApprovalRequest, ApprovalResponse, WorkflowEvent
from tests.helpers.engine import accounts, open_approval_of, run, start
from tests.reliability.report import render, show

pytestmark = pytest.mark.timeout(600)

PAIRS = 1000
ROLLBACK_RACES = 100
WORKERS = 8  # threads answering at once: four pairs in flight, within the connection pool
A, B = "a@example.com", "b@example.com"
# Per pair index modulo 5: which race it is.
KINDS = {0: "one_wins", 1: "one_wins", 2: "both_count", 3: "both_count", 4: "double_click"}


def race_all(pairs: list[tuple[Callable[[], Any], Callable[[], Any]]]) -> list[tuple[Any, Any]]:
    """Run each pair's two calls released together by a barrier, many pairs at a time.

    Each result is the call's return value or the exception it raised. The
    two calls of a pair are queued one after the other, so a pool of two or
    more threads always has a thread free for the partner of a waiting call.
    """
    barriers = [threading.Barrier(2, timeout=60) for _ in pairs]

    def call(index: int, action: Callable[[], Any]) -> Any:
        barriers[index].wait()
        try:
            return action()
        except Exception as exc:  # noqa: BLE001 - collected for the audit
            return exc

    with ThreadPoolExecutor(WORKERS, thread_name_prefix="race") as pool:
        futures = [
            (pool.submit(call, i, first), pool.submit(call, i, second))
            for i, (first, second) in enumerate(pairs)
        ]
        return [(f.result(120), s.result(120)) for f, s in futures]


def answer(engine: ApprovalEngine, approval_id: str, who: str, decision: str) -> Callable[[], Any]:
    return lambda: engine.respond_to_approval(approval_id, who, decision, channel=f"race:{who}")


def events_per(db: Database, column: Any, event_type: str) -> Counter[str]:
    return counts_by_approval(db, column, WorkflowEvent.event_type == event_type)


def counts_by_approval(db: Database, column: Any, *conditions: Any) -> Counter[str]:
    """How many rows per value of ``column`` (an approval or workflow id)."""
    with db.read() as session:
        rows = session.execute(select(column, func.count()).where(*conditions).group_by(column)).all()
    return Counter({str(key): int(n) for key, n in rows})


def test_a_thousand_pairs_of_answers_at_once(request: pytest.FixtureRequest, db: Database) -> None:
    engine = ApprovalEngine(db)
    kinds = [KINDS[i % 5] for i in range(PAIRS)]
    # The requests are opened in bulk (one transaction); only the answers race.
    configs = {
        threshold: parse_approval_config(
            {"requested_from": [A, B], "approval_threshold": threshold, "channels": []}
        )
        for threshold in (1, 2)
    }
    with db.session() as session:
        opened = [
            open_approval(
                session,
                config=configs[1 if kind == "one_wins" else 2],
                title=f"race {i}",
                requested_by="agent@example.com",
            )
            for i, kind in enumerate(kinds)
        ]
        session.flush()
        ids = [approval.id for approval in opened]
    plans = {
        "one_wins": ((A, "approve"), (B, "reject")),
        "both_count": ((A, "approve"), (B, "approve")),
        "double_click": ((A, "approve"), (A, "approve")),
    }
    pairs = [
        (answer(engine, approval_id, *plans[kind][0]), answer(engine, approval_id, *plans[kind][1]))
        for approval_id, kind in zip(ids, kinds, strict=True)
    ]
    results = race_all(pairs)

    with db.read() as session:
        final = dict(
            session.execute(
                select(ApprovalRequest.id, ApprovalRequest.status).where(ApprovalRequest.id.in_(ids))
            ).all()
        )
    votes = counts_by_approval(db, ApprovalResponse.approval_id)
    responded = events_per(db, WorkflowEvent.approval_id, "approval.responded")
    decided = events_per(db, WorkflowEvent.approval_id, "approval.decided")

    tally: dict[str, Counter[str]] = {kind: Counter() for kind in plans}
    problems: list[str] = []
    expected_refusal = {"one_wins": ApprovalClosed, "both_count": None, "double_click": AlreadyVoted}
    expected_votes = {"one_wins": 1, "both_count": 2, "double_click": 1}
    for approval_id, kind, pair in zip(ids, kinds, results, strict=True):
        accepted = [r for r in pair if not isinstance(r, Exception)]
        refused = [r for r in pair if isinstance(r, Exception)]
        wanted = expected_refusal[kind]
        named = all(wanted is not None and isinstance(r, wanted) and str(r) for r in refused)
        outcome = final[approval_id]
        one_outcome = (outcome != "pending" if kind != "double_click" else outcome == "pending") and (
            decided[approval_id] == (0 if kind == "double_click" else 1)
        )
        lost = len(accepted) - votes[approval_id]
        tally[kind].update(
            pairs=1,
            one_outcome=int(one_outcome),
            votes=votes[approval_id],
            refused=len(refused),
            named=len(refused) if named else 0,
            lost=max(lost, 0),
        )
        if not (
            one_outcome
            and named
            and lost == 0
            and votes[approval_id] == expected_votes[kind]
            and responded[approval_id] == votes[approval_id]
        ):
            problems.append(
                f"{kind} {approval_id}: {pair!r} -> {outcome}, votes {votes[approval_id]}, "
                f"responded {responded[approval_id]}, decided {decided[approval_id]}"
            )
    rows = [
        (
            f"{db.dialect}: {kind}",
            t["pairs"],
            t["one_outcome"],
            t["votes"],
            t["refused"],
            t["named"],
            t["lost"],
        )
        for kind, t in tally.items()
    ]
    show(
        request,
        render(
            f"Races: {PAIRS} pairs of answers released together ({db.dialect})",
            (
                "race",
                "pairs",
                "exactly one outcome",
                "votes recorded",
                "refused",
                "refused with a named error",
                "votes lost",
            ),
            rows,
        ),
    )
    assert problems == [], problems[:5]
    assert sum(t["pairs"] for t in tally.values()) == PAIRS
    # Each kind really raced: the refusals happened (a loser exists in every one-vote pair).
    assert tally["one_wins"]["refused"] == tally["one_wins"]["pairs"]
    assert tally["double_click"]["refused"] == tally["double_click"]["pairs"]


def test_rollbacks_racing_answers_have_one_consistent_outcome(
    request: pytest.FixtureRequest, db: Database
) -> None:
    registry = ToolRegistry()
    undone: list[str] = []

    @registry.register("prepare")
    def prepare(idempotency_key: str) -> dict[str, Any]:
        return {"key": idempotency_key}

    @registry.register("undo")
    def undo(output: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        undone.append(idempotency_key)
        return {}

    steps = [
        {
            "name": "prepare",
            "type": "tool",
            "tool": "prepare",
            "compensate": "undo",
            "create_checkpoint": True,
        },
        {
            "name": "gate",
            "type": "approval",
            "approval_config": {"requested_from": "boss@example.com", "channels": []},
        },
        {"name": "act", "type": "tool", "tool": "prepare"},
    ]
    accounts(db, "admin", "ops@example.com")  # rolling back is an admin's
    workflow_ids = [start(db, steps, name=f"rollback race {i}") for i in range(ROLLBACK_RACES)]
    run(db, registry)
    gates = {w: open_approval_of(db, w).id for w in workflow_ids}
    engine = ApprovalEngine(db)

    def roll(workflow_id: str) -> Callable[[], Any]:
        return lambda: rollback(
            db, registry, workflow_id, checkpoint_name="after:prepare", reason="race", actor="ops@example.com"
        )

    results = race_all(
        [(answer(engine, gates[w], "boss@example.com", "approve"), roll(w)) for w in workflow_ids]
    )

    cancelled = events_per(db, WorkflowEvent.approval_id, "approval.cancelled")
    decided = events_per(db, WorkflowEvent.approval_id, "approval.decided")
    rolled_back = events_per(db, WorkflowEvent.workflow_id, "workflow.rolled_back")
    votes = counts_by_approval(db, ApprovalResponse.approval_id)
    wins: Counter[str] = Counter()
    problems = []
    for workflow_id, (answered, rolled) in zip(workflow_ids, results, strict=True):
        gate = gates[workflow_id]
        status = engine.get(gate).status
        workflow = ops.get_workflow(db, workflow_id)
        consistent = (
            isinstance(rolled, RollbackResult)
            and rolled_back[workflow_id] == 1
            and (workflow.status == "paused" and workflow.current_step == 1)
        )
        if isinstance(answered, ApprovalClosed):
            wins["rollback first"] += 1
            consistent = (
                consistent
                and status == "cancelled"
                and votes[gate] == 0
                and (cancelled[gate] == 1 and decided[gate] == 0 and rolled.cancelled_approvals == [gate])
            )
        elif isinstance(answered, ApprovalRequest):
            wins["answer first"] += 1
            consistent = (
                consistent
                and status == "approved"
                and votes[gate] == 1
                and (decided[gate] == 1 and cancelled[gate] == 0 and rolled.cancelled_approvals == [])
            )
        else:
            consistent = False
        if not consistent:
            problems.append(
                f"{workflow_id}: answer {answered!r}, rollback {rolled!r}, request {status}, "
                f"workflow {workflow.status}"
            )
    show(
        request,
        render(
            f"Races: {ROLLBACK_RACES} rollbacks released together with answers ({db.dialect})",
            ("race", "races", "answer won", "rollback won", "inconsistent"),
            [
                (
                    f"{db.dialect}: rollback vs approve",
                    len(workflow_ids),
                    wins["answer first"],
                    wins["rollback first"],
                    len(problems),
                )
            ],
        ),
    )
    assert problems == [], problems[:5]
    # The workflows are paused at the gate with nothing to compensate past the checkpoint.
    assert undone == []
