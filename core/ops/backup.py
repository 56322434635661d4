"""Backups: export a database to JSON Lines and import it into another.

The file is one header line (format, version, the schema's Alembic revision),
then one line per row (``{"table": ..., "row": {...}}``) in foreign-key
order, then a trailer with the row count, so a truncated file is recognised.
Both directions stream: rows are read and written in batches, never all at
once. Import runs in one transaction, so a refused or broken file leaves the
target as it was. Ids, timestamps (timezone-aware, ISO 8601), JSON and
integer ids are kept; on PostgreSQL the id sequences are moved past the
imported ids afterwards.

Runner heartbeats are liveness, not data, and are not copied.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

from sqlalchemy import Integer, Table, func, insert, select, text, tuple_
from sqlalchemy.engine import Connection

from core.base.errors import Conflict, Invalid
from core.store.migrate import current_revision
from core.store.tables import Base, UTCDateTime

if TYPE_CHECKING:
    from core.store.db import Database

FORMAT = "countersign-backup"
FORMAT_VERSION = 1
BATCH_SIZE = 500
# Not data: which runner processes were alive when.
SKIPPED_TABLES = frozenset({"runner_heartbeats"})


class BackupError(Invalid):
    """The backup could not be made or imported."""


class BackupFileInvalid(BackupError):
    """The backup file is damaged or not a Countersign backup."""


class BackupSchemaMismatch(BackupError):
    """The backup was made from a different database schema revision."""


class TargetNotEmpty(Conflict):
    """The target database already holds data; import into an empty one or pass --merge."""


def backup_tables() -> list[Table]:
    """The tables a backup holds, parents before children."""
    return [t for t in Base.metadata.sorted_tables if t.name not in SKIPPED_TABLES]


def _tables_by_name() -> dict[str, Table]:
    return {t.name: t for t in backup_tables()}


def _datetime_columns(table: Table) -> set[str]:
    return {c.name for c in table.columns if isinstance(c.type, UTCDateTime)}


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


@dataclass
class ExportResult:
    revision: str
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def export_database(db: Database, out: IO[str], *, actor: str = "system") -> ExportResult:
    """Write every backed-up row of ``db`` to ``out`` as JSON Lines (``data:export``)."""
    from core.identity.permissions import Action, check

    revision = current_revision(db)
    if revision is None:
        raise BackupError("The database has no schema yet (run: python -m core db upgrade).")
    with db.read() as session:
        check(session, actor, Action.DATA_EXPORT)
    tables = backup_tables()
    result = ExportResult(revision=revision)
    header = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "revision": revision,
        "dialect": db.dialect,
        "tables": [t.name for t in tables],
    }
    out.write(json.dumps(header) + "\n")
    # One read transaction: on PostgreSQL a consistent snapshot of all tables.
    with db.engine.connect() as conn:
        if db.is_postgres:
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        for table in tables:
            count = 0
            query = select(table).order_by(*table.primary_key.columns)
            rows = conn.execution_options(stream_results=True, yield_per=BATCH_SIZE).execute(query)
            for row in rows:
                record = {key: _encode(value) for key, value in row._mapping.items()}
                out.write(
                    json.dumps(
                        {"table": table.name, "row": record}, ensure_ascii=False, separators=(",", ":")
                    )
                    + "\n"
                )
                count += 1
            result.rows[table.name] = count
        conn.rollback()
    out.write(json.dumps({"end": True, "rows": result.total}) + "\n")
    return result


@dataclass
class ImportResult:
    revision: str
    inserted: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)


def _read_lines(source: IO[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(source, start=1):
        if not line.strip():
            continue
        try:
            parsed = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BackupFileInvalid(
                f"The backup file is damaged at line {number}: {exc.msg}; nothing was imported."
            ) from None
        if not isinstance(parsed, dict):
            raise BackupFileInvalid(
                f"The backup file is damaged at line {number}: not a JSON object; nothing was imported."
            )
        yield number, parsed


def _check_header(first: tuple[int, dict[str, Any]] | None, target_revision: str | None) -> str:
    if first is None:
        raise BackupFileInvalid("The backup file is empty.")
    _, header = first
    if header.get("format") != FORMAT:
        raise BackupFileInvalid("This is not a Countersign backup file (no countersign-backup header).")
    if header.get("version") != FORMAT_VERSION:
        raise BackupFileInvalid(
            f"Backup format version {header.get('version')!r} is not supported "
            f"(this version reads {FORMAT_VERSION})."
        )
    revision = str(header.get("revision"))
    if revision != target_revision:
        raise BackupSchemaMismatch(
            f"The backup was made at schema revision {revision}, but the target database is at "
            f"{target_revision}; import it with the Countersign version that made it, or into a "
            "database at that revision."
        )
    return revision


def _decode_row(table: Table, row: Any, number: int) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise BackupFileInvalid(f"The backup file is damaged at line {number}: the row is not an object.")
    unknown = set(row) - set(table.columns.keys())
    if unknown:
        raise BackupFileInvalid(f"Line {number}: {table.name} has no column(s) {', '.join(sorted(unknown))}.")
    decoded = dict(row)
    for name in _datetime_columns(table) & set(decoded):
        value = decoded[name]
        if value is None:
            continue
        try:
            parsed = datetime.fromisoformat(value)
        except (TypeError, ValueError):
            raise BackupFileInvalid(
                f"Line {number}: {table.name}.{name} is not a timestamp: {value!r}."
            ) from None
        if parsed.tzinfo is None:
            raise BackupFileInvalid(f"Line {number}: {table.name}.{name} has no time zone.")
        decoded[name] = parsed
    return decoded


def _is_empty(conn: Connection) -> bool:
    for table in backup_tables():
        if conn.execute(select(func.count()).select_from(table)).scalar():
            return False
    return True


def _existing_keys(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    pk = list(table.primary_key.columns)
    keys = [tuple(r.get(c.name) for c in pk) for r in rows]
    if len(pk) == 1:
        found = conn.execute(select(pk[0]).where(pk[0].in_([k[0] for k in keys])))
    else:
        found = conn.execute(select(*pk).where(tuple_(*pk).in_(keys)))
    return {tuple(r) for r in found}


def _flush(
    conn: Connection, table: Table, batch: list[dict[str, Any]], merge: bool, result: ImportResult
) -> None:
    if not batch:
        return
    rows = list(batch)
    batch.clear()
    if merge:
        existing = _existing_keys(conn, table, rows)
        pk = [c.name for c in table.primary_key.columns]
        kept = [r for r in rows if tuple(r.get(n) for n in pk) not in existing]
        result.skipped[table.name] = result.skipped.get(table.name, 0) + len(rows) - len(kept)
        rows = kept
    if rows:
        conn.execute(insert(table), rows)
    result.inserted[table.name] = result.inserted.get(table.name, 0) + len(rows)


def _reset_sequences(conn: Connection) -> None:
    """Move PostgreSQL id sequences past the imported ids, so new rows don't collide."""
    for table in backup_tables():
        pk = list(table.primary_key.columns)
        if len(pk) != 1 or not isinstance(pk[0].type.dialect_impl(conn.dialect), Integer):
            continue
        column = pk[0].name
        sequence = conn.execute(
            text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": column}
        ).scalar()
        if sequence is None:
            continue
        conn.execute(
            text(
                f'SELECT setval(:s, COALESCE((SELECT MAX("{column}") FROM "{table.name}"), 1), '
                f'(SELECT MAX("{column}") FROM "{table.name}") IS NOT NULL)'
            ),
            {"s": sequence},
        )


