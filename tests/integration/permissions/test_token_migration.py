"""Migration 0014 deletes the API tokens earlier versions kept for removed accounts, on
SQLite and PostgreSQL: tokens whose address has no account, and tokens made before a
removal of their address (answering again once it was added back); every other token
stays."""

from __future__ import annotations

from sqlalchemy import select

from core.identity.api_tokens import create_token
from core.identity.users import add_user, remove_user
from core.store.db import Database
from core.store.migrate import current_revision, upgrade
from core.store.tables import ApiToken
from tests.integration.core.test_trail_migration import empty_db  # noqa: F401  (a fixture)


def kept_anyway(db: Database, row: ApiToken) -> None:
    """What an earlier version's removal left: the token row, as it was."""
    with db.session() as session:
        session.add(
            ApiToken(
                name=row.name,
                token_hash=row.token_hash,
                user_email=row.user_email,
                scopes=row.scopes,
                created_at=row.created_at,
                updated_at=row.created_at,
            )
        )


def names(db: Database) -> list[str]:
    with db.read() as session:
        return sorted(session.scalars(select(ApiToken.name)).all())


def test_tokens_of_removed_accounts_are_deleted(empty_db: Database) -> None:  # noqa: F811
    db = empty_db
    upgrade(db, "0013")
    add_user(db, "kept@example.com", role="approver")
    create_token(db, "kept@example.com", "kept")
    for person in ("gone@example.com", "back@example.com"):
        add_user(db, person, role="approver")
        row, _ = create_token(db, person, f"{person.split('@')[0]}-old")
        remove_user(db, person)
        kept_anyway(db, row)
    add_user(db, "back@example.com", role="approver")
    create_token(db, "back@example.com", "back-new")
    assert names(db) == ["back-new", "back-old", "gone-old", "kept"]

    upgrade(db)

    assert current_revision(db) == "0014"
    assert names(db) == ["back-new", "kept"]
