"""``schema_form``: any JSON Schema an approval may carry, drawn as a Streamlit form.

Draft-07 and 2020-12 schemas: strings (text, textarea, email, uri, date,
date-time, time, password), numbers and integers with bounds and steps,
booleans, enums (select or radio), ``oneOf``/``anyOf`` lists of ``const``
with titles, arrays of enums (multiselect), arrays of objects (rows with Add
and Remove), nested objects, ``$ref`` to ``definitions``/``$defs``, required
markers (`` *``), defaults, titles, descriptions as help, ``readOnly``
(disabled). A construct it cannot draw becomes a JSON text area for that
field. Submitted data is validated with ``jsonschema`` against the original
schema (formats included); each error is shown under the field it concerns.

``schema_fields`` draws the same fields inside a form the caller owns (so
one form can hold several schemas' fields and its own submit buttons) and
checks them on request.

Widget keys are ``f"{key}.{path}"`` (``key.address.city``, ``key.items.0.sku``
where ``0`` is a row's stable id); the submit button is ``f"{key}.submit"``.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from datetime import UTC, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import streamlit as st
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError, ValidationError
from jsonschema.validators import validator_for

from components._schema_field import MISSING, Context, Field
from components._schema_widgets import draw
from components.text import md
from core.base.schema_words import in_words

__all__ = ["Fields", "form_problems", "schema_defect", "schema_fields", "schema_form"]


def _browser_tz() -> tzinfo:
    try:
        name = st.context.timezone
        return ZoneInfo(name) if name else UTC
    except Exception:  # noqa: BLE001 - no browser (AppTest, bare mode) or an unknown zone name
        return UTC


def _broken_ref(exc: BaseException) -> str | None:
    """The reference jsonschema could not follow, spelt as in the schema minus its ``#``."""
    for source in (exc, exc.__cause__):
        anchor, ref = getattr(source, "anchor", None), getattr(source, "ref", None)
        if isinstance(anchor, str) and anchor:
            return anchor
        if isinstance(ref, str) and ref:
            return ref.lstrip("#")
    return None


def _describe(error: ValidationError) -> str:
    if error.validator == "format":
        return f"{error.instance!r} is not a valid {error.validator_value}"
    return in_words(error)


def schema_defect(schema: Any) -> str | None:
    """Why ``schema`` is not a valid JSON Schema for its draft, or None."""
    if isinstance(schema, bool):
        return None
    if not isinstance(schema, dict):
        return "the form's schema is not a JSON object"
    try:
        validator_for(schema, default=Draft202012Validator).check_schema(schema)
    except SchemaError as exc:
        return f"the form's schema is invalid: {exc.message}"
    except Exception as exc:  # noqa: BLE001 - a schema must never break the page
        return f"the form's schema cannot be read: {exc}"
    return None


def form_problems(schema: Any, data: Any) -> list[tuple[tuple[Any, ...], str]]:
    """Every way ``data`` breaks ``schema``, as (data path, message); never raises.

    A missing required property is reported at the property's own path, so
    the message lands under that field. The validator follows ``$schema``
    (draft-07, 2020-12, ...) and defaults to 2020-12.
    """
    if schema is True or schema == {}:
        return []
    defect = schema_defect(schema)
    if defect is not None or not isinstance(schema, dict):
        return [((), defect or "the form's schema is not a JSON object")]
    try:
        cls = validator_for(schema, default=Draft202012Validator)
        validator = cls(schema, format_checker=FormatChecker())
        errors = sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    except Exception as exc:  # noqa: BLE001 - an unresolvable $ref, ...
        ref = _broken_ref(exc)
        if ref is None:
            return [((), f"the answer cannot be checked: {exc}")]
        shown = ref if ":" in ref else f"#{ref}"
        return [
            (
                ("$ref", ref),
                f"the answer cannot be checked: the schema's reference {shown!r} does not resolve",
            )
        ]
    found: list[tuple[tuple[Any, ...], str]] = []
    for error in errors:
        path = tuple(error.absolute_path)
        if error.validator == "required" and isinstance(error.instance, dict):
            missing = [n for n in error.validator_value if n not in error.instance]
            named = [n for n in missing if f"{n!r} is a required property" == error.message]
            for name in named or missing:
                found.append((path + (name,), "this field is required"))
            continue
        found.append((path, _describe(error)))
    return list(dict.fromkeys(found))


