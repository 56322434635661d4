"""Where Countersign keeps its files by default, whichever directory it is started from.

Kept apart from ``config`` (pydantic-settings), so a command that only needs the
default database's address does not import pydantic to learn it.
"""

from __future__ import annotations

from pathlib import Path

# The repository root: app.py, core/ and the default data/ directory live here.
ROOT = Path(__file__).resolve().parents[2]
# The embedded default, an absolute path: started from another directory (with the
# root on PYTHONPATH), a command used to create and read an empty ./data there.
DEFAULT_DATABASE_URL = f"sqlite:///{ROOT / 'data' / 'countersign.db'}"
# Settings files read, in order (a later one wins): the root's, then the current directory's.
ENV_FILES = (ROOT / ".env", Path(".env"))


def env_file_present() -> bool:
    """Whether a settings file exists that could name another database."""
    return any(path.is_file() for path in ENV_FILES)
