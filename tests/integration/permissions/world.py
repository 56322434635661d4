"""The permission matrix's world: one account per role, fresh workflows in the
state each action needs, and what every cell must answer.

The expectations below are written out by hand, not read from
core.identity.permissions, so the matrix checks the rule instead of restating it.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable
from typing import Any

from core.approvals.engine import ApprovalEngine
from core.engine import workflows as ops
from core.identity.account_state import disable_user
from core.identity.permissions import Action
from core.identity.users import add_user
from core.runtime import build_runner
from core.store.db import Database
from core.store.tables import Alert, ChatSession, Notification, utcnow

ROLES = ("admin", "approver", "viewer", "service", "starter", "disabled", "unknown", "system")
EMAILS = {
    "admin": "admin@perm.test",
    "approver": "approver@perm.test",
    "viewer": "viewer@perm.test",
    "service": "service@perm.test",
    "starter": "starter@perm.test",
    "disabled": "disabled@perm.test",  # an approver's account an admin disabled
    "unknown": "nobody@perm.test",  # an email without an account
    "system": "cli:ops",  # the CLI without --as, runners, timeouts
}
# "starter" is a service account acting on a workflow it started itself.
ACCOUNT_ROLE = {
    "admin": "admin",
    "approver": "approver",
    "viewer": "viewer",
    "service": "service",
    "starter": "service",
    "disabled": "approver",
}
REQUESTER = "requester@perm.test"  # a service account that starts the other workflows
ROLE_DESCRIPTIONS = {
    "admin": "admin",
    "approver": "approver",
    "viewer": "viewer",
    "service": "service account",
    "starter": "service, own workflow",
    "disabled": "disabled approver",
    "unknown": "no account",
    "system": "system (cli:)",
}

Y, N, NA = "allowed", "refused", "-"
_ADMIN_ONLY = {"admin": Y, "approver": N, "viewer": N, "service": N, "starter": N, "unknown": N, "system": Y}
EXPECTED: dict[Action, dict[str, str]] = {
    Action.WORKFLOWS_START: {
        "admin": Y,
        "approver": Y,
        "viewer": N,
        "service": Y,
        "starter": Y,
        "unknown": N,
        "system": Y,
    },
    Action.WORKFLOWS_PAUSE: {
        "admin": Y,
        "approver": Y,
        "viewer": N,
        "service": N,
        "starter": Y,
        "unknown": N,
        "system": Y,
    },
    Action.WORKFLOWS_RESUME: {
        "admin": Y,
        "approver": Y,
        "viewer": N,
        "service": N,
        "starter": Y,
        "unknown": N,
        "system": Y,
    },
    Action.WORKFLOWS_CANCEL: {
        "admin": Y,
        "approver": N,
        "viewer": N,
        "service": N,
        "starter": Y,
        "unknown": N,
        "system": Y,
    },
    Action.WORKFLOWS_RETRY: {
        "admin": Y,
        "approver": Y,
        "viewer": N,
        "service": N,
        "starter": N,
        "unknown": N,
        "system": Y,
    },
    Action.WORKFLOWS_ROLLBACK: _ADMIN_ONLY,
    Action.WORKFLOWS_CHECKPOINT: {
        "admin": Y,
        "approver": Y,
        "viewer": N,
        "service": N,
        "starter": N,
        "unknown": N,
        "system": Y,
    },
    # Named on the request, a person without an account answers (email approvers).
    Action.APPROVALS_ANSWER: {
        "admin": Y,
        "approver": Y,
        "viewer": N,
        "service": N,
        "starter": N,
        "unknown": Y,
        "system": NA,
    },
    # An approver may hand on a request they are asked (the matrix's request asks them).
    Action.APPROVALS_REASSIGN: {
        "admin": Y,
        "approver": Y,
        "viewer": N,
        "service": N,
        "starter": N,
        "unknown": N,
        "system": Y,
    },
    Action.APPROVALS_OVERSEE: _ADMIN_ONLY,
    Action.CHANNELS_CONFIGURE: _ADMIN_ONLY,
    Action.DELIVERIES_RETRY: _ADMIN_ONLY,
    Action.ALERTS_ACKNOWLEDGE: {
        "admin": Y,
        "approver": Y,
        "viewer": N,
        "service": N,
        "starter": N,
        "unknown": N,
        "system": Y,
    },
    Action.USERS_MANAGE: _ADMIN_ONLY,
    Action.AGENTS_MANAGE: _ADMIN_ONLY,
    Action.TENANTS_MANAGE: _ADMIN_ONLY,
    Action.SESSIONS_SUPERVISE: _ADMIN_ONLY,
    Action.AUDIT_READ: {
        "admin": Y,
        "approver": Y,
        "viewer": Y,
        "service": N,
        "starter": N,
        "unknown": N,
        "system": Y,
    },
    Action.DATA_EXPORT: _ADMIN_ONLY,
    Action.DATA_IMPORT: _ADMIN_ONLY,
    Action.POLICIES_MANAGE: _ADMIN_ONLY,
}


# A disabled account may do nothing at all, whatever its role (core.identity.account_state).
for _cells in EXPECTED.values():
    _cells["disabled"] = NA if set(_cells.values()) == {NA} else N


def refusal(role: str, action: Action) -> str:
    """The start of the message a refused cell must give."""
    email = EMAILS[role]
    if role == "unknown":
        return f"{email} may not {action} (no account)"
    if role == "disabled":
        return f"{email} may not {action} (account disabled)"
    return f"{email} may not {action} (role {ACCOUNT_ROLE[role]})"


GATE = {
    "name": "Matrix gate",
    "steps": [
        {"name": "prepare", "type": "checkpoint"},
        {
            "name": "gate",
            "type": "approval",
            "approval_config": {
                "title": "Matrix",
                "channels": [],
                "requested_from": [
                    EMAILS[r]
                    for r in ("admin", "approver", "viewer", "service", "starter", "disabled", "unknown")
                ],
            },
        },
    ],
}
FAILING = {"name": "Matrix failing", "steps": [{"name": "x", "type": "tool", "tool": "no_such_tool"}]}


def add_accounts(db: Database) -> None:
    for role, account_role in ACCOUNT_ROLE.items():
        add_user(db, EMAILS[role], role=account_role, password="matrix-pass")
    add_user(db, REQUESTER, role="service")
    disable_user(db, EMAILS["disabled"], actor="system")


_counter = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_counter)}"


class World:
    """Fresh state for one cell: workflows, a request, an alert, a dead delivery..."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def run(self) -> None:
        build_runner(self.db, lease_seconds=10).run_until_idle(max_seconds=60)

    def starter_of(self, role: str) -> str:
        return EMAILS["starter"] if role == "starter" else REQUESTER

    def waiting(self, role: str) -> str:
        workflow_id = ops.create_workflow(self.db, GATE, created_by=self.starter_of(role)).id
        self.run()
        return workflow_id

    def paused(self, role: str) -> str:
        workflow_id = self.waiting(role)
        ops.pause_workflow(self.db, workflow_id, "system")
        return workflow_id

    def failed(self, role: str) -> str:
        workflow_id = ops.create_workflow(self.db, FAILING, created_by=self.starter_of(role)).id
        self.run()
        return workflow_id

    def approval(self) -> str:
        workflow_id = self.waiting("requester")
        [approval] = ApprovalEngine(self.db).list_pending_approvals(workflow_id=workflow_id)
        return approval.id

    def alert(self) -> int:
        with self.db.session() as session:
            row = Alert(
                rule="workflow_failed",
                subject=unique("matrix-"),
                severity="warning",
                message="a workflow failed",
                data={},
                raised_at=utcnow(),
            )
            session.add(row)
            session.flush()
            return row.id

    def dead_delivery(self) -> tuple[str, str]:
        """(notification id, its approval's id)."""
        approval_id = self.approval()
        with self.db.session() as session:
            approval = ApprovalEngine(self.db).get(approval_id)
            row = Notification(
                approval_id=approval_id,
                workflow_id=approval.workflow_id,
                channel="email",
                recipient=f"{unique('r')}@perm.test",
                status="dead",
                attempts=5,
                last_error="smtp down",
                payload={},
            )
            session.add(row)
            session.flush()
            return row.id, approval_id

    def chat_of(self, email: str) -> str:
        with self.db.session() as session:
            row = ChatSession(flow="support", user_email=email, title="matrix", status="active")
            session.add(row)
            session.flush()
            return row.id