def _place(ctx: Context, problems: list[tuple[tuple[Any, ...], str]]) -> None:
    """Write each problem under the nearest drawn field, naming that field."""
    by_slot: dict[tuple[Any, ...], list[str]] = defaultdict(list)
    for path, message in problems:
        if path[:1] == ("$ref",):
            path = ctx.broken_refs.get(str(path[1]).lstrip("#"), ())
        at = path
        while at not in ctx.slots and at:
            at = at[:-1]
        slot = ctx.slots.get(at)
        if slot is None:
            st.error(md(message))
            continue
        rest = ".".join(str(p) for p in path[len(at) :])
        name = f"{slot.label} › {rest}" if rest else slot.label
        text = message if message.startswith(f"{slot.label}:") else f"{name}: {message}"
        if text not in by_slot[at]:
            by_slot[at].append(text)
    for at, texts in by_slot.items():
        with ctx.slots[at].placeholder.container():
            for text in texts:
                st.error(md(text))  # the field's title and the typed value, as written


def _forget_other_forms(key: str, schema: Any, ui_schema: Any, value: Any) -> None:
    """Reset the form's widgets when ``key`` now draws another schema or value.

    Keyed Streamlit widgets keep their state whatever ``value=`` they are
    given later, so a page that reuses one key for request after request
    would otherwise show the previous request's answers.
    """
    try:
        sig = json.dumps([schema, ui_schema, value], sort_keys=True, default=str)
    except (TypeError, ValueError):
        sig = repr((schema, ui_schema, value))
    digest = hashlib.sha256(sig.encode()).hexdigest()
    name = f"{key}.__drawn"
    if st.session_state.get(name, digest) != digest:
        for old in [k for k in st.session_state if isinstance(k, str) and k.startswith(f"{key}.")]:
            del st.session_state[old]
    st.session_state[name] = digest


class Fields:
    """The fields ``schema_fields`` drew: their values now, and a check that places errors."""

    def __init__(self, schema: Any, data: Any, ctx: Context) -> None:
        self.schema = schema
        self.raw = {} if data is MISSING else data
        self._ctx = ctx

    def checked(self) -> Any:
        """The values once they satisfy the schema; else ``None``, with each error written
        under the field it concerns."""
        problems = list(self._ctx.problems)
        failed = {path for path, _ in problems}
        problems += [(p, m) for p, m in form_problems(self.schema, self.raw) if p not in failed]
        if problems:
            _place(self._ctx, problems)
            return None
        return self.raw


def schema_fields(
    schema: dict[str, Any],
    *,
    key: str,
    ui_schema: dict[str, Any] | None = None,
    value: dict[str, Any] | None = None,
) -> Fields:
    """Draw ``schema``'s fields inside the caller's ``st.form``; what they hold (``Fields``).

    The caller owns the form and its submit buttons, so one form can hold
    several schemas' fields; ``Fields.checked()`` validates once submitted.
    Keys, pre-filling and hints as for ``schema_form``.
    """
    _forget_other_forms(key, schema, ui_schema, value)
    root = schema if isinstance(schema, dict) else {}
    ctx = Context(key=key, root=root, tz=_browser_tz())
    top = Field(
        schema,
        ui_schema if isinstance(ui_schema, dict) else {},
        (),
        (),
        "Answer",
        required=True,
        marker=False,
        initial=value if value is not None else MISSING,
    )
    defect = schema_defect(schema)
    if defect is not None:
        st.warning(f"{defect[:1].upper()}{defect[1:]}. Answers cannot be checked until it is fixed.")
    return Fields(schema, draw(top, ctx), ctx)


def schema_form(
    schema: dict[str, Any],
    *,
    key: str,
    ui_schema: dict[str, Any] | None = None,
    value: dict[str, Any] | None = None,
    submit_label: str = "Submit",
) -> dict[str, Any] | None:
    """Draw ``schema`` as a form; the validated answer once submitted, else ``None``.

    ``value`` pre-fills the fields (over the schema's defaults); ``ui_schema``
    carries the seed's hints (``ui:widget``, ``ui:options.rows``,
    ``enumNames``, ``ui:order``, ``ui:help``, ``ui:placeholder``), nested like
    the schema's properties (``items`` for array rows). Empty optional fields
    are left out of the answer. Never raises: what cannot be drawn becomes a
    JSON text area, and what cannot be checked is reported as an error.
    """
    with st.form(key=f"{key}.form", border=False, enter_to_submit=False):
        fields = schema_fields(schema, key=key, ui_schema=ui_schema, value=value)
        submitted = st.form_submit_button(submit_label, key=f"{key}.submit", type="primary")
    if not submitted:
        return None
    answer: dict[str, Any] | None = fields.checked()
    return answer
