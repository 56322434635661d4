"""Slack's Edit button: the modal opened with the click's trigger_id (drawn by
``core.channels.slack_modal`` from the guarded call's input schema and, for a
budget, an approved amount), and its ``view_submission`` recorded as an
approving answer with ``{"arguments": {...}}`` (what changed) and
``{"approved_amount": N}``; refusals go back as ``response_action: errors``
under the input they name, and a modal is spent by its view id. Without a bot
token or a trigger the reply links to the dashboard.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from core.approvals import standing_rules
from core.approvals.edits import answer_for, editable, problems_by_field, read_amount, read_inputs
from core.approvals.engine import ApprovalEngine
from core.approvals.inbox import is_asked
from core.approvals.once import check_issued_for, once_key, respond_once
from core.approvals.presentation import RequestView, request_view
from core.approvals.voting import after_vote
from core.base.errors import (
    ApprovalClosed,
    CountersignError,
    InvalidResponse,
    InvalidRule,
    NotAuthorized,
)
from core.base.secrets import secret as _secret
from core.channels.slack import (
    edit_modal,
    inert,
    read_edit_submission,
    submission_errors,
)
from core.identity import user_tenant
from core.identity.verified import vouched

if TYPE_CHECKING:
    from core.store.db import Database
    from core.store.tables import ApprovalRequest
from gateway.slack_replies import SlackReply, dashboard_link
from gateway.slack_users import api_url, email_of, slack_user_id

log = structlog.get_logger(__name__)

__all__ = ["handle_submission", "open_editor"]


def _asked(db: Database, approval_id: str, email: str) -> tuple[ApprovalRequest, RequestView]:
    """The request as ``email`` sees it, if it is still theirs to answer, and its view."""
    engine = ApprovalEngine(db)
    approval = engine.get(approval_id, tenant=user_tenant(db, email))  # another tenant's: unknown
    if approval.status != "pending":
        raise ApprovalClosed(
            f"This request is already {approval.status}"
            + (f" by {approval.decided_by}." if approval.decided_by else ".")
        )
    if not is_asked(db, approval, email):
        raise NotAuthorized(
            f"{email} is not an approver of this request (asked: {', '.join(approval.approvers)})."
        )
    return approval, request_view(approval, engine.responses(approval_id))


def open_editor(
    db: Database,
    approval_id: str,
    user_id: str,
    trigger_id: Any,
    response_url: str | None,
    *,
    level: int | None = None,
) -> SlackReply:
    """The Edit button: the edit modal, or a link to the dashboard when none can open.
    A button sent for another ``level`` of the request opens nothing."""
    link = dashboard_link(approval_id)
    try:
        email = email_of(db, user_id)
        approval, view = _asked(db, approval_id, email)
        check_issued_for(approval, what="This Edit button", level=level)
    except CountersignError as exc:
        return SlackReply(inert(str(exc)), False, response_url)
    if not editable(view):
        fixed = "" if view.changes_allowed else " (its definition says allow_modify: false)"
        return SlackReply(
            f"This request has nothing to edit{fixed}; answer it with the buttons or in the "
            f"dashboard: {link}",
            False,
            response_url,
        )
    token = _secret("SLACK_BOT_TOKEN")
    if not token or not isinstance(trigger_id, str) or not trigger_id:
        return SlackReply(f"Edit this request in the dashboard: {link}", True, response_url)
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    try:
        modal = edit_modal(
            approval.id,
            view,
            approval.title,
            level=approval.level,
            allow_hint=standing_rules.allow_offer(db, email, approval.tenant, view.call_now),
        )
        WebClient(token=token, base_url=api_url(), timeout=5).views_open(trigger_id=trigger_id, view=modal)
    except (SlackApiError, OSError, CountersignError) as exc:
        log.warning("slack.views_open_failed", approval_id=approval_id, error=str(exc))
        return SlackReply(
            f"The edit form could not open in Slack; edit this request in the dashboard: {link}",
            False,
            response_url,
        )
    log.info("slack.editor_opened", approval_id=approval_id, approver=email)
    return SlackReply("", True, None, ack={})


def _done_view(text: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Countersign"},
        "close": {"type": "plain_text", "text": "Done"},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text, "verbatim": True}}],
    }


def handle_submission(db: Database, payload: dict[str, Any]) -> SlackReply:
    """The edit modal submitted: record the approving answer it describes.

    Refusals go back to the modal (``response_action: errors``) under the
    input they name; an answer recorded replaces the modal with what was done.
    """
    view = payload.get("view") if isinstance(payload.get("view"), dict) else {}
    try:
        submitted = read_edit_submission(view or {})
    except ValueError:
        return SlackReply("", True, None, ack={})  # not ours to answer

    def refused(problems: dict[str, list[str]]) -> SlackReply:
        return SlackReply(
            "",
            False,
            None,
            ack={"response_action": "errors", "errors": submission_errors(problems, submitted.block_ids)},
        )

    user_id = slack_user_id(payload)
    try:
        email = email_of(db, user_id)
        approval, current = _asked(db, submitted.approval_id, email)
    except CountersignError as exc:
        return refused({"": [str(exc)]})
    if submitted.level is None:
        return refused(
            {
                "": [
                    "This form does not say which level of the request it was opened "
                    "for; close it and press Edit again."
                ]
            }
        )
    if (current.call_now or {}).get("digest") != submitted.digest:
        return refused(
            {
                "": [
                    "The call changed since this form opened (an earlier level released "
                    "another one); close it and press Edit again."
                ]
            }
        )
    changes, problems = read_inputs(current, submitted.inputs)
    if problems:
        return refused({name: [problem] for name, problem in problems.items()})
    decision, data = answer_for(
        current, changes=changes, approved_amount=read_amount(submitted.amount), tool=submitted.tool
    )
    allow_days: float | None = None
    if submitted.allow is not None:
        try:
            allow_days = float(submitted.allow.days or "")
        except ValueError:
            return refused({"allow_for_days": ["give the number of days calls like this are allowed"]})
    view_id = str(view.get("id") or "") if isinstance(view, dict) else ""
    try:
        with vouched(slack_user_id=user_id.upper()):  # recorded with the vote
            decided = respond_once(
                db,
                key=once_key("slack-view", view_id, approval.id),
                what="This Slack form",
                approval_id=approval.id,
                approver=email,
                decision=decision,
                data=data,
                comment=submitted.comment.strip(),
                channel="slack",
                level=submitted.level,
                digest=submitted.digest,
                allow_for_days=allow_days,
                allow_when=submitted.allow.when if submitted.allow is not None else None,
            )
    except InvalidResponse as exc:
        return refused(problems_by_field(exc.problems, current))
    except InvalidRule as exc:  # under the standing rule's inputs: "allow_when: ..."
        return refused(_rule_problems(exc.problems))
    except CountersignError as exc:
        return refused({"": [str(exc)]})
    log.info("slack.decided", approval_id=approval.id, approver=email, decision=decision, edited=sorted(data))
    text = f"You approved “{inert(decided.title)}”" + (" with changes." if decision == "modify" else ".")
    if allow_days is not None:
        text += f" Calls like this are allowed for {allow_days:g} days."
    text += inert(after_vote(decided, True))
    return SlackReply(text, True, None, ack={"response_action": "update", "view": _done_view(text)})


def _rule_problems(problems: list[str]) -> dict[str, list[str]]:
    """A refused standing rule's problems by the field each names (``allow_when: ...``)."""
    by_field: dict[str, list[str]] = {}
    for problem in problems:
        field, _, message = problem.partition(": ")
        if field in ("allow_for_days", "days"):
            field = "allow_for_days"
        elif field in ("allow_when", "condition"):
            field = "allow_when"
        else:
            field, message = "allow", problem
        by_field.setdefault(field, []).append(message or problem)
    return by_field
