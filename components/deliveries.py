"""An approval's notifications: where each went, and a retry for dead ones."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import streamlit as st

from components.feedback import core_errors
from components.text import md
from core.channels.notifications import retry_notification
from core.identity.permissions import Action, allowed

if TYPE_CHECKING:
    from core.store.db import Database
    from core.store.tables import Notification


def delivery_table(rows: Sequence[Notification]) -> None:
    st.dataframe(
        {
            "channel": [r.channel for r in rows],
            "recipient": [r.recipient for r in rows],
            "kind": [r.kind for r in rows],
            "status": [r.status for r in rows],
            "attempts": [r.attempts for r in rows],
            "last error": [r.last_error or "" for r in rows],
        },
        hide_index=True,
        key="deliveries.table",
    )


def deliveries_panel(db: Database, rows: Sequence[Notification], *, actor: str, can_retry: bool) -> None:
    """The delivery list; a dead notification gets a Retry button for whoever may
    (``can_retry`` and core.identity.permissions' deliveries:retry: admins)."""
    if not rows:
        st.caption("No notifications were queued for this request (no channel configured).")
        return
    delivery_table(rows)
    for row in rows:
        if (
            row.status != "dead"
            or not can_retry
            or not allowed(db, actor, Action.DELIVERIES_RETRY, workflow=row.workflow_id)
        ):
            continue
        label = f"Retry {md(row.channel)} to {md(row.recipient)}"
        if st.button(label, key=f"deliveries.retry.{row.id}"):
            with core_errors():
                retry_notification(db, row.id, actor)
                st.success(f"Queued again: {md(row.channel)} to {md(row.recipient)}.")
