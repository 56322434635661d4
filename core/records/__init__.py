"""Rows as the use cases read and change them: tenant-scoped lookups, status
changes through the transition table, audit events checked against permissions
(``rows``), and the fold of a workflow"s events into its state at any point
(``history``).
"""

__all__ = ["history", "rows"]
