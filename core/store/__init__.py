"""The database: the handle (``db.Database``: sessions, dialects, wake-ups), the
tables, migrations, the one insert of an audit event, tenant scoping of queries.
Only core reads and writes it; the dashboard and the gateway never import it.
"""

__all__ = ["async_db", "db", "events", "lengths", "migrate", "tables", "tenancy", "wakeup"]
