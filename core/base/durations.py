"""Durations as people write them: ``300``, ``"15m"``, ``"24h"``, ``"2d"``, ISO ``"PT1H"``.

Used by the workflow language (``core.definitions``), settings (``core.base.config``)
and the CLI's ``--since``.
"""

from __future__ import annotations

import math
import re
from typing import Any

MAX_DURATION_SECONDS = 366 * 86400


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}
_ISO_DURATION = re.compile(
    r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(value: Any) -> float:
    """Seconds from a number, ``"90s"``, ``"15m"``, ``"24h"``, ``"2d"`` or ISO ``"PT1H"``."""
    if isinstance(value, bool):
        raise ValueError("must be a duration such as 300, '15m', '24h' or 'PT1H'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    elif isinstance(value, str) and (m := _ISO_DURATION.match(value.strip())) and value.strip() != "P":
        parts = {k: float(v) for k, v in m.groupdict().items() if v}
        seconds = (
            parts.get("d", 0) * 86400 + parts.get("h", 0) * 3600 + parts.get("m", 0) * 60 + parts.get("s", 0)
        )
    else:
        raise ValueError("must be a duration such as 300, '15m', '24h' or 'PT1H'")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError("must be a positive duration")
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError("must be at most 366 days")
    return seconds
