"""Who may do what: every action named once, one rule for every interface.

Tenancy (``core.store.tenancy``) says which rows a person sees; this module says
what they may do with them. Each use-case function of an action calls
``check(session, actor, Action.X, workflow=...)`` itself, inside its own
transaction, so the dashboard, the REST API, the CLI and the channels cannot
disagree or forget it; interfaces call ``allowed`` (or ``actions_for``) only
to show or hide their controls.

The rule, for an ``actor``:

- **System actors** (``system``, ``system:<what>``, ``cli``, ``cli:<login>``,
  ``agent:<step>``): names core itself gives its code and operators with
  direct access to the database (runners, timeouts, the CLI run without
  ``--as``, an agent step's own rollback). They may do everything, as before
  permissions existed. A person is an address: a name with an ``@`` is never
  a system actor, an account is always a person whatever its name (one made
  before addresses were checked included), and an account's address may not
  start with a reserved prefix (``address_problem``: every path that makes an
  account or signs someone in refuses it).
- **Accounts** (``users``): their role's actions (``ROLE_ACTIONS``). Actions
  about the whole platform (``PLATFORM_ACTIONS``) also need a platform user
  (no tenant). The person who started a workflow may also pause, resume and
  cancel it (``STARTER_ACTIONS``) if their role may start workflows.
- **Disabled accounts** (core.identity.account_state): nothing at all, answering
  included (never treated as a person without an account).
- **Removed accounts** (an address with a ``user.removed`` event and no account
  now): nothing at all, like a disabled account; adding the account again
  ends that.
- **Anyone else** (an email without an account): a person who is not a
  platform user and has no role. They may only answer approval requests
  that name them (email approvers); the request's approver list decides.
- A request made with an **API token** is also limited to the token's scopes
  (``acting_with``); a token never has more than its user's role.

A refusal raises ``NotAuthorized`` naming the action, e.g. ``viewer@example.com
may not workflows:cancel (role viewer)``, and is written to the audit trail
as a ``permission.refused`` event in its own transaction once the refused
one has ended (so the refusal stays when the refused work is rolled back).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NoReturn

import structlog
from sqlalchemy import event, select
from sqlalchemy.orm import Session, SessionTransaction

from core.base.errors import Invalid, NotAuthorized
from core.identity.addresses import SYSTEM_PREFIXES, InvalidAddress, address_problem, check_address
from core.store.tables import User, Workflow, WorkflowEvent
from core.store.tenancy import can_see

if TYPE_CHECKING:
    from core.store.db import Database

log = structlog.get_logger(__name__)


class Action(StrEnum):
    """Everything a person or a system can be allowed to do."""

    WORKFLOWS_START = "workflows:start"
    WORKFLOWS_PAUSE = "workflows:pause"
    WORKFLOWS_RESUME = "workflows:resume"
    WORKFLOWS_CANCEL = "workflows:cancel"
    WORKFLOWS_RETRY = "workflows:retry"
    WORKFLOWS_ROLLBACK = "workflows:rollback"
    WORKFLOWS_CHECKPOINT = "workflows:checkpoint"
    APPROVALS_ANSWER = "approvals:answer"
    APPROVALS_REASSIGN = "approvals:reassign"  # reassign, delegate or force the expiry of a request
    APPROVALS_OVERSEE = "approvals:oversee"  # see every pending request (the inbox's "All pending")
    CHANNELS_CONFIGURE = "channels:configure"
    DELIVERIES_RETRY = "deliveries:retry"
    ALERTS_ACKNOWLEDGE = "alerts:acknowledge"
    USERS_MANAGE = "users:manage"  # accounts, roles and API tokens
    AGENTS_MANAGE = "agents:manage"  # agent profiles and teams
    TENANTS_MANAGE = "tenants:manage"  # tenants, their flows, secrets and settings
    SESSIONS_SUPERVISE = "sessions:supervise"
    AUDIT_READ = "audit:read"  # the audit trail and execution logs
    DATA_EXPORT = "data:export"
    DATA_IMPORT = "data:import"
    POLICIES_MANAGE = "policies:manage"  # standing rules (core/standing_rules.py)


ROLES = ("admin", "approver", "viewer", "service")

_APPROVER: frozenset[Action] = frozenset(
    {
        Action.WORKFLOWS_START,
        Action.WORKFLOWS_PAUSE,
        Action.WORKFLOWS_RESUME,
        Action.WORKFLOWS_RETRY,
        Action.WORKFLOWS_CHECKPOINT,
        Action.APPROVALS_ANSWER,
        Action.APPROVALS_REASSIGN,
        Action.ALERTS_ACKNOWLEDGE,
        Action.AUDIT_READ,
    }
)
ROLE_ACTIONS: dict[str, frozenset[Action]] = {
    "admin": frozenset(Action),
    "approver": _APPROVER,
    "viewer": frozenset({Action.AUDIT_READ}),
    # Agents and systems that start workflows and read their status.
    "service": frozenset({Action.WORKFLOWS_START}),
}
# What the person who started a workflow may also do to it (if their role may start one).
STARTER_ACTIONS: frozenset[Action] = frozenset(
    {
        Action.WORKFLOWS_PAUSE,
        Action.WORKFLOWS_RESUME,
        Action.WORKFLOWS_CANCEL,
    }
)
# About the whole platform: only for users without a tenant.
PLATFORM_ACTIONS: frozenset[Action] = frozenset(
    {
        Action.CHANNELS_CONFIGURE,
        Action.TENANTS_MANAGE,
        Action.AGENTS_MANAGE,
        Action.ALERTS_ACKNOWLEDGE,
        Action.DATA_EXPORT,
        Action.DATA_IMPORT,
    }
)
# What a person without an account may do: answer a request that names them.
UNKNOWN_PERSON_ACTIONS: frozenset[Action] = frozenset({Action.APPROVALS_ANSWER})

SYSTEM_NAMES = frozenset({"system", "cli"})

REFUSED_EVENT = "permission.refused"
REMOVED_EVENT = "user.removed"  # core.identity.users.remove_user: the record principal() reads
_PENDING = "countersign_refusals"  # session.info key: refusals to write when the transaction ends


def action_of(value: str | Action) -> Action:
    """The action named ``value`` (e.g. ``workflows:start``), or CountersignError."""
    try:
        return Action(str(value).strip().lower())
    except ValueError:
        raise Invalid(f"Unknown action {value!r}; one of {', '.join(a.value for a in Action)}.") from None


def is_system_actor(actor: str) -> bool:
    """``system``, ``cli`` and ``system:``/``cli:``/``agent:`` names core gives itself.
    A name with an ``@`` is a person's address, never a system actor, whatever it
    starts with (and ``principal`` treats any account as a person first)."""
    name = actor.strip().lower()
    return "@" not in name and (name in SYSTEM_NAMES or name.startswith(SYSTEM_PREFIXES))


def token_actions(role: str) -> frozenset[Action]:
    """The most a token of a user with ``role`` may carry: the role's actions, and
    the starter's actions when the role may start workflows."""
    actions = ROLE_ACTIONS.get(role, frozenset())
    if Action.WORKFLOWS_START in actions:
        actions = actions | STARTER_ACTIONS
    return actions


