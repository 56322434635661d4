"""Is the schema already at the newest migration? Answered without Alembic.

Every process opens its database through ``Database.upgrade()``; importing
Alembic and building its script directory costs about 0.1 s of CPU, which a
listing command should not pay when there is nothing to migrate. The newest
revision is read from the migration files' ``revision`` / ``down_revision``
lines (Alembic's own source of truth), the stored one from ``alembic_version``.
Anything unusual (branches, no table yet, an unreadable file) answers "not
known", and Alembic decides as before.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

__all__ = ["at_newest_revision", "newest_revision"]

VERSIONS_DIR = Path(__file__).parent / "migrations" / "versions"
_ASSIGNMENT = re.compile(
    r'^(revision|down_revision)\s*(?::[^=]*)?=\s*(?:"([^"]*)"|\'([^\']*)\'|None)\s*$', re.M
)


@cache
def newest_revision() -> str | None:
    """The one revision no other migration builds on, or None if that is not clear-cut."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in VERSIONS_DIR.glob("*.py"):
        found = {m.group(1): m.group(2) or m.group(3) for m in _ASSIGNMENT.finditer(path.read_text("utf-8"))}
        if "revision" not in found or not found["revision"] or "down_revision" not in found:
            return None  # a migration this reader does not understand: let Alembic decide
        revisions.add(found["revision"])
        if found["down_revision"]:
            parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def at_newest_revision(engine: Engine) -> bool:
    """True when the database says it is at :func:`newest_revision` (False if in doubt)."""
    newest = newest_revision()
    if newest is None:
        return False
    try:
        with engine.connect() as connection:
            stored = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except SQLAlchemyError:
        return False
    return stored == [newest]
