"""Where the pages are, for links between them (absolute, like app.py's)."""

from __future__ import annotations

from pathlib import Path

PAGES_DIR = Path(__file__).resolve().parent.parent / "pages"
INBOX_PAGE = str(PAGES_DIR / "inbox.py")
APPROVAL_PAGE = str(PAGES_DIR / "approval.py")
WORKFLOWS_PAGE = str(PAGES_DIR / "workflows.py")
WORKFLOW_PAGE = str(PAGES_DIR / "workflow.py")
LOGS_PAGE = str(PAGES_DIR / "logs.py")
