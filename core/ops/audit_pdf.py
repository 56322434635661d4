"""The auditor's record (core.ops.audit_export) as a PDF, drawn with reportlab.

Every value from the database goes through ``_text`` (XML-escaped) before
reportlab's paragraph markup sees it, so an approver's comment or a tool
argument is printed, never interpreted.
"""

from __future__ import annotations

import io
import json
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from core.ops.audit_export import AuditRecord, RequestRecord

_STYLES = getSampleStyleSheet()
_BODY = _STYLES["BodyText"]
_SMALL = ParagraphStyle("small", parent=_BODY, fontSize=8, leading=10)
_MONO = ParagraphStyle("mono", parent=_SMALL, fontName="Courier")
_GRID = TableStyle(
    [
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
)


def _text(value: Any, style: ParagraphStyle = _SMALL) -> Paragraph:
    shown = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return Paragraph(escape(shown).replace("\n", "<br/>"), style)


def _spaced(digest: str | None) -> str:
    """A hash in groups of 16, so the table can wrap it (whole: auditors compare it)."""
    return "unsealed" if digest is None else " ".join(digest[i : i + 16] for i in range(0, 64, 16))


def _table(header: list[str], rows: list[list[Any]], widths: list[float]) -> Table:
    table = Table(
        [[_text(h) for h in header], *[[_text(c) for c in row] for row in rows]],
        colWidths=[w * mm for w in widths],
        repeatRows=1,
    )
    table.setStyle(_GRID)
    return table


def _request(request: RequestRecord) -> list[Flowable]:
    parts: list[Flowable] = [
        Paragraph(escape(f"Request {request.title!r} ({request.type})"), _STYLES["Heading2"]),
        _text(
            f"id {request.id}, step {request.step or '-'}, opened {request.opened_at} "
            f"by {request.requested_by}"
        ),
        Paragraph("Who was asked", _STYLES["Heading4"]),
        _table(
            ["when", "round", "approvers"],
            [[a["when"], a["round"], ", ".join(a["approvers"])] for a in request.asked],
            [45, 25, 100],
        ),
        Paragraph("What they saw", _STYLES["Heading4"]),
        _text(request.shown, _MONO),
        Paragraph("What they decided", _STYLES["Heading4"]),
        _table(
            ["when", "approver", "decision", "channel", "verified identity", "comment"],
            [[v.at, v.approver, v.decision, v.channel, v.identity, v.comment] for v in request.votes]
            or [["-", "no one answered", "", "", "", ""]],
            [30, 32, 18, 18, 50, 22],
        ),
        _text(
            f"Outcome: {request.outcome}"
            + (f" by {request.decided_by} at {request.decided_at}" if request.decided_by else "")
        ),
        Paragraph("What ran", _STYLES["Heading4"]),
    ]
    if request.mismatches:
        parts[1:1] = [
            _text("Differs from the sealed trail (the sealed values are shown):", _BODY),
            *[_text(note) for note in request.mismatches],
        ]
    if request.released_call is None:
        parts.append(_text("Nothing was released."))
    else:
        parts.append(_text({"released_call": request.released_call}, _MONO))
        if request.ran is not None:
            parts.append(
                _text(
                    f"Step {request.ran['step']} (run {request.ran['step_run']}): "
                    f"{request.ran['status']}, finished {request.ran['finished_at']}"
                )
            )
    return [*parts, Spacer(1, 6 * mm)]


def render_pdf(record: AuditRecord) -> bytes:
    """The record as PDF bytes (A4)."""
    workflow, trail = record.workflow, record.trail
    story: list[Flowable] = [
        Paragraph(escape(f"Audit record: {workflow['name']}"), _STYLES["Title"]),
        _text(
            f"Workflow {workflow['id']} ({workflow['status']}), started by "
            f"{workflow['created_by']} at {workflow['created_at']}"
            + (f", tenant {workflow['tenant']}" if workflow["tenant"] else "")
        ),
        Spacer(1, 3 * mm),
        _text(
            (
                "Trail verified: the hash chain of its " + str(trail["entries"]) + " entries is intact."
                if trail["intact"]
                else f"TRAIL BROKEN: {trail['broken']}"
                if trail["broken"]
                else f"TRAIL CONTRADICTED: {len(trail['mismatches'])} stored value(s) differ from "
                "the sealed trail; this record states the sealed values."
            ),
            _BODY,
        ),
        *[_text(note) for note in trail.get("mismatches") or []],
        _text(f"Chain head (SHA-256): {trail['head']}", _MONO),
        Spacer(1, 6 * mm),
    ]
    for request in record.requests:
        story += _request(request)
    story += [
        Paragraph("Trail entries", _STYLES["Heading2"]),
        _table(
            ["#", "when", "entry", "actor", "SHA-256"],
            [[e["seq"], e["at"], e["type"], e["actor"], _spaced(e["hash"])] for e in record.entries],
            [8, 34, 36, 36, 56],
        ),
    ]
    out = io.BytesIO()
    SimpleDocTemplate(
        out, pagesize=A4, title=f"Audit record {workflow['id']}", leftMargin=15 * mm, rightMargin=15 * mm
    ).build(story)
    return out.getvalue()


__all__ = ["render_pdf"]