def import_database(
    db: Database, source: IO[str], *, merge: bool = False, actor: str = "system"
) -> ImportResult:
    """Load a backup into ``db`` in one transaction (all of it or nothing; ``data:import``)."""
    from core.identity.permissions import Action, check

    with db.read() as session:
        check(session, actor, Action.DATA_IMPORT)
    tables = _tables_by_name()
    target_revision = current_revision(db)
    lines = _read_lines(source)
    revision = _check_header(next(lines, None), target_revision)
    result = ImportResult(revision=revision)
    with db.engine.begin() as conn:
        if not merge and not _is_empty(conn):
            raise TargetNotEmpty()
        current: Table | None = None
        batch: list[dict[str, Any]] = []
        total = 0
        ended = False
        for number, record in lines:
            if ended:
                raise BackupFileInvalid(f"The backup file has data after its end (line {number}).")
            if record.get("end") is True:
                if current is not None:
                    _flush(conn, current, batch, merge, result)
                if record.get("rows") != total:
                    raise BackupFileInvalid(
                        f"The backup file says {record.get('rows')} rows but holds "
                        f"{total}; nothing was imported."
                    )
                ended = True
                continue
            table = tables.get(str(record.get("table")))
            if table is None:
                raise BackupFileInvalid(f"Line {number}: unknown table {record.get('table')!r}.")
            if table is not current:
                if current is not None:
                    _flush(conn, current, batch, merge, result)
                current = table
            batch.append(_decode_row(table, record.get("row"), number))
            total += 1
            if len(batch) >= BATCH_SIZE:
                _flush(conn, table, batch, merge, result)
        if not ended:
            raise BackupFileInvalid(
                "The backup file is incomplete (it ends before its last line); nothing was imported."
            )
        if db.is_postgres:
            _reset_sequences(conn)
    return result
