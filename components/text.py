"""Agent-written text shown as text: the one escaping helper for Markdown.

Titles, descriptions, context keys and values, step and checkpoint names,
workflow names, chat messages and tool arguments may all have been written
by an agent (or by whoever wrote its input). Wherever such text goes into
something Markdown renders (``st.markdown``, ``st.caption``, ``st.title``,
``st.subheader``, ``st.page_link`` labels, alerts' messages, Gradio's
Markdown), it goes through ``md`` (one line) or ``md_lines`` (line breaks
kept): every character that lets Markdown (CommonMark, GFM, Streamlit's
directives and maths) link, embed, format or pass HTML is backslash-escaped
wherever it stands, so is what opens a heading, list or quote at the start
of a line, and what GFM would turn into a link on its own (``https://``,
``www.``, an email address) gets an invisible word joiner. The text can
neither format, nor link, nor embed an image; ordinary punctuation stays as
written. Only our own static strings use Markdown; links a
person needs are drawn by us from ids (``st.page_link`` with query params).

Pure functions, no Streamlit: the gateway uses them too.
"""

from __future__ import annotations

import re
from typing import Any

# Characters that make Markdown (CommonMark, GFM, Streamlit's directives and maths)
# link, embed, format or run HTML anywhere in a line: always escaped.
MARKDOWN_SYNTAX = frozenset("\\`*_[]<>|~$&")
# What opens a heading, list, quote or setext heading at the start of a line.
_LINE_START = re.compile(r"^(\s*)([#+=-]|\d+[.)])")
# What GFM turns into links on its own (emails, www., scheme://): a word joiner (U+2060,
# invisible) after the trigger keeps it text.
_AUTOLINK = re.compile(r"@|:(?=//)|(?<![^\W_])www(?=\.)", re.IGNORECASE)
WORD_JOINER = "\u2060"


def _escaped(line: str) -> str:
    unlinked = _AUTOLINK.sub(lambda m: m.group(0) + WORD_JOINER, line)
    escaped = "".join(f"\\{c}" if c in MARKDOWN_SYNTAX else c for c in unlinked)
    return _LINE_START.sub(lambda m: m.group(1) + m.group(2)[:-1] + "\\" + m.group(2)[-1], escaped, count=1)


def md(text: Any) -> str:
    """``text`` for use inside our own Markdown: shown as written (no syntax, no automatic
    links), on one line (runs of white space, line breaks too, become one space)."""
    return _escaped(" ".join(("" if text is None else str(text)).split()))


def md_lines(text: Any) -> str:
    """Like ``md``, but each line of ``text`` stays a line (a Markdown hard break)."""
    lines = ("" if text is None else str(text)).replace("\r\n", "\n").replace("\r", "\n")
    return "  \n".join(md(line) or WORD_JOINER for line in lines.split("\n"))


__all__ = ["md", "md_lines", "MARKDOWN_SYNTAX", "WORD_JOINER"]
