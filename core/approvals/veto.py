"""Veto windows: ``approval_config: {mode: veto, window: 15m}``.

The request is announced to its approvers like any other (dashboard, Slack,
email, webhooks) and its deadline is the window's end. Within the window a
veto is a rejection (any channel's Reject, whatever ``reject_decides``; the step
then follows ``on_reject``), and an approval runs the call at once. When the
window ends with no veto, the runner's deadline sweep (core.approvals.expiry)
releases exactly the call that was announced, through the same path an approval
takes (``core.definitions.calls.released_call``, recorded in the
``approval.decided`` event), so the executor's released-call check applies to it
as to any decision. A vote that objects to the announced call (a reject, or an
approval only with changes that has not reached the threshold) means the window's
end rejects the request instead: the call as announced never runs over it.

The engine's decision step is passed in (``decide``): the engine imports this
module through core.approvals.expiry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from core.approvals.voting import objections
from core.base.states import APPROVAL_OPEN
from core.definitions.approval import ApprovalConfig
from core.definitions.calls import released_call
from core.records import rows as store
from core.store.tables import ApprovalRequest, ApprovalResponse, utcnow

VETO_ACTOR = "system:veto-window"
WINDOW_PASSED_EVENT = "approval.veto_window_passed"

# ``core.approvals.deciding.decide(session, approval, outcome, actor, data, *, released=...)``.
Decide = Callable[..., None]


def is_veto(config: dict[str, Any] | ApprovalConfig) -> bool:
    mode = config.mode if isinstance(config, ApprovalConfig) else (config or {}).get("mode")
    return mode == "veto"


def veto_notice(approval: ApprovalRequest, left: str) -> str | None:
    """ "Runs at 2026-12-04 16:05 UTC (14m left) unless someone vetoes it" for an open
    veto request; ``left`` is the time left as every channel words it."""
    if not is_veto(approval.config) or approval.expires_at is None or approval.status != APPROVAL_OPEN:
        return None
    return f"Runs at {approval.expires_at.strftime('%Y-%m-%d %H:%M UTC')} ({left}) unless someone vetoes it"


def release_after_window(
    session: Session, approval: ApprovalRequest, actor: str, call: dict[str, Any] | None, decide: Decide
) -> str:
    """The window ended: release ``call`` (the one announced), as an approval does, unless a
    vote objects to it (a reject, or an approval only with changes): then nothing runs."""
    config = ApprovalConfig.model_validate(approval.config)
    if objecting := objections(session, approval):
        return _objected(session, approval, actor, config, objecting, decide)
    released = released_call(call, None) if call is not None else None
    _window_passed(
        session,
        approval,
        actor,
        config,
        released_call={k: released[k] for k in ("tool", "arguments", "digest")}
        if released is not None
        else None,
    )
    decide(
        session,
        approval,
        "approved",
        VETO_ACTOR,
        {"reason": "no veto within the window", "mode": "veto"},
        released=released,
    )
    return "approved"


def _window_passed(
    session: Session, approval: ApprovalRequest, actor: str, config: ApprovalConfig, **data: Any
) -> None:
    """The ``approval.veto_window_passed`` event: the window, when it ended, and ``data``."""
    store.append_event(
        session,
        WINDOW_PASSED_EVENT,
        actor,
        workflow_id=approval.workflow_id,
        approval_id=approval.id,
        step_name=approval.step_name,
        data={"window": config.window, "ended_at": (approval.expires_at or utcnow()).isoformat(), **data},
    )


def _objected(
    session: Session,
    approval: ApprovalRequest,
    actor: str,
    config: ApprovalConfig,
    objecting: list[ApprovalResponse],
    decide: Decide,
) -> str:
    """The window ended over an objection: the request is rejected and nothing runs. A veto
    (reject) normally decided at once; a changed call that did not reach the threshold
    in time objects to the call as announced, so the announced call does not run over it."""
    vetoed = [v.approver for v in objecting if v.decision == "reject"]
    changed = [v.approver for v in objecting if v.decision != "reject"]
    reason = (
        f"vetoed within the window by {', '.join(vetoed)}"
        if vetoed
        else f"the window ended with the call approved only with changes (by {', '.join(changed)}), "
        "and too few approvals of the changed call: the call as announced does not run"
    )
    _window_passed(session, approval, actor, config, released_call=None, vetoed_by=vetoed, changed_by=changed)
    decide(
        session,
        approval,
        "rejected",
        VETO_ACTOR,
        {"reason": reason, "mode": "veto", "comment": objecting[-1].comment},
    )
    return "rejected"


__all__ = ["VETO_ACTOR", "WINDOW_PASSED_EVENT", "is_veto", "release_after_window", "veto_notice"]