# -- the credential of the current request (API tokens) ----------------------------------


@dataclass(frozen=True)
class Credential:
    """An API token in use: its user, name and scopes (None: its user's whole role)."""

    user: str
    name: str
    scopes: frozenset[Action] | None


_credential: contextvars.ContextVar[Credential | None] = contextvars.ContextVar(
    "countersign_credential", default=None
)


def use_credential(credential: Credential | None) -> contextvars.Token[Credential | None]:
    """Limit what the credential's user does from here on in this context (the gateway)."""
    return _credential.set(credential)


@contextlib.contextmanager
def acting_with(credential: Credential | None) -> Iterator[None]:
    """Within the block, the credential's user is limited to its scopes."""
    token = _credential.set(credential)
    try:
        yield
    finally:
        _credential.reset(token)


def current_credential() -> Credential | None:
    return _credential.get()


# -- the rule -------------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """Who ``actor`` is for the rule: a system actor, an account, or a person without one."""

    actor: str
    kind: str  # "system", "account" or "unknown"
    role: str | None = None
    tenant: str | None = None
    disabled: bool = False  # an account an admin disabled (core.identity.account_state): refused all
    removed: bool = False  # an address whose account was removed (core.identity.users): refused all
    # Why an address without an account is no plain one (core.identity.addresses): refused all.
    malformed: str | None = None

    @property
    def description(self) -> str:
        if self.kind == "system":
            return "system actor"
        if self.kind == "unknown":
            if self.malformed:
                return f"not a plain address: {self.malformed}"
            return "account removed" if self.removed else "no account"
        if self.disabled:
            return "account disabled"
        if self.tenant:
            return f"role {self.role} of tenant {self.tenant}"
        return f"role {self.role}"


