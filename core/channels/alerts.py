"""Alert messages for every channel: email (Jinja2), Slack (Block Kit), webhook (JSON).

An ``alert.raised`` outbox row carries its alert in ``payload["alert"]``
(``core.ops.alerts.alert_payload``); the channels call these renderers instead of
their approval ones. Alert text comes from the data (workflow names,
approval titles, errors), so it is escaped for HTML and Slack mrkdwn.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from core.channels.base import Delivery, PermanentFailure
from core.channels.text import SLACK_OPEN_ACTION, email_templates, one_line
from core.channels.text import mrkdwn_escape as esc
from core.outbox.writer import ALERT_KIND

RULE_TITLES = {
    "approval_expiring": "Approval close to expiry",
    "workflow_failed": "Workflow failed",
    "delivery_dead": "Notification delivery dead",
    "runner_heartbeat_missing": "Runner heartbeat missing",
}
# A workflow a person's rejection stopped is their decision, not a failure
# (core.engine.after_decision tells them apart; the alert's data says ``rejected``).
REJECTED_TITLE = "Workflow stopped: request rejected"
SUBJECT_MAX = 200
SLACK_HEADER_MAX = 150
SLACK_TEXT_MAX = 3000


@dataclass(frozen=True)
class AlertFacts:
    id: int
    rule: str
    subject: str
    severity: str
    message: str
    raised_at: str
    url: str
    monitor_url: str
    rejected: bool = False

    @property
    def title(self) -> str:
        if self.rule == "workflow_failed" and self.rejected:
            return REJECTED_TITLE
        return RULE_TITLES.get(self.rule, self.rule.replace("_", " ").capitalize())

    @property
    def raised(self) -> str:
        try:
            return datetime.fromisoformat(self.raised_at).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        except ValueError:
            return self.raised_at


def alert_facts(delivery: Delivery) -> AlertFacts:
    alert = delivery.payload.get("alert")
    if not isinstance(alert, dict):
        raise PermanentFailure("This alert notification carries no alert.")
    return AlertFacts(
        id=int(alert.get("id") or 0),
        rule=str(alert.get("rule") or ""),
        subject=str(alert.get("subject") or ""),
        severity=str(alert.get("severity") or ""),
        message=str(alert.get("message") or ""),
        raised_at=str(alert.get("raised_at") or ""),
        url=str(alert.get("url") or ""),
        monitor_url=str(alert.get("monitor_url") or ""),
        rejected=isinstance(alert.get("data"), dict) and bool(alert["data"].get("rejected")),
    )


def render_alert_email(facts: AlertFacts) -> dict[str, str]:
    """Subject, text and HTML of an alert email (HTML autoescaped)."""

    subject = one_line(f"[{facts.severity}] {facts.title}: {facts.message}")[:SUBJECT_MAX]
    context = {"subject": subject, "alert": facts}
    env = email_templates()
    return {
        "subject": subject,
        "text": env.get_template("alert_email.txt.j2").render(context),
        "html": env.get_template("alert_email.html.j2").render(context),
    }


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def alert_blocks(facts: AlertFacts) -> list[Block]:
    """The Block Kit message of an alert; its text escaped."""

    icon = ":rotating_light:" if facts.severity == "critical" else ":warning:"
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=_cut(f"Alert: {facts.title}", SLACK_HEADER_MAX), emoji=False)),
        SectionBlock(text=MarkdownTextObject(text=_cut(f"{icon} {esc(facts.message)}", SLACK_TEXT_MAX))),
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text=_cut(
                        f"*{esc(facts.severity)}* · raised {esc(facts.raised)} · {esc(facts.subject)}",
                        SLACK_TEXT_MAX,
                    )
                )
            ]
        ),
    ]
    if facts.url:
        blocks.append(
            ActionsBlock(
                elements=[
                    ButtonElement(
                        text=PlainTextObject(text="Open in dashboard"),
                        action_id=SLACK_OPEN_ACTION,
                        url=facts.url,
                        value=str(facts.id),
                    )
                ]
            )
        )
    return blocks


def alert_text(facts: AlertFacts) -> str:

    return esc(f"Alert ({facts.severity}): {facts.message}")


def alert_event(facts: AlertFacts) -> dict[str, Any]:
    """The webhook body of an alert."""
    return {
        "type": ALERT_KIND,
        "timestamp": datetime.now(UTC).isoformat(),
        "data": {
            "alert_id": facts.id,
            "rule": facts.rule,
            "subject": facts.subject,
            "severity": facts.severity,
            "message": facts.message,
            "raised_at": facts.raised_at,
            "dashboard_url": facts.url,
        },
    }


__all__ = [
    "ALERT_KIND",
    "AlertFacts",
    "alert_facts",
    "render_alert_email",
    "alert_blocks",
    "alert_text",
    "alert_event",
]
