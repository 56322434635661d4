"""Deprecated import path, kept for scripts written before the layout of issue 13:
use ``core.runtime.open_database`` (migrated, tools loaded) or ``core.store.db``
inside core. To be removed in Countersign 0.3."""

from __future__ import annotations

import warnings

from core.store.db import Database, get_database

warnings.warn(
    "core.db moved: use core.runtime.open_database(); this path goes away in 0.3",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = ["Database", "get_database"]
