"""The newest migration, read without Alembic (core.store.schema_version), agrees
with Alembic's, and any doubt answers "not known" so Alembic decides."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.store import schema_version
from core.store.db import Database
from core.store.migrate import head_revision, upgrade


def test_the_newest_revision_is_alembics_head(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        assert schema_version.newest_revision() == head_revision(db)
        assert not schema_version.at_newest_revision(db.engine)  # no alembic_version table yet
        upgrade(db, "0012")
        assert not schema_version.at_newest_revision(db.engine)
        db.upgrade()
        assert schema_version.at_newest_revision(db.engine)
    finally:
        db.dispose()


def _versions(tmp_path: Path, *files: tuple[str, str]) -> Path:
    for name, body in files:
        (tmp_path / name).write_text(body)
    return tmp_path


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            (
                ("a.py", 'revision = "1"\ndown_revision = None\n'),
                ("b.py", "revision = '2'\ndown_revision = '1'\n"),
            ),
            "2",
        ),
        # Two heads (a branch): not clear-cut.
        (
            (
                ("a.py", 'revision = "1"\ndown_revision = None\n'),
                ("b.py", 'revision = "2"\ndown_revision = "1"\n'),
                ("c.py", 'revision = "3"\ndown_revision = "1"\n'),
            ),
            None,
        ),
        # A merge migration (a tuple of parents) is not understood here.
        (
            (
                ("a.py", 'revision = "1"\ndown_revision = None\n'),
                ("m.py", 'revision = "9"\ndown_revision = ("1", "2")\n'),
            ),
            None,
        ),
    ],
)
def test_doubt_answers_not_known(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: tuple[tuple[str, str], ...], expected: str | None
) -> None:
    monkeypatch.setattr(schema_version, "VERSIONS_DIR", _versions(tmp_path, *files))
    schema_version.newest_revision.cache_clear()
    try:
        assert schema_version.newest_revision() == expected
    finally:
        schema_version.newest_revision.cache_clear()
