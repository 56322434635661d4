"""Standing rules: "approve, and allow calls like this for N days", against approval fatigue.

A rule names a tool, a condition on the call (a ``core.definitions.gates`` expression
such as ``args.amount <= 200`` or ``args.to in ['a@x.com', 'b@x.com']``), a
scope (its tenant, NULL for the platform's own workflows, and optionally one
workflow name), an expiry and its creator. When a request guarding a call is
opened (``core.approvals.open_approval``), the first live rule of the same
tenant whose tool, workflow name and condition match releases the call at
once: the request is decided ``approved`` by ``system:rule:<id>``, its
``approval.decided`` event and decision data name the rule, and the step
runs the released call through the executor's usual digest check.

Never across tenants (a platform rule does not reach a tenant's workflows
nor the reverse), never after ``expires_at`` or once revoked. A condition
that cannot be evaluated for a call does not match (rules fail closed).
Creating, editing and revoking needs ``policies:manage``; listing
``audit:read``.
"""

from __future__ import annotations

import keyword
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.base.errors import InvalidRule, RuleNotFound
from core.definitions.gates import GateError, check_expression, evaluate
from core.identity.permissions import Action, allowed, check
from core.records import rows as store
from core.store.tables import ApprovalRequest, StandingRule, User, Workflow, utcnow
from core.store.tenancy import tenant_of, tenant_scope

if TYPE_CHECKING:
    from core.store.db import Database

# The longest a rule may last: a standing permission is reviewed at least this often.
MAX_DAYS = 90
# What an empty condition means (``condition_for_call``), as every channel's hint says it.
DEFAULT_CONDITION_WORDS = (
    "the same arguments and no others; each positive number from 0 up to this call's, "
    "a negative number or 0 exactly; everything else equal"
)
RULE_ACTOR_PREFIX = "system:rule:"
_ACTORS_TENANT: Any = object()


def rule_actor(rule_id: int) -> str:
    """Who decides a request a rule released (a system actor, never a person)."""
    return f"{RULE_ACTOR_PREFIX}{rule_id}"


def _literal(value: Any) -> str:
    return repr(value)


def _argument(name: str) -> str:
    """How a condition names the argument ``name``: ``args.name`` when that reads as the
    argument, else ``args['name']`` (a keyword such as ``from``, a name that is not an
    identifier or is private, or one the dict itself has, such as ``items``: the evaluator
    would answer ``args.items`` with the dict's method, never the argument)."""
    if (
        name.isidentifier()
        and not keyword.iskeyword(name)
        and not name.startswith("_")
        and not hasattr(dict, name)
    ):
        return f"args.{name}"
    return f"args[{name!r}]"


def condition_for_call(arguments: Mapping[str, Any]) -> str:
    """The default condition of "calls like this": the same arguments and no other (their
    count, with each named below: a missing one fails closed), each number from 0 to its
    value (a negative number or 0: exactly it), everything else (text, booleans, None,
    lists, objects) equal to it. E.g. ``{"amount": 100, "to": "bob@example.com"}`` gives
    ``len(args) == 2 and 0 <= args.amount <= 100 and args.to == 'bob@example.com'``."""
    parts = [f"len(args) == {len(arguments)}"]
    for name in sorted(arguments):
        value = arguments[name]
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            parts.append(f"0 <= {_argument(name)} <= {_literal(value)}")
        else:
            parts.append(f"{_argument(name)} == {_literal(value)}")
    return " and ".join(parts)


def allow_offer(
    db: Database, user: str, tenant: str | None, call_now: Mapping[str, Any] | None
) -> str | None:
    """Whether "approve, and allow calls like this" is offered to ``user`` answering a
    request of ``tenant``: for a guarded call (``call_now``, the call as it stands) that
    they may make standing rules for, the condition "like this" means by default (the
    hint of the condition's field); otherwise None, and no interface shows the option."""
    if call_now is None or not allowed(db, user, Action.POLICIES_MANAGE, tenant=tenant):
        return None
    return condition_for_call(call_now["arguments"])


