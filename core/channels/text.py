"""Text helpers the channels share: one-line text, Slack mrkdwn escaping, the email templates.

The approval and alert renderers of every channel use these, so alert
messages (core.channels.alerts) and approval messages escape alike.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES = Path(__file__).parent / "templates"
# The Slack action id of the button that opens Countersign's dashboard.
SLACK_OPEN_ACTION = "countersign_open"


@lru_cache(maxsize=1)
def email_templates() -> Environment:
    """The email templates: HTML autoescaped, plain text not, undefined names refused."""
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(
            enabled_extensions=("html.j2",), disabled_extensions=("txt.j2",), default=True
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def one_line(text: str) -> str:
    return " ".join(text.split())


def mrkdwn_escape(text: str) -> str:
    """Make agent-written text inert in Slack mrkdwn."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
