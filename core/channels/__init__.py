"""Notification channels (Slack, email, webhooks) and the outbox dispatcher.

Kept light on import: the channel modules pull in their SDKs only when used.
"""

__all__ = [
    "alerts",
    "base",
    "configure",
    "dispatcher",
    "email",
    "notifications",
    "registry",
    "slack",
    "text",
    "webhook",
]