def _problems(
    tool: str, condition: str, expires_at: datetime | None, workflow_name: str | None, now: datetime
) -> list[str]:
    problems = []
    if not tool or not tool.strip():
        problems.append("tool: must name a tool")
    elif len(tool) > 200:
        problems.append("tool: longer than 200 characters")
    if not condition or not condition.strip():
        problems.append("condition: must not be empty (use True for any call of the tool)")
    elif why := check_expression(condition):
        problems.append(f"condition: {why}")
    if expires_at is None or expires_at <= now:
        problems.append("expires: must be in the future")
    elif expires_at > now + timedelta(days=MAX_DAYS, minutes=1):
        problems.append(f"expires: at most {MAX_DAYS} days from now")
    if workflow_name is not None and (not workflow_name.strip() or len(workflow_name) > 200):
        problems.append("workflow_name: empty or longer than 200 characters")
    return problems


def expiry_in(days: float, now: datetime | None = None) -> datetime:
    """``days`` from now; InvalidRule unless 0 < days <= MAX_DAYS."""
    if not isinstance(days, int | float) or isinstance(days, bool) or not 0 < days <= MAX_DAYS:
        raise InvalidRule([f"days: must be more than 0 and at most {MAX_DAYS}"])
    return (now or utcnow()) + timedelta(days=float(days))


