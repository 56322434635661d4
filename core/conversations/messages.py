"""Chat messages as smolagents or the provider hands them: dicts or ChatMessage objects."""

from __future__ import annotations

from typing import Any


def message_role(message: Any) -> str:
    role = message.get("role") if isinstance(message, dict) else message.role
    return str(getattr(role, "value", role))


def message_text(message: Any) -> str:
    content = message.get("content") if isinstance(message, dict) else message.content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")
