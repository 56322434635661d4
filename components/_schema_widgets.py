"""Streamlit widgets for one JSON Schema field each, used by ``schema_form``.

Every drawer returns the field's value, or ``MISSING`` when the field is
empty (so an optional field is left out of the answer rather than sent as
``""`` or ``null``). Every widget's key is ``<form key>.<field path>``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import replace
from datetime import date, datetime, time
from typing import Any, Literal

import streamlit as st

from components._schema_field import MISSING, Context, Field, add_slot, widget_key
from components._schema_resolve import (
    MAX_DEPTH,
    Undrawable,
    choices,
    field_kind,
    humanise,
    resolve,
    sub_ui,
)
from components.text import md

log = logging.getLogger(__name__)


_FIRST_DAY, _LAST_DAY = date(1900, 1, 1), date(2999, 12, 31)


def draw(f: Field, ctx: Context) -> Any:
    """Draw one field with the widget its schema calls for; never raises."""
    try:
        if len(f.path) > MAX_DEPTH:
            raise Undrawable("nested too deeply")
        followed: list[str] = []
        f = replace(f, schema=resolve(f.schema, ctx.root, followed))
        again = f.refs.intersection(followed)
        if again:
            raise Undrawable(f"a recursive reference ({', '.join(sorted(again))})")
        f = replace(f, refs=f.refs.union(followed))
        kind = field_kind(f.schema, f.ui, ctx.root, top=not f.path)
    except Undrawable as exc:
        if exc.ref is not None:
            ctx.broken_refs[exc.ref.lstrip("#")] = f.dpath
        return draw_json(f, ctx, exc.reason)
    try:
        return DRAWERS[kind](f, ctx)
    except Exception as exc:  # noqa: BLE001 - a widget refused what this schema asked of it
        log.warning("schema_form: %s falls back to JSON: %s", f.key, exc)
        return draw_json(f, ctx, str(exc), suffix=".json")


def draw_json(f: Field, ctx: Context, reason: str, suffix: str = "") -> Any:
    start = f.start()
    text = "" if start is MISSING else json.dumps(start, indent=2, default=str)
    note = f"Enter JSON: this field cannot be drawn as a form ({reason})."
    help_text = f"{f.help()}\n\n{note}" if f.help() else note
    raw = st.text_area(
        f.label(),
        value=text,
        key=widget_key(ctx, f, suffix),
        help=help_text,
        disabled=f.disabled(),
        placeholder="JSON",
    )
    add_slot(ctx, f)
    if not raw or not raw.strip():
        return MISSING
    try:
        return json.loads(raw)
    except ValueError as exc:
        ctx.problems.append((f.dpath, f"{f.title()}: not valid JSON ({exc})"))
        return MISSING


def draw_hidden(f: Field, ctx: Context) -> Any:
    return f.start()


def draw_const(f: Field, ctx: Context) -> Any:
    const = f.schema["const"]
    shown = const if isinstance(const, str) else json.dumps(const, default=str)
    st.text_input(f.label(), value=shown, key=widget_key(ctx, f), help=f.help(), disabled=True)
    add_slot(ctx, f)
    return const


def _rows_height(f: Field) -> int | None:
    rows = f.options().get("rows")
    return max(68, int(rows) * 24 + 20) if isinstance(rows, int) and rows > 0 else None


def draw_text(f: Field, ctx: Context) -> Any:
    s = f.schema
    start = f.start()
    text = "" if start is MISSING or start is None else str(start)
    widget = f.ui.get("ui:widget") or s.get("format")
    max_chars = s.get("maxLength") if isinstance(s.get("maxLength"), int) and s["maxLength"] > 0 else None
    examples = s.get("examples") if isinstance(s.get("examples"), list) else []
    placeholder = (
        f.ui.get("ui:placeholder")
        or (str(examples[0]) if examples else None)
        or {"email": "name@example.com", "uri": "https://", "url": "https://"}.get(str(s.get("format")))
    )
    common: dict[str, Any] = {
        "key": widget_key(ctx, f),
        "help": f.help(),
        "disabled": f.disabled(),
        "max_chars": max_chars,
        "placeholder": placeholder,
    }
    if max_chars is not None and len(text) > max_chars:
        text = ""
    if widget == "textarea":
        value = st.text_area(f.label(), value=text, height=_rows_height(f), **common)
    else:
        kind: Literal["password", "default"] = "password" if widget == "password" else "default"
        value = st.text_input(f.label(), text, type=kind, **common)
    add_slot(ctx, f)
    return value if value and value.strip() else MISSING


def _bound(s: dict[str, Any], integer: bool, low: bool) -> float | int | None:
    inclusive = s.get("minimum" if low else "maximum")
    exclusive = s.get("exclusiveMinimum" if low else "exclusiveMaximum")
    if isinstance(exclusive, bool):  # draft-04 spelling: a flag on minimum/maximum
        exclusive, inclusive = (inclusive if exclusive else None), (None if exclusive else inclusive)
    best: float | None = None
    for value, strict in ((inclusive, False), (exclusive, True)):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if integer:
                value = (
                    (math.floor(value) + 1 if strict else math.ceil(value))
                    if low
                    else (math.ceil(value) - 1 if strict else math.floor(value))
                )
            if best is None or (value > best if low else value < best):
                best = value
    if best is None:
        return None
    return int(best) if integer else float(best)


def _figure(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def range_words(schema: dict[str, Any]) -> str:
    """The schema's bounds in words: "more than 0 and at most 50000" ("" when none)."""

    def number(key: str) -> Any:
        value = schema.get(key)
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None

    low, high = number("minimum"), number("maximum")
    low_x, high_x = number("exclusiveMinimum"), number("exclusiveMaximum")
    words = []
    if low_x is not None or (schema.get("exclusiveMinimum") is True and low is not None):
        words.append(f"more than {_figure(low_x if low_x is not None else low)}")
    elif low is not None:
        words.append(f"at least {_figure(low)}")
    if high_x is not None or (schema.get("exclusiveMaximum") is True and high is not None):
        words.append(f"less than {_figure(high_x if high_x is not None else high)}")
    elif high is not None:
        words.append(f"at most {_figure(high)}")
    return " and ".join(words)