def rule_dict(rule: StandingRule, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    state = "revoked" if rule.revoked_at else ("expired" if rule.expires_at <= now else "active")
    return {
        "id": rule.id,
        "tool": rule.tool,
        "condition": rule.condition,
        "workflow_name": rule.workflow_name,
        "tenant": rule.tenant,
        "state": state,
        "expires_at": rule.expires_at.isoformat(),
        "created_by": rule.created_by,
        "created_at": rule.created_at.isoformat(),
        "note": rule.note,
        "source_approval_id": rule.source_approval_id,
        "uses": rule.uses,
        "last_used_at": rule.last_used_at.isoformat() if rule.last_used_at else None,
        "revoked_by": rule.revoked_by,
        "revoked_at": rule.revoked_at.isoformat() if rule.revoked_at else None,
    }


# -- use cases -------------------------------------------------------------------------------


def add_rule(
    session: Session,
    actor: str,
    *,
    tool: str,
    condition: str,
    expires_at: datetime,
    workflow_name: str | None = None,
    tenant: str | None = _ACTORS_TENANT,
    note: str = "",
    source_approval_id: str | None = None,
) -> StandingRule:
    """Insert a rule in ``session`` (``policies:manage`` in ``tenant``, by default the actor's)."""
    if tenant is _ACTORS_TENANT:
        tenant = tenant_of(session, actor)
    check(session, actor, Action.POLICIES_MANAGE, tenant=tenant)
    now = utcnow()
    if problems := _problems(tool, condition, expires_at, workflow_name, now):
        raise InvalidRule(problems)
    rule = StandingRule(
        tool=tool.strip(),
        condition=condition.strip(),
        workflow_name=workflow_name.strip() if workflow_name else None,
        tenant=tenant,
        expires_at=expires_at,
        created_by=actor.strip().lower(),
        note=note or "",
        source_approval_id=source_approval_id,
        uses=0,
        created_at=now,
        updated_at=now,
    )
    session.add(rule)
    session.flush()
    store.append_event(
        session, "rule.created", actor, approval_id=source_approval_id, data=rule_dict(rule, now)
    )
    return rule


def create_rule(
    db: Database,
    actor: str,
    *,
    tool: str,
    condition: str,
    days: float,
    workflow_name: str | None = None,
    tenant: str | None = _ACTORS_TENANT,
    note: str = "",
) -> dict[str, Any]:
    """A rule made on the Policies page or by CLI."""
    expires_at = expiry_in(days)
    with db.session() as session:
        return rule_dict(
            add_rule(
                session,
                actor,
                tool=tool,
                condition=condition,
                expires_at=expires_at,
                workflow_name=workflow_name,
                tenant=tenant,
                note=note,
            )
        )


def check_answer_rule(
    session: Session, approval: ApprovalRequest, approver: str, days: float, condition: str | None
) -> None:
    """Refuse, writing nothing, an "allow calls like this" that cannot be made."""
    check(session, approver, Action.POLICIES_MANAGE, tenant=approval.tenant, approval_id=approval.id)
    expiry_in(days)
    problems = []
    if approval.proposed_call is None or approval.workflow_id is None:
        problems.append(
            "allow_for_days: this request guards no call of a workflow; only calls can be allowed by a rule"
        )
    if condition is not None and (
        why := check_expression(condition) if condition.strip() else "must not be empty"
    ):
        problems.append(f"allow_when: {why}")
    if problems:
        raise InvalidRule(problems)


def rule_from_answer(
    session: Session,
    approval: ApprovalRequest,
    approver: str,
    days: float,
    condition: str | None = None,
    *,
    call: dict[str, Any] | None,
) -> StandingRule:
    """The rule an approving answer asked for: the call's tool, in the request's tenant and
    workflow, allowing calls like ``call`` (or ``condition``). ``call`` is the one this answer
    approved, with its changes (core.approvals.voting.answer_call), whether or not it
    decided: never the request's proposed call, which the answer may have changed."""
    check_answer_rule(session, approval, approver, days, condition)
    if call is None:
        raise InvalidRule(
            ["allow_for_days: this answer approves no call; only calls can be allowed by a rule"]
        )
    assert approval.workflow_id is not None
    workflow = session.get(Workflow, approval.workflow_id)
    assert workflow is not None
    return add_rule(
        session,
        approver,
        tool=call["tool"],
        condition=condition or condition_for_call(call["arguments"]),
        expires_at=expiry_in(days),
        workflow_name=workflow.name,
        tenant=approval.tenant,
        source_approval_id=approval.id,
        note=f"allowed when answering {approval.title!r}",
    )


def _scoped_rule(session: Session, actor: str, rule_id: int, *, lock: bool = False) -> StandingRule:
    query = tenant_scope(tenant_of(session, actor)).apply(
        select(StandingRule).where(StandingRule.id == rule_id), StandingRule.tenant
    )
    rule = session.scalars(query.with_for_update() if lock else query).one_or_none()
    if rule is None:
        raise RuleNotFound(f"No standing rule has the id {rule_id}.")
    return rule


def list_rules(db: Database, actor: str, *, include_ended: bool = False) -> list[dict[str, Any]]:
    """The rules ``actor`` sees (their tenant's; a platform user every one), newest first."""
    now = utcnow()
    with db.read() as session:
        check(session, actor, Action.AUDIT_READ)
        query = tenant_scope(tenant_of(session, actor)).apply(select(StandingRule), StandingRule.tenant)
        if not include_ended:
            query = query.where(StandingRule.revoked_at.is_(None), StandingRule.expires_at > now)
        return [rule_dict(r, now) for r in session.scalars(query.order_by(StandingRule.id.desc()))]


def update_rule(
    db: Database,
    actor: str,
    rule_id: int,
    *,
    condition: str | None = None,
    days: float | None = None,
    workflow_name: str | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """Change a live rule's condition, expiry (``days`` from now), workflow or note."""
    with db.session() as session:
        rule = _scoped_rule(session, actor, rule_id, lock=True)
        check(session, actor, Action.POLICIES_MANAGE, tenant=rule.tenant)
        now = utcnow()
        if rule.revoked_at is not None or rule.expires_at <= now:
            raise InvalidRule(
                [f"rule {rule_id} has ended ({rule_dict(rule, now)['state']}); create a new one"]
            )
        before = rule_dict(rule, now)
        new_condition = condition if condition is not None else rule.condition
        expires_at = expiry_in(days, now) if days is not None else rule.expires_at
        new_workflow = (workflow_name or None) if workflow_name is not None else rule.workflow_name
        if problems := _problems(rule.tool, new_condition, expires_at, new_workflow, now):
            raise InvalidRule(problems)
        rule.condition, rule.expires_at, rule.workflow_name = new_condition.strip(), expires_at, new_workflow
        if note is not None:
            rule.note = note
        rule.updated_at = now
        after = rule_dict(rule, now)
        changed = sorted(k for k in after if after[k] != before[k] and k != "state")
        store.append_event(
            session,
            "rule.updated",
            actor,
            before={k: before[k] for k in changed},
            after={k: after[k] for k in changed},
            data={"rule_id": rule.id},
        )
        return after


def revoke_rule(db: Database, actor: str, rule_id: int) -> dict[str, Any]:
    """End a rule now; later calls are asked about again."""
    with db.session() as session:
        rule = _scoped_rule(session, actor, rule_id, lock=True)
        check(session, actor, Action.POLICIES_MANAGE, tenant=rule.tenant)
        if rule.revoked_at is not None:
            raise InvalidRule([f"rule {rule_id} was already revoked by {rule.revoked_by}"])
        rule.revoked_at = rule.updated_at = utcnow()
        rule.revoked_by = actor.strip().lower()
        store.append_event(session, "rule.revoked", actor, data={"rule_id": rule.id, "tool": rule.tool})
        return rule_dict(rule)


# -- the engine's side: does a live rule release this call? -------------------------------


def matching_rule(
    session: Session, approval: ApprovalRequest, workflow: Workflow | None
) -> StandingRule | None:
    """The first live rule of the request's tenant that releases its call, or None."""
    call = approval.proposed_call
    if call is None or workflow is None:
        return None
    now = utcnow()
    tenant_match = (
        StandingRule.tenant.is_(None) if approval.tenant is None else StandingRule.tenant == approval.tenant
    )
    candidates = session.scalars(
        select(StandingRule)
        # A rule acts for its creator: none while their account is disabled.
        .outerjoin(User, User.email == StandingRule.created_by)
        .where(
            StandingRule.tool == call["tool"],
            tenant_match,
            StandingRule.revoked_at.is_(None),
            StandingRule.expires_at > now,
            (StandingRule.workflow_name.is_(None)) | (StandingRule.workflow_name == workflow.name),
            User.disabled_at.is_(None),
        )
        .order_by(StandingRule.id)
    ).all()
    names = {
        "args": call["arguments"],
        "tool": call["tool"],
        "input": workflow.input_data,
        "context": workflow.context,
        "workflow": {"id": workflow.id, "name": workflow.name},
    }
    for rule in candidates:
        try:
            if evaluate(rule.condition, names):
                return rule
        except GateError:
            continue  # a condition that cannot be evaluated releases nothing
    return None


def used(rule: StandingRule) -> dict[str, Any]:
    """Count one use; what the decision records of the rule."""
    rule.uses += 1
    rule.last_used_at = utcnow()
    return {
        "rule_id": rule.id,
        "rule": {
            "tool": rule.tool,
            "condition": rule.condition,
            "workflow_name": rule.workflow_name,
            "created_by": rule.created_by,
            "expires_at": rule.expires_at.isoformat(),
        },
    }


__all__ = [
    "DEFAULT_CONDITION_WORDS",
    "allow_offer",
    "MAX_DAYS",
    "add_rule",
    "check_answer_rule",
    "condition_for_call",
    "create_rule",
    "expiry_in",
    "list_rules",
    "matching_rule",
    "revoke_rule",
    "rule_actor",
    "rule_dict",
    "rule_from_answer",
    "update_rule",
    "used",
]
