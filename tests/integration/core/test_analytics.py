"""Approval analytics checked against a generated history (SQLite and PostgreSQL):
time to decision p50/p90 by type, approver and channel, the expired and
escalated shares, rubber-stamping per approver; the CSV and the Prometheus
metrics carry the same figures; a tenant's user sees only their tenant's."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pandas as pd
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from core.base.errors import NotAuthorized
from core.identity.users import add_user
from core.ops.analytics import RUBBER_STAMP_SECONDS, analytics_csv, approval_analytics, quantile
from core.ops.metrics import make_registry
from core.store.db import Database
from core.store.tables import utcnow
from core.tenants.registry import create_tenant
from tests.helpers.approval_history import PlannedRequest, generate

VIEWER = "viewer@example.com"


def _expected(plan: list[PlannedRequest]) -> dict[tuple[str, str], tuple[int, float, float]]:
    """(by, key) -> (count, p50, p90), computed by pandas from the plan."""
    rows = [
        ("type", r.type, r.decided_after) for r in plan if r.status in ("approved", "rejected", "modified")
    ]
    for r in plan:
        for v in r.votes:
            rows += [("approver", v.approver, v.seconds), ("channel", v.channel, v.seconds)]
    frame = pd.DataFrame(rows, columns=["by", "key", "seconds"])
    grouped = frame.groupby(["by", "key"])["seconds"]
    return {
        key: (int(n), float(p50), float(p90))
        for key, n, p50, p90 in zip(
            grouped.size().index, grouped.size(), grouped.quantile(0.5), grouped.quantile(0.9), strict=True
        )
    }


def test_the_figures_match_the_generated_history(db: Database) -> None:
    now = utcnow()
    plan = generate(db, now=now, count=60)
    old = generate(db, now=now - timedelta(days=40), count=5, seed=99)  # outside the window
    assert old
    add_user(db, VIEWER, role="viewer")
    figures = approval_analytics(db, VIEWER, now=now)

    got = {(t.by, t.key): (t.count, t.p50, t.p90) for t in figures.decision_times}
    expected = _expected(plan)
    assert set(got) == set(expected)
    for key, (count, p50, p90) in expected.items():
        assert got[key][0] == count, key
        assert got[key][1] == pytest.approx(p50, abs=1e-3), key
        assert got[key][2] == pytest.approx(p90, abs=1e-3), key

    assert figures.requests == len(plan)
    assert figures.expired == sum(r.status == "expired" for r in plan)
    assert figures.escalated == sum(r.escalated for r in plan)
    assert figures.expired_share == pytest.approx(figures.expired / len(plan))
    stamps = {s.approver: (s.approvals, s.fast) for s in figures.rubber_stamps}
    want: dict[str, list[int]] = {}
    for r in plan:
        for v in r.votes:
            if v.decision in ("approve", "modify"):
                counts = want.setdefault(v.approver, [0, 0])
                counts[0] += 1
                counts[1] += v.seconds < RUBBER_STAMP_SECONDS
    assert stamps == {a: (n, fast) for a, (n, fast) in want.items()}
    assert any(fast for _, fast in stamps.values())  # the history has rubber stamps to find

    # The CSV download holds the same numbers.
    table = list(csv.DictReader(io.StringIO(analytics_csv(figures))))
    [binary] = [
        row
        for row in table
        if row["figure"] == "time_to_decision" and row["by"] == "type" and row["key"] == "binary"
    ]
    assert float(binary["p90_seconds"]) == pytest.approx(expected[("type", "binary")][2], abs=1e-3)
    [expired] = [row for row in table if row["figure"] == "requests" and row["by"] == "expired"]
    assert int(expired["count"]) == figures.expired

    # And so does /metrics.
    families = {
        f.name: f for f in text_string_to_metric_families(generate_latest(make_registry(db)).decode())
    }
    samples = {
        tuple(sorted(s.labels.items())): s.value
        for s in families["countersign_approval_time_to_decision_seconds"].samples
    }
    assert samples[(("by", "type"), ("key", "binary"), ("quantile", "0.9"))] == pytest.approx(
        expected[("type", "binary")][2], abs=1e-3
    )
    shares = {s.labels["outcome"]: s.value for s in families["countersign_approval_requests_share"].samples}
    assert shares["expired"] == pytest.approx(figures.expired_share)
    fast = {s.labels["approver"]: s.value for s in families["countersign_approval_rubber_stamps"].samples}
    assert fast == {a: float(f) for a, (_, f) in stamps.items()}


def test_a_tenant_user_sees_only_their_tenant_and_services_see_nothing(db: Database) -> None:
    now = utcnow()
    create_tenant(db, "acme", name="Acme")
    generate(db, now=now, count=10, seed=1)
    mine = generate(db, now=now, count=7, seed=2, tenant="acme")
    add_user(db, "ann@acme.example", role="viewer", tenant="acme")
    figures = approval_analytics(db, "ann@acme.example", now=now)
    assert figures.requests == len(mine)
    add_user(db, "bot@example.com", role="service")
    with pytest.raises(NotAuthorized, match="audit:read"):
        approval_analytics(db, "bot@example.com", now=now)


def test_quantile_interpolates_between_ranks() -> None:
    assert quantile([10.0], 0.9) == 10.0
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert quantile([4.0, 1.0, 3.0, 2.0], 0.9) == pytest.approx(3.7)
    with pytest.raises(ValueError):
        quantile([], 0.5)


def test_standing_rules_share_of_released_calls(db: Database) -> None:
    """Of the guarded calls released, the share a standing rule released (decided by
    system:rule:<id>); rejected requests and requests guarding no call do not count."""
    from core.approvals.standing_rules import rule_actor
    from core.store.tables import ApprovalRequest

    now = utcnow()
    call = {"tool": "pay", "arguments": {"amount": 5}, "digest": "0" * 64}
    rows = [  # (status, decided_by, guards a call)
        ("approved", rule_actor(1), True),
        ("approved", rule_actor(2), True),
        ("modified", "boss@example.com", True),
        ("approved", "boss@example.com", True),
        ("rejected", "boss@example.com", True),
        ("approved", "boss@example.com", False),
    ]
    with db.session() as session:
        for index, (status, decided_by, guards) in enumerate(rows):
            session.add(
                ApprovalRequest(
                    title=f"r{index}",
                    approval_type="binary",
                    status=status,
                    approvers=["boss@example.com"],
                    created_at=now - timedelta(hours=1),
                    updated_at=now,
                    decided_at=now,
                    decided_by=decided_by,
                    proposed_call=call if guards else None,
                )
            )
    add_user(db, VIEWER, role="viewer")
    figures = approval_analytics(db, VIEWER, now=now)
    assert (figures.released, figures.released_by_rules) == (4, 2)
    assert figures.rules_share == pytest.approx(0.5)
    assert "released_calls,standing_rule,,2,,,0.500" in analytics_csv(figures).splitlines()
    scraped = generate_latest(make_registry(db)).decode()
    assert "countersign_approval_released_by_rule_share 0.5" in scraped
