"""Email: approval requests by SMTP (STARTTLS or SSL) or SendGrid.

Bodies come from Jinja2 templates (HTML autoescaped, plain text alongside)
and show the request as ``core.approvals.presentation`` defines it: the guarded
call's tool and arguments, the amount in figures and words, what approving
changes, the chain of levels, votes so far and time left (for a gate without
a call, its facts). Binary and budget requests carry Approve and Reject
links to the gateway's confirmation page, each with a signed, single-use
token bound to the approval, the recipient and the decision; there the
approver may also lower a budget's amount or change the call's arguments.
Form requests link to the dashboard. Opening a link never decides anything.

Every message has a stable ``Message-ID`` derived from the notification id,
so a message sent again after a crash can be recognised as a duplicate.

Settings: ``COUNTERSIGN_SMTP_HOST``, ``_PORT``, ``_USER``, ``_PASSWORD``,
``_FROM``, ``_SECURITY`` (``starttls``, ``ssl`` or ``none``), ``_TIMEOUT`` (s); or
``SENDGRID_API_KEY`` (and ``SENDGRID_API_HOST`` to point elsewhere). The
non-secret ones may also be set on the Settings page (``channel_configurations``).
"""

from __future__ import annotations

import hashlib
import os
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any

from core.approvals.edits import editable
from core.approvals.links import approval_link, confirm_link, make_link_token
from core.approvals.presentation import plain
from core.base.secrets import mask, secret
from core.channels.alerts import ALERT_KIND, alert_facts, render_alert_email
from core.channels.base import ApprovalFacts, Delivery, PermanentFailure, TemporaryFailure
from core.channels.text import email_templates, one_line
from core.channels.timers import email_wording
from core.outbox.settings import (
    SENDGRID_KEY_ENV,
    SMTP_PREFIX,
    email_configured,
    email_provider,
    email_setting,
)

SENDGRID_HOST_ENV = "SENDGRID_API_HOST"
DEFAULT_SENDGRID_HOST = "https://api.sendgrid.com"
DEFAULT_FROM = "countersign@localhost"
SMTP_TIMEOUT = 15


def _call(approval: ApprovalFacts) -> dict[str, Any] | None:
    """The view as the templates show it (all text; the HTML template escapes it)."""
    view = approval.view
    if view is None:
        return None
    return {
        "tool": view.tool,
        "rows": [
            {"name": row.name, "value": plain(row.now), "was": plain(row.proposed) if row.changed else None}
            for row in view.arguments
        ],
        "amount": view.amount_text,
        "changes": [
            {"argument": c["argument"], "before": plain(c["before"]), "after": plain(c["after"])}
            for c in view.changes
        ],
        "facts": [(label, plain(value)) for label, value in view.facts],
        "chain": view.chain,
        "votes": f"{view.approvals_so_far} of {view.threshold} needed",
        "time_left": view.time_left,
        "editable": editable(view) and view.tool is not None,
        "budget": view.approval_type == "budget" and view.amount is not None,
    }


def render_approval_email(
    approval: ApprovalFacts, address: str, kind: str, payload: dict[str, Any] | None = None
) -> dict[str, str]:
    """Subject, text and HTML of the message asking ``address`` to answer."""
    approve_url = reject_url = None
    if not approval.needs_dashboard:
        # Each link decides once, and only at the level it was sent for (core.approvals.once).
        approve_url = confirm_link(make_link_token(approval.id, address, "approve", level=approval.level))
        reject_url = confirm_link(make_link_token(approval.id, address, "reject", level=approval.level))
    prefix, intro = email_wording(kind, approval, payload or {})  # reminders, escalations, vetoes
    subject = one_line(f"{prefix}{approval.title}")[:200]
    call = _call(approval)
    facts = approval.key_facts()
    if call is not None:  # the context's facts are the view's (a budget's amount in words)
        facts = [
            (label, value)
            for label, value in facts
            if label in ("Workflow", "Step", "Type", "Requested by", "Answer by")
        ]
    context = {
        "subject": subject,
        "intro": intro,
        "approval": approval,
        "facts": facts,
        "action": approval.action_summary() if call is None or call["tool"] is None else "",
        "call": call,
        "approve_url": approve_url,
        "reject_url": reject_url,
        # A veto window's reject is its veto (core.approvals.veto).
        "reject_label": "Veto" if approval.view is not None and approval.view.notice else "Reject",
        "dashboard_url": approval_link(approval.id),
    }
    env = email_templates()
    return {
        "subject": subject,
        "text": env.get_template("approval_email.txt.j2").render(context),
        "html": env.get_template("approval_email.html.j2").render(context),
    }


