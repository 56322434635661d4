"""Deprecated import path, kept for tool modules written before the layout of
issue 13: use ``from core.engine import tool``. To be removed in Countersign 0.3."""

from __future__ import annotations

import warnings

from core.engine.tools import ToolRegistry, default_registry, tool

warnings.warn(
    "core.tools moved to core.engine (from core.engine import tool); this path goes away in 0.3",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = ["ToolRegistry", "default_registry", "tool"]
