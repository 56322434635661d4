"""Core errors shown as plain messages.

A message may quote what an agent or a URL wrote (a step's name, an id from
the address bar, an approver list): it is shown as text (components.text),
never as Markdown."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import streamlit as st

from components.text import md, md_lines
from core.base import errors
from core.base.errors import CountersignError, DefinitionError, InvalidResponse

# Each kind of core error (core.base.errors.KINDS) is shown at its own level: a
# conflict with the current state (already decided, in use) is a warning, the rest errors.
LEVEL_BY_KIND: dict[type[CountersignError], str] = {
    errors.NotFound: "error",
    errors.Conflict: "warning",
    errors.Invalid: "error",
    errors.Forbidden: "error",
    errors.Unauthenticated: "error",
    errors.Unavailable: "error",
}


def level_for(exc: CountersignError) -> str:
    kind = errors.kind_of(exc)
    return LEVEL_BY_KIND[kind] if kind is not None else "error"


def show_error(exc: CountersignError) -> None:
    """The error's own sentence; for lists of problems, one line each."""
    problems = getattr(exc, "problems", None)
    if isinstance(exc, DefinitionError | InvalidResponse) and problems:
        heading = (
            "The workflow definition is invalid:"
            if isinstance(exc, DefinitionError)
            else "The answer is invalid:"
        )
        st.error(heading + "\n" + "\n".join(f"- {md(p)}" for p in problems))
        return
    (st.warning if level_for(exc) == "warning" else st.error)(md_lines(exc))


@contextlib.contextmanager
def core_errors() -> Iterator[None]:
    """Show any CountersignError raised inside as a message instead of a traceback."""
    try:
        yield
    except CountersignError as exc:
        show_error(exc)
