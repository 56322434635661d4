"""How the Gradio approver shows a request: HTML blocks inside Markdown, every value
escaped, so agent text can neither mark up nor link nor embed an image.

The request is ``core.approvals.presentation``'s ``RequestView``: the guarded call
as a table (each argument now and as proposed), the amount in words, what
approving changes, a gate's facts, the chain of levels, votes and time left.
"""

from __future__ import annotations

import html
from typing import Any

from core.approvals.presentation import RequestView, plain

__all__ = ["action_table", "view_html"]


def _text(value: Any) -> str:
    """Agent text for an HTML block: escaped, its line breaks as <br>, never a blank line
    (which would end the block and let Markdown parse what follows)."""
    escaped = html.escape(value if isinstance(value, str) else plain(value))
    return "<br>".join(escaped.replace("\r\n", "\n").replace("\r", "\n").split("\n"))


def view_html(view: RequestView, expires: str = "", proposed_action: Any = None) -> str:
    """The request as the approver reads it: HTML blocks, one per line, separated by blank
    lines, every value escaped (Markdown is not parsed inside an HTML block)."""
    blocks = [f"<h3>{html.escape(' '.join(view.title.split()))}</h3>"]
    if view.notice:  # a veto window: when the call runs unless someone vetoes it
        blocks.append(f"<p><strong>{_text(view.notice)}</strong></p>")
    if view.description:
        blocks.append(f"<p>{_text(view.description)}</p>")
    blocks.append(
        f"<p><strong>Type:</strong> {_text(view.approval_type)} · <strong>Status:</strong> "
        f"{_text(view.status)} · <strong>Requested by:</strong> {_text(view.requested_by)}"
        + (f" · <strong>Expires:</strong> {_text(expires)}" if expires else "")
        + "</p>"
    )
    if view.tool is not None:
        rows = "".join(
            f"<tr><td><code>{_text(row.name)}</code></td><td>{_text(row.now)}</td>"
            f"<td>{_text(row.proposed) if row.changed else '(as proposed)'}</td></tr>"
            for row in view.arguments
        )
        blocks.append(f"<p><strong>Call:</strong> <code>{_text(view.tool)}</code></p>")
        blocks.append(
            "<table><thead><tr><th>Argument</th><th>Value</th><th>Proposed</th></tr>"
            f"</thead><tbody>{rows}</tbody></table>"
        )
    elif proposed_action:
        blocks.append(action_table(proposed_action))
    if view.amount_text:
        blocks.append(f"<p><strong>Amount:</strong> {_text(view.amount_text)}</p>")
    if view.changes:
        lines = "<br>".join(
            f"<code>{_text(c['argument'])}</code>: {_text(c['before'])} → {_text(c['after'])}"
            for c in view.changes
        )
        blocks.append(f"<p><strong>Approving releases these changes:</strong><br>{lines}</p>")
    if view.facts:
        rows = "".join(
            f"<tr><td>{_text(label)}</td><td>{_text(value)}</td></tr>" for label, value in view.facts
        )
        blocks.append(f"<table><tbody>{rows}</tbody></table>")
    blocks.append(
        f"<p><strong>Approvers:</strong> {_text(view.chain)} · <strong>Votes:</strong> "
        f"{view.approvals_so_far} of {view.threshold} needed · "
        f"{_text(view.time_left)}</p>"
    )
    return "\n\n".join(blocks)


def action_table(proposed_action: Any) -> str:
    """A proposed action (the step, the tool, its arguments...) as a two-column table,
    one row per field, nested values as plain text: never a JSON string to decode."""
    fields = proposed_action if isinstance(proposed_action, dict) else {"action": proposed_action}
    rows = "".join(
        f"<tr><td>{_text(str(name))}</td><td>{_text(value)}</td></tr>" for name, value in fields.items()
    )
    return (
        "<p><strong>Proposed action:</strong></p>\n\n"
        f"<table><thead><tr><th>Field</th><th>Value</th></tr></thead><tbody>{rows}</tbody></table>"
    )
