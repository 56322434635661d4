"""Core errors shown as plain messages.

A message may quote what an agent or a URL wrote (a step's name, an id from
the address bar, an approver list): it is shown as text (components.text),
never as Markdown."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import streamlit as st

from components.text import md, md_lines
from core.base.errors import CountersignError, DefinitionError, InvalidResponse


def show_error(exc: CountersignError) -> None:
    """The error's own sentence; for lists of problems, one line each."""
    problems = getattr(exc, "problems", None)
    if isinstance(exc, DefinitionError | InvalidResponse) and problems:
        heading = ("The workflow definition is invalid:" if isinstance(exc, DefinitionError)
                   else "The answer is invalid:")
        st.error(heading + "\n" + "\n".join(f"- {md(p)}" for p in problems))
        return
    st.error(md_lines(exc))


@contextlib.contextmanager
def core_errors() -> Iterator[None]:
    """Show any CountersignError raised inside as a message instead of a traceback."""
    try:
        yield
    except CountersignError as exc:
        show_error(exc)
