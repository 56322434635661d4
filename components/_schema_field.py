"""The field being drawn and the state one ``schema_form`` run shares, for ``schema_form``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

import streamlit as st

from components.text import md, md_lines


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass
class Slot:
    """Where a field's errors go: an empty placeholder right under its widget."""

    placeholder: Any
    label: str


@dataclass
class Context:
    key: str
    root: dict[str, Any]
    tz: tzinfo
    slots: dict[tuple[Any, ...], Slot] = field(default_factory=dict)
    problems: list[tuple[tuple[Any, ...], str]] = field(default_factory=list)
    broken_refs: dict[str, tuple[Any, ...]] = field(default_factory=dict)


@dataclass
class Field:
    schema: Any
    ui: dict[str, Any]
    path: tuple[Any, ...]  # names widget keys; array rows use stable row ids
    dpath: tuple[Any, ...]  # the same place in the submitted data (row index)
    name: str
    required: bool = False
    marker: bool = True
    initial: Any = MISSING
    refs: frozenset[str] = frozenset()  # $refs followed by the enclosing fields
    locked: bool = False  # inside a readOnly object or array

    @property
    def key(self) -> str:
        return self.path_key(self.path)

    def path_key(self, path: tuple[Any, ...]) -> str:
        return ".".join(str(p) for p in path) or "value"

    def heading(self) -> str:
        """The label as Markdown for a group (object or rows) heading; the schema's title
        (anyone's text) shown as written (``components.text.md``)."""
        return f"**{md(self.title())}**" + (" \\*" if self.required and self.marker else "")

    def title(self) -> str:
        schema = self.schema if isinstance(self.schema, dict) else {}
        return str(self.ui.get("ui:title") or schema.get("title") or self.name)

    def label(self) -> str:
        """A widget's label: Streamlit renders a Markdown subset (maths too) in it, so the
        title is escaped; ``title()`` is the plain text."""
        return md(self.title()) + (" *" if self.required and self.marker else "")

    def help(self) -> str | None:
        """The description as Markdown for a tooltip or caption, shown as written."""
        schema = self.schema if isinstance(self.schema, dict) else {}
        text = self.ui.get("ui:help") or self.ui.get("ui:description") or schema.get("description")
        return md_lines(text) if text else None

    def disabled(self) -> bool:
        schema = self.schema if isinstance(self.schema, dict) else {}
        return bool(
            self.locked or schema.get("readOnly") or self.ui.get("ui:readonly") or self.ui.get("ui:disabled")
        )

    def start(self) -> Any:
        """The value the widget starts from: the given answer, else the default."""
        if self.initial is not MISSING and self.initial is not None:
            return self.initial
        schema = self.schema if isinstance(self.schema, dict) else {}
        return schema.get("default", MISSING)

    def options(self) -> dict[str, Any]:
        opts = self.ui.get("ui:options")
        return opts if isinstance(opts, dict) else {}


def widget_key(ctx: Context, f: Field, suffix: str = "") -> str:
    return f"{ctx.key}.{f.key}{suffix}"


def add_slot(ctx: Context, f: Field) -> None:
    ctx.slots[f.dpath] = Slot(st.empty(), f.title())
