"""Outbound webhooks signed by the Standard Webhooks scheme.

Each delivery is a JSON body ``{"type", "timestamp", "data"}`` with the
headers ``webhook-id`` (the notification id: the same on every retry, so the
receiver can drop duplicates), ``webhook-timestamp`` and
``webhook-signature`` (``standardwebhooks``, secret ``COUNTERSIGN_WEBHOOK_SECRET``,
``whsec_...``). Endpoints: ``COUNTERSIGN_WEBHOOK_URL`` (comma-separated), the
Settings page's ``urls``, and an approval's ``channel_configs.webhook.url``.

Two kinds of rows reach this channel: ``webhook.<event>`` rows (recipient =
endpoint URL) for the events approval requested, decided, workflow finished
and rolled back; and ``approval.requested``-style rows an approval queues when
its ``channels`` include ``webhook`` (recipient = approver), delivered as an
``approval.assigned`` event to the approval's or the configured endpoints.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
from standardwebhooks import Webhook

from core.approvals.links import approval_link
from core.base.secrets import mask, secret
from core.channels.base import Delivery, PermanentFailure, TemporaryFailure

SECRET_ENV = "COUNTERSIGN_WEBHOOK_SECRET"
URL_ENV = "COUNTERSIGN_WEBHOOK_URL"
TIMEOUT_SECONDS = 10.0
# Client errors that retrying cannot fix; others (408, 409, 425, 429, 5xx) are retried.
PERMANENT_STATUSES = {400, 401, 403, 404, 405, 410, 413, 415, 422}


class WebhookChannel:
    name = "webhook"

    def __init__(self, settings: dict[str, Any] | None = None, endpoints: list[str] | None = None) -> None:
        self.settings = dict(settings or {})
        self.endpoints = list(endpoints or [])

    def configured(self) -> bool:
        return bool(secret(SECRET_ENV))

    def status(self) -> dict[str, Any]:
        return {
            "channel": self.name,
            "configured": self.configured(),
            SECRET_ENV: mask(secret(SECRET_ENV)),
            "endpoints": self.endpoints,
        }

    def _signer(self) -> Webhook:
        key = secret(SECRET_ENV)
        if not key:
            raise PermanentFailure(f"Webhooks are not configured: set {SECRET_ENV} (whsec_...).")
        try:
            return Webhook(key)
        except Exception as exc:  # the package raises several types for a bad secret
            raise PermanentFailure(f"{SECRET_ENV} is not a valid webhook secret: {exc}") from exc

    def send(self, delivery: Delivery) -> dict[str, Any]:
        if delivery.kind.startswith("webhook."):
            body = delivery.payload.get("event") or {}
            return self.post(delivery.recipient, delivery.notification_id, body)
        from core.channels.alerts import ALERT_KIND, alert_event, alert_facts

        if delivery.kind == ALERT_KIND:  # recipient: the endpoint URL
            return self.post(delivery.recipient, delivery.notification_id, alert_event(alert_facts(delivery)))
        approval = delivery.approval
        if approval is None:
            raise PermanentFailure("Nothing to send: this webhook row names no event or approval.")
        own = (delivery.payload.get("channel_config") or {}).get("url")
        urls = [str(own)] if own else self.endpoints
        if not urls:
            raise PermanentFailure(f"No webhook endpoint: set {URL_ENV} or channel_configs.webhook.url.")
        body = {
            "type": "approval.assigned",
            "timestamp": datetime.now(UTC).isoformat(),
            "data": {
                "approval_id": approval.id,
                "workflow_id": approval.workflow_id,
                "approver": delivery.recipient,
                "title": approval.title,
                "approval_type": approval.approval_type,
                "status": approval.status,
                "dashboard_url": approval_link(approval.id),
                "kind": delivery.kind,
            },
        }
        results = [self.post(url, delivery.notification_id, body) for url in urls]
        return {"deliveries": results}

    def post(self, url: str, message_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Sign and POST one event; the id is the same on every retry."""
        signer = self._signer()
        data = json.dumps(body, separators=(",", ":"), sort_keys=True, default=str)
        now = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signer.sign(message_id, now, data),
            "user-agent": "Countersign-Webhooks/1",
        }
        try:
            response = httpx.post(
                url, content=data.encode(), headers=headers, timeout=TIMEOUT_SECONDS, follow_redirects=False
            )
        except httpx.HTTPError as exc:
            raise TemporaryFailure(f"The webhook endpoint {url} is unreachable: {exc}") from exc
        if 200 <= response.status_code < 300:
            return {"url": url, "status": response.status_code}
        message = f"The webhook endpoint {url} answered {response.status_code}."
        if response.status_code in PERMANENT_STATUSES:
            raise PermanentFailure(message)
        raise TemporaryFailure(message)

    def test(self, recipient: str) -> dict[str, Any]:
        urls = [recipient] if recipient.startswith(("http://", "https://")) else self.endpoints
        if not urls:
            raise PermanentFailure(f"No webhook endpoint: set {URL_ENV} or add one in Settings.")
        body = {
            "type": "countersign.test",
            "timestamp": datetime.now(UTC).isoformat(),
            "data": {"message": "Webhook delivery from Countersign works."},
        }
        import uuid

        return {"deliveries": [self.post(url, f"test-{uuid.uuid4()}", body) for url in urls]}