def account_principal(user: User) -> Principal:
    """The principal an account is (its role, tenant and whether it is disabled)."""
    return Principal(
        user.email, "account", user.role, user.tenant or None, disabled=user.disabled_at is not None
    )


def principal(session: Session, actor: str) -> Principal:
    """Who ``actor`` is: an account first (always a person, whatever its name), then a
    system actor (``is_system_actor``: never a name with an ``@``), else a person
    without an account, refused everything when their account was removed or their
    address is no plain one (``address_problem``: no account could have it)."""
    name = (actor or "").strip().lower()
    user = session.get(User, name) if name else None
    if user is not None:
        return account_principal(user)
    if is_system_actor(name):
        return Principal(name, "system")
    if "@" in name and (problem := address_problem(name)) is not None:
        # No account can have it (core.identity.addresses): never a person to let answer.
        return Principal(name, "unknown", malformed=problem)
    return Principal(name, "unknown", removed=bool(name) and was_removed(session, name))


_REMOVED_CACHE = "countersign_removed_accounts"  # session.info: address -> removed, for one session


def was_removed(session: Session, address: str) -> bool:
    """Whether ``address`` had an account that was removed (a ``user.removed`` event;
    the caller knows it has no account now). Remembered for the session's life."""
    cache: dict[str, bool] = session.info.setdefault(_REMOVED_CACHE, {})
    if address not in cache:
        cache[address] = bool(removed_among(session, [address]))
    return cache[address]


def removed_among(session: Session, addresses: Iterable[str]) -> set[str]:
    """The addresses among ``addresses`` whose account was removed and not added again."""
    wanted = {a.strip().lower() for a in addresses if "@" in a}
    if not wanted:
        return set()
    user = WorkflowEvent.data["user"].as_string()
    removed = set(
        session.scalars(
            select(user)
            .where(
                # An account's events belong to no workflow: the workflow_id index finds
                # those few rows, where event_type alone (no index) read the whole trail,
                # which grows with every step run.
                WorkflowEvent.workflow_id.is_(None),
                WorkflowEvent.event_type == REMOVED_EVENT,
                user.in_(wanted),
            )
            .distinct()
        ).all()
    )
    if not removed:
        return set()
    return removed - set(session.scalars(select(User.email).where(User.email.in_(removed))).all())


def _workflow(session: Session, workflow: Workflow | str | None) -> Workflow | None:
    if workflow is None or isinstance(workflow, Workflow):
        return workflow
    return session.get(Workflow, str(workflow))


def _reason(
    who: Principal, action: Action, workflow: Workflow | None, row_tenant: str | None, row_tenant_given: bool
) -> str | None:
    """Why ``who`` may not do ``action`` (None: allowed), before token scopes."""
    if who.kind == "system":
        return None
    if who.kind == "unknown":
        answers = action in UNKNOWN_PERSON_ACTIONS and not who.removed and not who.malformed
        return None if answers else who.description
    if who.disabled:
        return who.description
    assert who.role is not None
    role_actions = ROLE_ACTIONS.get(who.role, frozenset())
    granted = action in role_actions
    if (
        not granted
        and action in STARTER_ACTIONS
        and workflow is not None
        and Action.WORKFLOWS_START in role_actions
        and (workflow.created_by or "").strip().lower() == who.actor
    ):
        granted = True  # their own workflow
    if not granted:
        return who.description
    if action in PLATFORM_ACTIONS and who.tenant is not None:
        return f"{who.description}; platform users only"
    tenants = ([workflow.tenant] if workflow is not None else []) + ([row_tenant] if row_tenant_given else [])
    if any(not can_see(who.tenant, t) for t in tenants):
        return f"{who.description}; another tenant's"
    return None


def _scope_reason(who: Principal, action: Action) -> tuple[str | None, Credential | None]:
    credential = _credential.get()
    if credential is None or credential.scopes is None or credential.user != who.actor:
        return None, credential
    if action in credential.scopes:
        return None, credential
    scopes = ", ".join(sorted(credential.scopes)) or "nothing"
    return f"token {credential.name!r} is scoped to {scopes}", credential


_UNSET: Any = object()


def decide(
    session: Session,
    actor: str,
    action: Action | str,
    *,
    workflow: Workflow | str | None = None,
    tenant: str | None = _UNSET,
) -> tuple[Principal, str | None]:
    """(who, why not) for ``actor`` doing ``action``; why not is None when allowed.

    ``workflow`` (a row or an id) is the workflow acted on: its starter gets
    ``STARTER_ACTIONS`` and its tenant must be the actor's. ``tenant`` is the
    tenant of another row acted on (a user, a token), checked the same way.
    """
    action = action_of(action)
    who = principal(session, actor)
    row = _workflow(session, workflow)
    why = _reason(who, action, row, tenant if tenant is not _UNSET else None, tenant is not _UNSET)
    if why is None:
        why, _ = _scope_reason(who, action)
    return who, why


