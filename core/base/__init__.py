"""The ground floor: errors (one base, six kinds), settings, durations, the clock,
statuses and their transitions, what may be stored, retry rules, logging, secrets,
the one CSV writer (formula cells neutralised).
Imports nothing of Countersign"s.
"""

__all__ = [
    "clock",
    "config",
    "csv_cells",
    "durations",
    "errors",
    "locations",
    "logging",
    "retry",
    "secrets",
    "states",
    "storable",
]
