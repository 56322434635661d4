"""The auditor's record of a workflow as a file: JSON Lines (core.ops.audit_export)
or PDF (core.ops.audit_pdf); ``python -m core audit export`` writes it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.base.errors import Invalid
from core.ops.audit_export import audit_record, jsonl_lines
from core.ops.audit_pdf import render_pdf

if TYPE_CHECKING:
    from core.store.db import Database

FORMATS = ("jsonl", "pdf")


def export(db: Database, actor: str, workflow_id: str, fmt: str) -> bytes:
    """The record as ``fmt`` (jsonl or pdf) bytes (audit:read, within the actor's tenant)."""
    if fmt not in FORMATS:
        raise Invalid(f"Unknown export format {fmt!r}: use one of {', '.join(FORMATS)}.")
    record = audit_record(db, actor, workflow_id)
    if fmt == "jsonl":
        return ("\n".join(jsonl_lines(record)) + "\n").encode("utf-8")
    return render_pdf(record)


__all__ = ["FORMATS", "export"]
