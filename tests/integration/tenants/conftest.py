"""Two tenants, each with a workflow waiting on an approval asked of a group
that both tenants name the same ("finance"), plus a platform admin.

The shared group name is the hard case: assignee rows hold group names, so
only the tenancy rule (core.store.tenancy) keeps tenant A's finance member away
from tenant B's request.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from cryptography.fernet import Fernet

from core.engine import workflows as ops
from core.identity.users import add_user
from core.runtime import build_runner
from core.store.db import Database
from core.tenants.registry import create_tenant

PASSWORD = "tenant-test-password"
GROUP = "finance"


@dataclass(frozen=True)
class Side:
    tenant: str
    approver: str
    requester: str
    workflow_id: str
    approval_id: str


@dataclass(frozen=True)
class TwoTenants:
    a: Side
    b: Side
    platform_admin: str


def definition(tenant: str) -> dict[str, object]:
    return {
        "name": f"Payout for {tenant}",
        "steps": [
            {
                "name": "approve_payout",
                "type": "approval",
                "approval_config": {
                    "title": f"Pay the {tenant} invoice",
                    "requested_from": [GROUP],
                    "channels": [],
                    "context_data": {"amount": 120},
                },
            },
            {"name": "done", "type": "checkpoint"},
        ],
    }


def make_side(db: Database, tenant: str) -> Side:
    create_tenant(db, tenant, name=tenant.upper())
    approver, requester = f"approver@{tenant}.test", f"requester@{tenant}.test"
    add_user(db, approver, role="approver", password=PASSWORD, groups=[GROUP], tenant=tenant)
    add_user(db, requester, role="approver", password=PASSWORD, tenant=tenant)
    workflow = ops.create_workflow(db, definition(tenant), created_by=requester)
    build_runner(db, runner_id=f"setup-{tenant}").run_until_idle(max_seconds=60)
    [approval] = [a for a in ops.approvals_of(db, workflow.id) if a.status == "pending"]
    return Side(tenant, approver, requester, workflow.id, approval.id)


def build(db: Database) -> TwoTenants:
    admin = "root@platform.test"
    add_user(db, admin, role="admin", password=PASSWORD, groups=[GROUP])
    return TwoTenants(make_side(db, "alpha"), make_side(db, "beta"), admin)


@pytest.fixture
def secrets_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("COUNTERSIGN_SECRETS_KEY", key)
    yield key


@pytest.fixture
def two_tenants(db: Database) -> TwoTenants:
    return build(db)