def draw_number(f: Field, ctx: Context) -> Any:
    s = f.schema
    integer = s.get("type") == "integer" or (isinstance(s.get("type"), list) and "integer" in s["type"])
    cast: Callable[[Any], Any] = int if integer else float
    low, high = _bound(s, integer, True), _bound(s, integer, False)
    if low is not None and high is not None and low > high:
        low = high = None
    step = s.get("multipleOf")
    if (
        not isinstance(step, (int, float))
        or isinstance(step, bool)
        or step <= 0
        or (integer and step != int(step))
    ):
        step = None
    start = f.start()
    value = None
    if isinstance(start, (int, float)) and not isinstance(start, bool):
        inside = (low is None or start >= low) and (high is None or start <= high)
        value = cast(start) if inside else None
    fmt = None
    if step is not None and not integer:
        fmt = f"%.{len(f'{step:.10f}'.rstrip('0').split('.')[1])}f"
    if f.ui.get("ui:widget") == "range" and low is not None and high is not None:
        got = st.slider(
            f.label(),
            min_value=low,
            max_value=high,
            value=value if value is not None else low,
            step=cast(step) if step is not None else None,
            key=widget_key(ctx, f),
            help=f.help(),
            disabled=f.disabled(),
        )
        add_slot(ctx, f)
        return cast(got)
    # No min_value/max_value: the widget would snap an out-of-range number back
    # silently; the schema's check refuses it under the field with a sentence instead.
    said = range_words(s)
    got = st.number_input(
        f.label(),
        value=value,
        step=cast(step) if step is not None else (1 if integer else None),
        format=fmt,
        key=widget_key(ctx, f),
        disabled=f.disabled(),
        help=" ".join(p for p in (f.help() or "", f"Must be {said}." if said else "") if p) or None,
        placeholder=f.ui.get("ui:placeholder"),
    )
    add_slot(ctx, f)
    return MISSING if got is None else cast(got)


def draw_boolean(f: Field, ctx: Context) -> Any:
    start = f.start()
    checked = start if isinstance(start, bool) else False
    widget = f.ui.get("ui:widget")
    args: dict[str, Any] = {"key": widget_key(ctx, f), "help": f.help(), "disabled": f.disabled()}
    if widget in ("radio", "select"):
        pick: Callable[..., Any] = st.selectbox
        if widget == "radio":
            pick = st.radio
        index = None if not isinstance(start, bool) else (0 if start else 1)
        got = pick(f.label(), [True, False], index=index, format_func=lambda v: "Yes" if v else "No", **args)
        add_slot(ctx, f)
        return MISSING if got is None else got
    tick: Callable[..., Any] = st.checkbox
    if widget == "toggle":
        tick = st.toggle
    got = tick(f.label(), value=checked, **args)
    add_slot(ctx, f)
    return bool(got)