def message_id(notification_id: str, address: str, sender: str) -> str:
    """A stable Message-ID for one notification and one address."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "countersign.local"
    digest = hashlib.sha256(address.lower().encode()).hexdigest()[:8]
    return f"<{notification_id}.{digest}@{domain}>"


class EmailChannel:
    name = "email"

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        self.settings = dict(settings or {})

    def _setting(self, key: str, default: str = "") -> str:
        return email_setting(self.settings, key, default)

    @property
    def provider(self) -> str:
        return email_provider(self.settings)

    @property
    def sender(self) -> str:
        return self._setting("from", DEFAULT_FROM)

    def configured(self) -> bool:
        return email_configured(self.settings)

    def status(self) -> dict[str, Any]:
        return {
            "channel": self.name,
            "configured": self.configured(),
            "provider": self.provider,
            "from": self.sender,
            "smtp_host": self._setting("host") or "(not set)",
            "smtp_port": self._setting("port", "587"),
            "smtp_security": self._setting("security", "starttls"),
            "smtp_user": self._setting("user") or "(not set)",
            SMTP_PREFIX + "PASSWORD": mask(secret(SMTP_PREFIX + "PASSWORD")),
            SENDGRID_KEY_ENV: mask(secret(SENDGRID_KEY_ENV)),
            SENDGRID_HOST_ENV: os.environ.get(SENDGRID_HOST_ENV) or DEFAULT_SENDGRID_HOST,
        }

    def send(self, delivery: Delivery) -> dict[str, Any]:

        approval = delivery.approval
        alert = alert_facts(delivery) if delivery.kind == ALERT_KIND else None
        if approval is None and alert is None:
            raise PermanentFailure("Emails are only sent for approval requests and alerts.")
        if approval is not None and not approval.is_open:
            return {"skipped": f"approval already {approval.status}"}
        if not self.configured():
            raise PermanentFailure("Email is not configured: set COUNTERSIGN_SMTP_HOST or SENDGRID_API_KEY.")
        addresses = delivery.addresses or [delivery.recipient]
        sent = []
        for address in addresses:
            rendered = (
                render_alert_email(alert)
                if alert is not None
                else render_approval_email(
                    approval,  # type: ignore[arg-type]
                    address,
                    delivery.kind,
                    delivery.payload,
                )
            )
            mid = message_id(delivery.notification_id, address, self.sender)
            if self.provider == "sendgrid":
                self._send_sendgrid(address, rendered, mid)
            else:
                self._send_smtp(address, rendered, mid)
            sent.append({"to": address, "message_id": mid})
        return {"provider": self.provider, "messages": sent}

    def test(self, recipient: str) -> dict[str, Any]:
        rendered = {
            "subject": "Countersign test message",
            "text": "Email delivery from Countersign works.",
            "html": "<p>Email delivery from Countersign works.</p>",
        }
        mid = message_id("test-" + os.urandom(6).hex(), recipient, self.sender)
        if self.provider == "sendgrid":
            self._send_sendgrid(recipient, rendered, mid)
        else:
            self._send_smtp(recipient, rendered, mid)
        return {"to": recipient, "message_id": mid}

    # -- SMTP ----------------------------------------------------------------

    def _send_smtp(self, address: str, rendered: dict[str, str], mid: str) -> None:
        message = EmailMessage()
        message["Subject"] = rendered["subject"]
        message["From"] = self.sender
        message["To"] = address
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = mid
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(rendered["text"])
        message.add_alternative(rendered["html"], subtype="html")
        host = self._setting("host")
        security = self._setting("security", "starttls").lower()
        port = int(self._setting("port", "465" if security == "ssl" else "587"))
        user, password = self._setting("user"), secret(SMTP_PREFIX + "PASSWORD")
        timeout = float(self._setting("timeout", str(SMTP_TIMEOUT)))
        try:
            if security == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    host, port, timeout=timeout, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(host, port, timeout=timeout)
            with smtp:
                if security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if user and password:
                    smtp.login(user, password)
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentFailure(f"The mail server refused the recipient {address}.") from exc
        except smtplib.SMTPAuthenticationError as exc:
            raise PermanentFailure(f"The mail server refused the login of {user}.") from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentFailure(f"The mail server does not support that: {exc}") from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise TemporaryFailure(f"The mail server {host}:{port} is unavailable: {exc}") from exc

    # -- SendGrid ------------------------------------------------------------

    def _send_sendgrid(self, address: str, rendered: dict[str, str], mid: str) -> None:
        from python_http_client.exceptions import HTTPError
        from sendgrid import SendGridAPIClient
        from sendgrid.helpers.mail import (
            ClickTracking,
            Content,
            Header,
            Mail,
            OpenTracking,
            TrackingSettings,
        )

        key = secret(SENDGRID_KEY_ENV)
        if not key:
            raise PermanentFailure(f"SendGrid is not configured: set {SENDGRID_KEY_ENV}.")
        mail = Mail(from_email=self.sender, to_emails=address, subject=rendered["subject"])
        mail.add_content(Content("text/plain", rendered["text"]))
        mail.add_content(Content("text/html", rendered["html"]))
        mail.add_header(Header("Message-ID", mid))
        # Click tracking rewrites links through SendGrid's redirector, which
        # would carry the single-use tokens through a third party.
        mail.tracking_settings = TrackingSettings(
            click_tracking=ClickTracking(enable=False, enable_text=False),
            open_tracking=OpenTracking(enable=False),
        )
        client = SendGridAPIClient(
            api_key=key, host=os.environ.get(SENDGRID_HOST_ENV) or DEFAULT_SENDGRID_HOST
        )
        try:
            response = client.send(mail)
        except HTTPError as exc:
            status = int(getattr(exc, "status_code", 0) or 0)
            message = f"SendGrid refused the message ({status}): {getattr(exc, 'body', b'')!r}"
            if status in (408, 429) or status >= 500:
                raise TemporaryFailure(message) from exc
            raise PermanentFailure(message) from exc
        except OSError as exc:
            raise TemporaryFailure(f"SendGrid is unreachable: {exc}") from exc
        if response.status_code >= 300:
            raise TemporaryFailure(f"SendGrid answered {response.status_code}.")