def core_performer(action: Action) -> Callable[[World, str, str], Any] | None:
    """How core does ``action`` as ``email`` (playing ``role``), on fresh state; None: no use case."""
    from core.agents.execution_logs import LogFilters, query
    from core.approvals.inbox_views import InboxQuery, inbox_page
    from core.approvals.reassign import reassign
    from core.approvals.standing_rules import create_rule
    from core.channels.notifications import retry_notification
    from core.channels.registry import store_channel_settings
    from core.conversations.sessions import take_over
    from core.engine.checkpoints import rollback
    from core.engine.tools import default_registry
    from core.identity.api_tokens import create_token
    from core.ops.alerts import acknowledge_alert
    from core.ops.backup import export_database, import_database
    from core.tenants.registry import create_tenant

    performers: dict[Action, Callable[[World, str, str], Any]] = {
        Action.WORKFLOWS_START: lambda w, role, email: ops.create_workflow(w.db, GATE, created_by=email),
        Action.WORKFLOWS_PAUSE: lambda w, role, email: ops.pause_workflow(w.db, w.waiting(role), email),
        Action.WORKFLOWS_RESUME: lambda w, role, email: ops.resume_workflow(w.db, w.paused(role), email),
        Action.WORKFLOWS_CANCEL: lambda w, role, email: ops.cancel_workflow(w.db, w.waiting(role), email),
        Action.WORKFLOWS_RETRY: lambda w, role, email: ops.retry_workflow(w.db, w.failed(role), email),
        Action.WORKFLOWS_ROLLBACK: lambda w, role, email: rollback(
            w.db, default_registry, w.waiting(role), checkpoint_name="prepare", reason="matrix", actor=email
        ),
        Action.WORKFLOWS_CHECKPOINT: lambda w, role, email: ops.create_checkpoint(
            w.db, w.waiting(role), "matrix", email
        ),
        Action.APPROVALS_ANSWER: lambda w, role, email: ApprovalEngine(w.db).respond_to_approval(
            w.approval(), email, "approve"
        ),
        Action.APPROVALS_REASSIGN: lambda w, role, email: reassign(
            w.db, w.approval(), email, [EMAILS["admin"]], reason="matrix"
        ),
        Action.APPROVALS_OVERSEE: lambda w, role, email: inbox_page(w.db, email, InboxQuery(view="all")),
        Action.CHANNELS_CONFIGURE: lambda w, role, email: store_channel_settings(
            w.db, "webhook", enabled=True, settings={}, actor=email
        ),
        Action.DELIVERIES_RETRY: lambda w, role, email: retry_notification(w.db, w.dead_delivery()[0], email),
        Action.ALERTS_ACKNOWLEDGE: lambda w, role, email: acknowledge_alert(w.db, w.alert(), email),
        Action.USERS_MANAGE: lambda w, role, email: create_token(
            w.db, EMAILS["service"], "matrix", actor=email
        ),
        Action.AGENTS_MANAGE: lambda w, role, email: _create_profile(w.db, email),
        Action.TENANTS_MANAGE: lambda w, role, email: create_tenant(w.db, unique("matrix-"), actor=email),
        Action.SESSIONS_SUPERVISE: lambda w, role, email: take_over(w.db, w.chat_of(email), email),
        Action.AUDIT_READ: lambda w, role, email: query(w.db, LogFilters(), None, actor=email),
        Action.DATA_EXPORT: lambda w, role, email: export_database(w.db, io.StringIO(), actor=email),
        # Allowed, an import into this non-empty database is then refused for that reason.
        Action.DATA_IMPORT: lambda w, role, email: import_database(w.db, io.StringIO(""), actor=email),
        Action.POLICIES_MANAGE: lambda w, role, email: create_rule(
            w.db, email, tool="pay", condition="args.amount <= 1", days=1
        ),
    }
    return performers.get(action)


def _create_profile(db: Database, actor: str) -> Any:
    from core.agents.profiles import create_profile

    return create_profile(
        db,
        {"name": unique("matrix_"), "role": "r", "instructions": "i", "model_provider": "rehearsal"},
        actor,
    )


def table_rows(results: dict[tuple[Action, str], str], roles: tuple[str, ...]) -> list[tuple[str, ...]]:
    rows = []
    for action in Action:
        cells = [results.get((action, role), NA) for role in roles]
        if any(c != NA for c in cells):
            rows.append((str(action), *cells))
    return rows