def draw_choice(f: Field, ctx: Context) -> Any:
    found = choices(f.schema, f.ui, ctx.root)
    assert found is not None
    start = f.start()
    index = next((i for i, v in enumerate(found.values) if v == start and type(v) is type(start)), None)
    args: dict[str, Any] = {
        "index": index,
        "format_func": found.label,
        "key": widget_key(ctx, f),
        "help": f.help(),
        "disabled": f.disabled(),
    }
    if f.ui.get("ui:widget") == "radio":
        # A radio's options render Markdown (maths too); a select box's are plain text.
        args["format_func"] = lambda value: md(found.label(value))
        got = st.radio(f.label(), found.values, horizontal=bool(f.options().get("inline")), **args)
    else:
        got = st.selectbox(f.label(), found.values, placeholder=f.ui.get("ui:placeholder"), **args)
    add_slot(ctx, f)
    return MISSING if got is None else got


def draw_multiselect(f: Field, ctx: Context) -> Any:
    s = f.schema
    item_ui = sub_ui(f.ui, "items")
    found = choices(resolve(s["items"], ctx.root), item_ui, ctx.root)
    assert found is not None
    start = f.start()
    picked = [v for v in found.values if isinstance(start, list) and v in start]
    most = s.get("maxItems") if isinstance(s.get("maxItems"), int) and s["maxItems"] > 0 else None
    got = st.multiselect(
        f.label(),
        found.values,
        default=picked[:most] if most else picked,
        format_func=found.label,
        key=widget_key(ctx, f),
        help=f.help(),
        disabled=f.disabled(),
        max_selections=most,
    )
    add_slot(ctx, f)
    return list(got) if got or f.required else MISSING


def _parse_moment(raw: Any, ctx: Context) -> datetime | None:
    if not isinstance(raw, str):
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(ctx.tz).replace(tzinfo=None)
    return moment


def draw_date(f: Field, ctx: Context) -> Any:
    start = f.start()
    try:
        first = date.fromisoformat(start) if isinstance(start, str) else None
    except ValueError:
        first = None
    if first is not None and not _FIRST_DAY <= first <= _LAST_DAY:
        first = None
    got = st.date_input(
        f.label(),
        value=first,
        min_value=_FIRST_DAY,
        max_value=_LAST_DAY,
        key=widget_key(ctx, f),
        help=f.help(),
        disabled=f.disabled(),
        format="YYYY-MM-DD",
    )
    add_slot(ctx, f)
    return got.isoformat() if isinstance(got, date) else MISSING


def draw_datetime(f: Field, ctx: Context) -> Any:
    """Shown in the viewer's browser time zone (UTC when unknown), sent with its offset."""
    first = _parse_moment(f.start(), ctx)
    low, high = datetime.combine(_FIRST_DAY, time()), datetime.combine(_LAST_DAY, time(23, 59))
    if first is not None and not low <= first <= high:
        first = None
    got = st.datetime_input(
        f.label(),
        value=first,
        min_value=low,
        max_value=high,
        key=widget_key(ctx, f),
        help=f.help(),
        disabled=f.disabled(),
        format="YYYY-MM-DD",
        step=60,
    )
    add_slot(ctx, f)
    if not isinstance(got, datetime):
        return MISSING
    return got.replace(tzinfo=ctx.tz).isoformat(timespec="seconds")


def draw_time(f: Field, ctx: Context) -> Any:
    start = f.start()
    try:
        first = time.fromisoformat(start).replace(tzinfo=None) if isinstance(start, str) else None
    except ValueError:
        first = None
    got = st.time_input(
        f.label(), value=first, key=widget_key(ctx, f), help=f.help(), disabled=f.disabled(), step=60
    )
    add_slot(ctx, f)
    # HH:MM:SS without an offset: jsonschema's FormatChecker() (used here and by
    # core.definitions.approval_schema) checks "time" with its draft-3 rule, which refuses one.
    return got.isoformat(timespec="seconds") if isinstance(got, time) else MISSING


