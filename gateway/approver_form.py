"""The Gradio approver's answer form, drawn from the request's JSON schema.

One widget per property of the answer schema, the way the dashboard reads a
schema (``components._schema_resolve``: ``$ref``, ``allOf``, enums and
``oneOf`` lists of constants, formats): a text box, a number field with the
schema's bounds, a check box, a drop-down or a multi-select. A property the
form cannot draw as one widget (an object, a list of objects, alternatives)
gets a JSON box of its own, pre-filled with its default. Nothing here
validates: :func:`answer_of` turns the widgets' values back into the answer
and the engine checks it against the schema, as for every channel.

Choices travel as their position (``"0"``, ``"1"``...): Gradio's drop-downs
hold strings and numbers only, an enum may hold anything JSON does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import gradio as gr

from components._schema_resolve import Choices, Undrawable, choices, field_kind, humanise, resolve, sub_ui
from core.base.errors import InvalidResponse

__all__ = [
    "FormField",
    "answer_of",
    "bounds_text",
    "draw",
    "drawable",
    "drawn_for_another",
    "form_fields",
    "titled",
]

# Longer strings get a text area instead of one line.
LONG_TEXT_CHARS = 200
# Widgets drawn as themselves; every other kind is a JSON box.
DRAWN_KINDS = frozenset({"text", "date", "date-time", "time", "number", "boolean", "choice", "multiselect"})


@dataclass(frozen=True)
class FormField:
    """One property of the answer and how it is drawn."""

    name: str
    kind: str  # a DRAWN_KINDS member, "const", "hidden" or "json"
    label: str
    info: str | None
    required: bool
    default: Any
    options: Choices | None = None
    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False
    long_text: bool = False
    # Whether a bound excludes its own value (``exclusiveMinimum``: more than 0, not from 0).
    above_minimum: bool = False
    below_maximum: bool = False

    @property
    def drawn(self) -> bool:
        """Whether it gets a widget (a constant or a hidden field is sent, never asked)."""
        return self.kind not in ("const", "hidden")


def _field(name: str, raw: Any, ui: dict[str, Any], root: dict[str, Any], required: bool) -> FormField:
    try:
        schema = resolve(raw, root)
        kind = field_kind(schema, ui, root)
    except Undrawable:
        schema, kind = (raw if isinstance(raw, dict) else {}), "json"
    if kind not in DRAWN_KINDS and kind not in ("const", "hidden"):
        kind = "json"
    label = str(ui.get("ui:title") or schema.get("title") or humanise(name)) + (" *" if required else "")
    info = ui.get("ui:help") or schema.get("description")
    options = None
    if kind in ("choice", "multiselect"):
        items = schema if kind == "choice" else resolve(schema.get("items") or {}, root)
        options = choices(items, sub_ui(ui, "items") if kind == "multiselect" else ui, root)
    minimum, above_minimum = _bound(schema, "minimum", "exclusiveMinimum")
    maximum, below_maximum = _bound(schema, "maximum", "exclusiveMaximum")
    return FormField(
        name=name,
        kind=kind,
        label=label,
        info=str(info) if info else None,
        required=required,
        default=schema.get("const") if kind == "const" else schema.get("default"),
        options=options,
        minimum=minimum,
        maximum=maximum,
        integer=schema.get("type") == "integer",
        long_text=ui.get("ui:widget") == "textarea" or int(schema.get("maxLength") or 0) > LONG_TEXT_CHARS,
        above_minimum=above_minimum,
        below_maximum=below_maximum,
    )


def _number(value: Any) -> float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _bound(schema: dict[str, Any], inclusive: str, exclusive: str) -> tuple[float | None, bool]:
    """A bound of a number and whether it excludes its own value: ``exclusiveMinimum: 0``
    (draft 6 on), or ``minimum: 0`` with ``exclusiveMinimum: true`` (draft 4); the
    tighter one when both are given."""
    plain, strict = _number(schema.get(inclusive)), _number(schema.get(exclusive))
    if strict is None:
        return plain, plain is not None and schema.get(exclusive) is True
    if plain is None:
        return strict, True
    tighter_strict = strict >= plain if inclusive == "minimum" else strict <= plain
    return (strict, True) if tighter_strict else (plain, False)


def form_fields(schema: dict[str, Any] | None, ui_schema: dict[str, Any] | None = None) -> list[FormField]:
    """The answer's fields, in the schema's (or ``ui:order``'s) order."""
    if not isinstance(schema, dict):
        return []
    ui = ui_schema if isinstance(ui_schema, dict) else {}
    try:
        root = resolve(schema, schema)
    except Undrawable:
        return [FormField("", "json", "Answer (JSON)", None, True, {})]
    found = root.get("properties")
    properties: dict[str, Any] = found if isinstance(found, dict) else {}
    required = set(root.get("required") or [])
    order = [n for n in (ui.get("ui:order") or []) if n in properties]
    names = order + [n for n in properties if n not in order]
    return [_field(n, properties[n], sub_ui(ui, n), schema, n in required) for n in names]


def _index(options: Choices, value: Any) -> str | None:
    for i, known in enumerate(options.values):
        if known == value and type(known) is type(value):
            return str(i)
    return None


def _figure(value: float) -> str:
    """A bound as people write it: 5000, 2.5 (never 5e+03)."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def bounds_text(field: FormField) -> str:
    """The field's bounds in words, as the engine applies them: "from 1 to 10", "more than
    0 and at most 5000" (an exclusive bound is never said as "from")."""
    low, high = field.minimum, field.maximum
    if low is not None and high is not None and not (field.above_minimum or field.below_maximum):
        return f"from {_figure(low)} to {_figure(high)}"
    words = []
    if low is not None:
        words.append(f"{'more than' if field.above_minimum else 'at least'} {_figure(low)}")
    if high is not None:
        words.append(f"{'less than' if field.below_maximum else 'at most'} {_figure(high)}")
    return " and ".join(words)


def draw(field: FormField) -> gr.Component | None:
    """The widget for one field (None for a constant or hidden one), its value the default."""
    elem_id = f"cs-field-{field.name}"
    # No Gradio ``key``: a keyed widget keeps what was typed into it when the form is
    # drawn again, and a value meant for one request must never carry over to the next.
    common: dict[str, Any] = {
        "label": field.label,
        "info": field.info,
        "elem_id": elem_id,
        "interactive": True,
    }
    if not field.drawn:
        return None
    if field.kind in ("choice", "multiselect") and field.options is not None:
        listed = [(label, str(i)) for i, label in enumerate(field.options.labels)]
        if field.kind == "choice":
            return gr.Dropdown(choices=listed, value=_index(field.options, field.default), **common)
        defaults = field.default if isinstance(field.default, list) else []
        chosen = [i for i in (_index(field.options, d) for d in defaults) if i is not None]
        return gr.Dropdown(choices=listed, value=chosen, multiselect=True, **common)
    if field.kind == "number":
        # The bounds are said, not enforced by Gradio (its refusal is a bare "Error"
        # toast): the engine refuses an answer out of range with a sentence.
        bounds = bounds_text(field)
        if bounds and field.info:  # the dashboard's sentence: "... Must be more than 0 and at most 5000."
            stop = "" if field.info.rstrip().endswith((".", "!", "?")) else "."
            common["info"] = f"{field.info.rstrip()}{stop} Must be {bounds}."
        elif bounds:
            common["info"] = bounds[:1].upper() + bounds[1:]
        return gr.Number(value=field.default, precision=0 if field.integer else None, **common)
    if field.kind == "boolean":
        return gr.Checkbox(value=bool(field.default), **common)
    if field.kind in ("text", "date", "date-time", "time"):
        hint = {"date": "YYYY-MM-DD", "date-time": "YYYY-MM-DDTHH:MM:SSZ", "time": "HH:MM:SS"}
        return gr.Textbox(
            value=field.default if isinstance(field.default, str) else "",
            lines=4 if field.long_text else 1,
            placeholder=hint.get(field.kind),
            **common,
        )
    default = json.dumps(field.default, indent=2) if field.default is not None else ""
    label = f"{field.label} (JSON{': ' + field.info if field.info else ''})"
    return gr.Code(value=default, language="json", label=label, elem_id=elem_id, interactive=True)


def drawable(fields: list[FormField]) -> list[FormField]:
    """The fields that get a widget."""
    return [f for f in fields if f.drawn]


def drawn_for_another(
    approval_id: str | None, drawn_for: str, fields: list[FormField], values: tuple[Any, ...] | list[Any]
) -> bool:
    """Whether a click on the form of ``approval_id`` (its ``fields`` read again now)
    raced a drawing: the form that sent it was drawn for another request
    (``drawn_for``), or holds another number of widgets than these fields get. Its
    values would be read against the wrong fields: it is not sent."""
    return bool(approval_id) and (drawn_for != approval_id or len(values) != len(drawable(fields)))


def answer_of(fields: list[FormField], values: list[Any]) -> dict[str, Any]:
    """The answer the drawn widgets hold (``values`` in the order of the drawn fields).

    An empty optional field is left out; a JSON box that does not parse is refused
    naming its field. The engine validates the rest against the schema."""
    answer: dict[str, Any] = {}
    drawn = iter(values)
    for field in fields:
        if not field.drawn:
            if field.default is not None:
                answer[field.name] = field.default
            continue
        value = next(drawn, None)
        if field.kind in ("choice", "multiselect") and field.options is not None:
            if field.kind == "choice":
                if value not in (None, ""):
                    answer[field.name] = field.options.values[int(value)]
            else:
                answer[field.name] = [field.options.values[int(i)] for i in value or []]
        elif field.kind == "number":
            if value is not None:
                answer[field.name] = int(value) if field.integer and float(value).is_integer() else value
        elif field.kind == "boolean":
            answer[field.name] = bool(value)
        elif field.kind in ("text", "date", "date-time", "time"):
            if value or field.required:
                answer[field.name] = value or ""
        else:
            text = (value or "").strip()
            if not text:
                continue
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InvalidResponse([f"{field.label.rstrip(' *')}: not valid JSON ({exc.msg})"]) from None
            if field.name:
                answer[field.name] = parsed
            elif isinstance(parsed, dict):
                answer.update(parsed)
    return answer


def titled(problems: list[str], fields: list[FormField]) -> list[str]:
    """The engine's problems ("approved_amount: must be more than 0", by path) with the
    field's title in place of its name, as the dashboard writes them under each field
    ("Approved amount (USD): must be more than 0"); a deeper path keeps its rest
    ("Window › start: ..."). A problem that names no field of the form (the call's
    arguments, the whole answer) is left as it is."""
    titles = {f.name: f.label.removesuffix(" *") for f in fields if f.name}
    named = []
    for problem in problems:
        path, colon, rest = problem.partition(": ")
        first, dot, deeper = path.partition(".")
        if colon and first in titles:
            problem = f"{titles[first]}{' › ' + deeper if dot else ''}: {rest}"
        named.append(problem)
    return named