def answer_refusal(who: Principal | User, tenant: str | None) -> str | None:
    """Why ``who`` may not answer a request of ``tenant`` now (None: they may).

    The one rule for naming someone to answer (core.approvals: reassignment targets,
    a delegate when a request is addressed, the threshold's potential voters), the same
    ``approvals:answer`` rule their answer is checked by: an account that is not
    disabled, whose role answers and that can see the request's tenant; an address
    without an account may answer a request that names it. Never a token's scopes:
    those limit the one acting, not the one named."""
    if isinstance(who, User):
        who = account_principal(who)
    return _reason(who, Action.APPROVALS_ANSWER, None, tenant, True)


def may_answer(who: Principal | User, tenant: str | None) -> bool:
    """Whether ``who`` may answer a request of ``tenant`` now (``answer_refusal``)."""
    return answer_refusal(who, tenant) is None


def allowed(
    source: Session | Database,
    actor: str,
    action: Action | str,
    *,
    workflow: Workflow | str | None = None,
    tenant: str | None = _UNSET,
) -> bool:
    """Whether ``actor`` may do ``action`` (for showing or hiding controls; records nothing)."""
    if isinstance(source, Session):
        return decide(source, actor, action, workflow=workflow, tenant=tenant)[1] is None
    with source.read() as session:
        return decide(session, actor, action, workflow=workflow, tenant=tenant)[1] is None


def actions_for(
    source: Session | Database, actor: str, *, workflow: Workflow | str | None = None
) -> frozenset[Action]:
    """Every action ``actor`` may do (on ``workflow``), in one read: for a page's controls."""

    def collect(session: Session) -> frozenset[Action]:
        return frozenset(a for a in Action if decide(session, actor, a, workflow=workflow)[1] is None)

    if isinstance(source, Session):
        return collect(source)
    with source.read() as session:
        return collect(session)


def check(
    session: Session,
    actor: str,
    action: Action | str,
    *,
    workflow: Workflow | str | None = None,
    tenant: str | None = _UNSET,
    approval_id: str | None = None,
) -> Principal:
    """Refuse (``NotAuthorized``, and a ``permission.refused`` audit event) unless
    ``actor`` may do ``action``; see the module's docstring for the rule. Returns who
    the actor is (their role and tenant), as read for the decision."""
    action = action_of(action)
    who, why = decide(session, actor, action, workflow=workflow, tenant=tenant)
    if why is None:
        return who
    row = _workflow(session, workflow)
    refuse(
        session,
        who.actor or actor,
        action,
        why,
        role=who.role,
        workflow_id=row.id if row is not None else None,
        approval_id=approval_id,
    )


def require(db: Database, actor: str, action: Action | str, *, approval_id: str | None = None) -> Principal:
    """``check`` in a read of its own, the refusal recorded at once: for an interface
    about to act or show something for ``actor`` before any use case runs (Slack's
    ``/approvals`` and its buttons: core.identity.permissions refuses a disabled or
    removed account there with the very message and event its answer would get)."""
    action = action_of(action)
    with db.read() as session:
        who, why = decide(session, actor, action)
    if why is not None:
        refuse(None, who.actor or actor, action, why, role=who.role, approval_id=approval_id, db=db)
    return who


def refuse(
    session: Session | None,
    actor: str,
    action: Action | str,
    why: str,
    *,
    role: str | None = None,
    workflow_id: str | None = None,
    approval_id: str | None = None,
    db: Database | None = None,
    message: str | None = None,
) -> NoReturn:
    """Raise the refusal of ``action`` and have it recorded in the audit trail.

    With a session, the event is written once that session's transaction
    ends (committed or rolled back); without one, at once through ``db``.
    The message is ``<actor> may not <action> (<why>)`` unless given.
    """
    action = action_of(action)
    message = message or f"{actor} may not {action} ({why})"
    credential = _credential.get()
    data: dict[str, Any] = {"action": str(action), "reason": why, "role": role}
    if credential is not None and credential.user == actor:
        data["token"] = credential.name
    refusal = {"actor": actor, "workflow_id": workflow_id, "approval_id": approval_id, "data": data}
    log.debug("permission refused", actor=actor, action=str(action), reason=why)
    if session is not None and session.info.get("countersign_db") is not None:
        session.info.setdefault(_PENDING, []).append(refusal)
    elif db is not None:
        _write(db, [refusal])
    raise NotAuthorized(message, action=str(action))