def draw_object(f: Field, ctx: Context) -> Any:
    s = f.schema
    props = s.get("properties") if isinstance(s.get("properties"), dict) else {}
    needed = set(s.get("required") or [])
    start = f.start()
    start = start if isinstance(start, dict) else {}
    order = f.ui.get("ui:order")
    names = list(props)
    if isinstance(order, list):
        listed = [n for n in order if n in props]
        rest = [n for n in names if n not in listed]
        at = order.index("*") if "*" in order else len(listed)
        names = listed[:at] + rest + listed[at:]
    out: dict[str, Any] = {}
    box = st.container(border=True, key=widget_key(ctx, f, ".box")) if f.path else nullcontext()
    with box:
        if f.path:
            st.markdown(f.heading())
            if f.help():
                st.caption(f.help())
        for name in names:
            child_ui = sub_ui(f.ui, name)
            child = Field(
                props[name],
                child_ui,
                f.path + (name,),
                f.dpath + (name,),
                humanise(name),
                required=name in needed,
                initial=start.get(name, MISSING),
                refs=f.refs,
                locked=f.disabled(),
            )
            value = draw(child, ctx)
            if value is not MISSING:
                out[name] = value
        add_slot(ctx, f)
    return out if out or f.required or not f.path else MISSING


def _rows_state(ctx: Context, f: Field, count: int) -> dict[str, Any]:
    """Which rows are shown (stable ids, so removing one keeps the others' values); UI state."""
    name = widget_key(ctx, f, ".rows")
    state = st.session_state.get(name)
    if not isinstance(state, dict):
        state = {"ids": list(range(count)), "next": count}
        st.session_state[name] = state
    return state


def _add_row(name: str) -> None:
    state = st.session_state[name]
    st.session_state[name] = {**state, "ids": [*state["ids"], state["next"]], "next": state["next"] + 1}


def _remove_row(name: str, row: int) -> None:
    state = st.session_state[name]
    st.session_state[name] = {**state, "ids": [i for i in state["ids"] if i != row]}


def draw_rows(f: Field, ctx: Context) -> Any:
    """An array of objects (or plain values), one bordered row each, with Add and Remove."""
    s = f.schema
    start = f.start()
    start = start if isinstance(start, list) else []
    least = s.get("minItems") if isinstance(s.get("minItems"), int) else 0
    most = s.get("maxItems") if isinstance(s.get("maxItems"), int) else None
    state = _rows_state(ctx, f, max(len(start), least))
    rows_name = widget_key(ctx, f, ".rows")
    item_ui = sub_ui(f.ui, "items")
    item_title = humanise(str(resolve(s["items"], ctx.root).get("title") or "Item"))
    locked = f.disabled()
    out: list[Any] = []
    with st.container(border=True, key=widget_key(ctx, f, ".box")):
        st.markdown(f.heading())
        if f.help():
            st.caption(f.help())
        for position, row in enumerate(state["ids"]):
            row_ui = {**item_ui, "ui:title": f"{item_title} {position + 1}"}
            item = Field(
                s["items"],
                row_ui,
                f.path + (row,),
                f.dpath + (len(out),),
                f"{item_title} {position + 1}",
                required=True,
                marker=False,
                initial=start[row] if row < len(start) else MISSING,
                refs=f.refs,
                locked=locked,
            )
            value = draw(item, ctx)
            if value is not MISSING:
                out.append(value)
            st.form_submit_button(
                f"Remove {item_title.lower()} {position + 1}",
                key=widget_key(ctx, item, ".remove"),
                on_click=_remove_row,
                args=(rows_name, row),
                disabled=locked or len(state["ids"]) <= least,
            )
        st.form_submit_button(
            f"Add {item_title.lower()}",
            key=widget_key(ctx, f, ".add"),
            on_click=_add_row,
            args=(rows_name,),
            disabled=locked or (most is not None and len(state["ids"]) >= most),
        )
        add_slot(ctx, f)
    return out if out or f.required else MISSING


DRAWERS: dict[str, Callable[[Field, Context], Any]] = {
    "hidden": draw_hidden,
    "const": draw_const,
    "text": draw_text,
    "number": draw_number,
    "boolean": draw_boolean,
    "choice": draw_choice,
    "multiselect": draw_multiselect,
    "date": draw_date,
    "date-time": draw_datetime,
    "time": draw_time,
    "object": draw_object,
    "rows": draw_rows,
}
