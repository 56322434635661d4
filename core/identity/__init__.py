"""Who is acting: accounts and groups, browser sessions, API tokens, and what each
role may do (``permissions``, one rule for every interface).

Public face: the modules ``users``, ``browser_sessions``, ``api_tokens``,
``permissions``, and the tenancy rule below (which rows a person sees; its
query helpers live in ``core.store.tenancy``).
"""

from __future__ import annotations

from core.store.tenancy import can_see, unknown_people_may_view, user_tenant

__all__ = [
    "api_tokens",
    "browser_sessions",
    "can_see",
    "permissions",
    "unknown_people_may_view",
    "user_tenant",
    "users",
]
