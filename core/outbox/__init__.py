"""The one writer of notification rows (``writer``) and channel settings without
their SDKs (``settings``: what is configured, enabled, where webhooks go).
"""

__all__ = ["settings", "writer"]
