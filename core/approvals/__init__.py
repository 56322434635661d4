"""Approval requests: opening, votes, levels and decisions (``engine``); the one
definition of what a request shows and needs (``presentation``); edits of the
proposed call (``edits``); signed links (``links``); answers that count once
(``once``); inbox and monitor queries (``inbox``).
"""

__all__ = ["edits", "engine", "inbox", "links", "once", "presentation"]
