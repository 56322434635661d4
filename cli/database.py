"""``python -m core db upgrade``, ``export`` and ``import``: the database itself.

``cli.main`` registers ``db_app`` as ``db`` and ``export_command`` and
``import_command`` as top-level commands. Core is imported inside each command
(fast ``--help``); the backup format is core/ops/backup.py's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.support import DEFAULT_ACTOR, Actor

db_app = typer.Typer(no_args_is_help=True, help="Database schema.")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations up to the newest."""
    from core.store.db import get_database
    from core.store.migrate import current_revision

    db = get_database()
    db.upgrade()
    typer.echo(f"database at revision {current_revision(db)}")


def export_command(
    file: Annotated[Path, typer.Argument(help="Backup file to write (JSON Lines).")],
    actor: Actor = DEFAULT_ACTOR,
) -> None:
    """Write every workflow, approval, event, checkpoint, user... to a backup file."""
    from core.ops.backup import export_database
    from core.store.db import get_database

    # Written beside the target and renamed at the end: a failed export leaves no half file.
    partial = file.with_name(file.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8") as out:
            result = export_database(get_database(), out, actor=actor)
        partial.replace(file)
    finally:
        partial.unlink(missing_ok=True)
    typer.echo(f"exported {result.total} rows at revision {result.revision} to {file}")


def import_command(
    file: Annotated[Path, typer.Argument(help="Backup file made by export.")],
    merge: Annotated[
        bool, typer.Option("--merge", help="Into a non-empty database: skip rows whose id exists.")
    ] = False,
    actor: Actor = DEFAULT_ACTOR,
) -> None:
    """Load a backup file into this database, all of it or nothing."""
    from core.ops.backup import import_database
    from core.store.db import get_database

    db = get_database()
    db.upgrade()
    with file.open(encoding="utf-8") as source:
        result = import_database(db, source, merge=merge, actor=actor)
    skipped = sum(result.skipped.values())
    typer.echo(
        f"imported {sum(result.inserted.values())} rows"
        + (f", skipped {skipped} already present" if skipped else "")
    )