def _write(db: Database, refusals: list[dict[str, Any]]) -> None:
    from core.store.events import add_event

    try:
        with db.session() as session:
            for refusal in refusals:
                add_event(
                    session,
                    REFUSED_EVENT,
                    refusal["actor"],
                    workflow_id=refusal["workflow_id"],
                    approval_id=refusal["approval_id"],
                    data=refusal["data"],
                )
    except Exception as exc:  # noqa: BLE001  (the refusal itself stands; only its record is lost)
        log.warning("permission refusal not recorded", error=str(exc), refusals=len(refusals))


def _record_refusals(session: Session, transaction: SessionTransaction) -> None:
    # The refused transaction has ended (its locks are gone): record in a new one.
    if transaction.parent is not None or not session.info.get(_PENDING):
        return
    refusals = session.info.pop(_PENDING)
    db = session.info.get("countersign_db")
    if db is not None:
        _write(db, refusals)


def register_session_hooks() -> None:
    """Record refusals once the refused transaction has ended. Installed once per
    process by ``core.runtime``."""
    if not event.contains(Session, "after_transaction_end", _record_refusals):
        event.listen(Session, "after_transaction_end", _record_refusals)


# -- audited changes whose use case lives in a module that does not call check() yet ----

# The event a use case records names its action: appending it checks the
# actor (core.records.rows.append_event), inside the same transaction, so the
# change is refused and rolled back. A backstop for use cases that do not
# call check() themselves (record_response, store_channel_settings and
# retry_notification today).
EVENT_ACTIONS: dict[str, Action] = {
    "approval.responded": Action.APPROVALS_ANSWER,
    "channel.configured": Action.CHANNELS_CONFIGURE,
    "notification.retried": Action.DELIVERIES_RETRY,
}


def check_event(
    session: Session, event_type: str, actor: str, *, workflow_id: str | None, approval_id: str | None
) -> None:
    action = EVENT_ACTIONS.get(event_type)
    if action is not None:
        check(session, actor, action, workflow=workflow_id, approval_id=approval_id)


def role_table() -> list[tuple[str, ...]]:
    """Rows (action, then ``yes``/``own``/``-`` per role in ``ROLES``) for documentation."""
    rows = []
    for action in Action:
        cells = [action.value]
        for role in ROLES:
            actions = ROLE_ACTIONS[role]
            if action in actions:
                cells.append("yes" + (" (platform)" if action in PLATFORM_ACTIONS else ""))
            elif action in STARTER_ACTIONS and Action.WORKFLOWS_START in actions:
                cells.append("own workflows")
            else:
                cells.append("-")
        rows.append(tuple(cells))
    return rows


def parse_scopes(values: Iterable[str]) -> frozenset[Action]:
    """Scopes as given on a command line or form (``workflows:start``; commas allowed)."""
    return frozenset(action_of(part) for value in values for part in str(value).split(",") if part.strip())


def check_can_manage_tenants(session: Session, actor: str) -> None:
    """Tenants, their flows, secrets and settings are managed by platform admins
    (admins without a tenant) and by system actors (the CLI's ``cli:<login>``,
    ``system``): ``tenants:manage`` in core.identity.permissions; anyone else is refused."""
    check(session, actor, Action.TENANTS_MANAGE)


def check_platform_editor(session: Session, actor: str, what: str) -> None:
    """Agent profiles and teams (``what``) are shared by every tenant: changing
    them is ``agents:manage`` (core.identity.permissions), for platform admins and
    system actors only."""
    check(session, actor, Action.AGENTS_MANAGE)


__all__ = [
    "Action",
    "ROLES",
    "ROLE_ACTIONS",
    "STARTER_ACTIONS",
    "PLATFORM_ACTIONS",
    "Credential",
    "acting_with",
    "use_credential",
    "current_credential",
    "check",
    "require",
    "allowed",
    "actions_for",
    "account_principal",
    "answer_refusal",
    "may_answer",
    "principal",
    "decide",
    "refuse",
    "token_actions",
    "is_system_actor",
    "address_problem",
    "check_address",
    "InvalidAddress",
    "removed_among",
    "was_removed",
    "REMOVED_EVENT",
    "action_of",
    "parse_scopes",
    "role_table",
    "REFUSED_EVENT",
    "check_can_manage_tenants",
    "check_platform_editor",
    "register_session_hooks",
]
