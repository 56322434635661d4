"""An approver's edit, as Slack, email and Gradio collect it, turned into one answer.

Each channel draws its inputs from the guarded call's input schema
(``argument_fields``: one field per argument, pre-filled with the value the
call has now) and, for a budget, an approved-amount input. What comes back is
text; ``read_inputs`` turns it into the arguments that changed, and
``answer_for`` into the decision and data ``record_response`` takes:
``{"arguments": {...}}`` (only what changed) and ``{"approved_amount": N}``.

Nothing is checked here that the engine checks: a value that does not parse
as the schema's type is passed on as typed, so the engine refuses it and
names the argument. Only text that cannot become any value, or could become
a value other than the one typed, is refused here, by field: JSON that does
not parse, and a number with a comma that is not a thousands separator
("9,50"), one that is not finite ("inf", "1e309"), too long, or with more
digits than a float keeps. A number is read exactly (an integer as an int,
however long; compared as a ``Decimal``), never through a float first.

A text area's line endings are not the approver's: a browser submits every
line break as CRLF, so a string whose text differs from the value now only
in its line endings is no change, and an edited one gets the line endings
the value had (LF unless it had CRLF).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from core.approvals.once import ANY, respond_once
from core.approvals.presentation import RequestView, plain
from core.base.errors import InvalidResponse
from core.base.storable import MAX_NESTING, json_too_deep

if TYPE_CHECKING:
    from core.store.db import Database
    from core.store.tables import ApprovalRequest

# Kinds of input: a line or text area, a number, a choice, or JSON for the rest.
STRING, NUMBER, INTEGER, BOOLEAN, CHOICE, JSON_TEXT = (
    "string",
    "number",
    "integer",
    "boolean",
    "choice",
    "json",
)
MAX_CHOICES = 100
# Longer values are shown multi-line.
LINE_CHARS = 80
# Where a refusal that names no argument is shown.
GENERAL = ""
# A choice the call does not set, as drawn: picked, it is sent back empty (still not set).
NOT_SET = "— not set —"
AMOUNT = "approved_amount"
# The most digits a typed number may have (an account number has about 20).
MAX_DIGITS = 100
# A number as typed once thousands separators are gone: ASCII digits, an optional point and exponent.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# Commas that are thousands separators: every group of three, the first of one to three.
_GROUPED = re.compile(r"[+-]?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]*)?")
_NOT_FINITE = {"inf", "infinity", "nan", "snan"}


@dataclass(frozen=True)
class ArgumentField:
    """One argument of the guarded call as an input."""

    name: str
    kind: str
    label: str
    description: str
    # The value the call has now, as the input shows it (None: not set).
    text: str | None
    required: bool
    # For choices: (shown, value as JSON text); the value now first when it is none of
    # the schema's, so that left alone it is the value sent back. A choice that is not
    # set is drawn with nothing chosen (``NOT_SET``, sent back empty: still not set).
    options: list[tuple[str, str]] = field(default_factory=list)

    @property
    def multiline(self) -> bool:
        return self.kind == JSON_TEXT or (
            self.text is not None and (len(self.text) > LINE_CHARS or "\n" in self.text or "\r" in self.text)
        )


def editable(view: RequestView) -> bool:
    """Whether an approver can change what approving releases (arguments or an amount):
    never under ``allow_modify: false`` (the engine refuses any change there)."""
    return view.status == "pending" and view.changes_allowed and (view.call_now is not None or _budget(view))


def _budget(view: RequestView) -> bool:
    return view.approval_type == "budget" and view.amount is not None


def _choices(prop: dict[str, Any]) -> list[Any] | None:
    """The values a property may take, when they are a short list of scalars: its own
    ``enum``, or that of its one alternative besides null (pydantic's Optional[Literal])."""
    enum = prop.get("enum")
    if (
        isinstance(enum, list)
        and 0 < len(enum) <= MAX_CHOICES
        and all(isinstance(v, str | int | float | bool) for v in enum)
    ):
        return enum
    others = [o for o in prop.get("anyOf") or [] if isinstance(o, dict) and o.get("type") != "null"]
    return _choices(others[0]) if len(others) == 1 and "enum" in others[0] else None


def _kind(prop: dict[str, Any]) -> str:
    if _choices(prop) is not None:
        return CHOICE
    kinds = prop.get("type")
    if isinstance(kinds, list):
        kinds = [k for k in kinds if k != "null"]
        kinds = kinds[0] if len(kinds) == 1 else None
    if kinds in (STRING, NUMBER, INTEGER, BOOLEAN):
        return str(kinds)
    for option in prop.get("anyOf") or []:  # pydantic's Optional[X]
        if isinstance(option, dict) and option.get("type") not in (None, "null"):
            return _kind(option)
    return JSON_TEXT


def _text(kind: str, value: Any) -> str | None:
    if value is None:
        return None
    if kind == STRING and isinstance(value, str):
        return value
    if kind == CHOICE:
        return json.dumps(value)
    return plain(value) if kind != JSON_TEXT else json.dumps(value, ensure_ascii=False, indent=1)


def argument_fields(view: RequestView) -> list[ArgumentField]:
    """The inputs of an edit: each argument of the schema (then any other the call has),
    required ones first, pre-filled with its value now; a budget's amount argument is the
    approved amount's."""
    if view.call_now is None:
        return []
    schema = view.edit_schema or {}
    found = schema.get("properties")
    properties: dict[str, Any] = found if isinstance(found, dict) else {}
    listed = [str(n) for n in schema.get("required") or [] if isinstance(n, str)]
    required = set(listed)
    arguments = view.call_now["arguments"]
    # One order whatever the database kept of the keys' (PostgreSQL's JSONB does not):
    # the required arguments as the schema lists them (a signature's order), then the rest.
    names = list(dict.fromkeys([*listed, *sorted(properties), *sorted(arguments)]))
    fields = []
    for name in names:
        if _budget(view) and name == view.amount_argument:
            continue
        given = properties.get(name)
        prop: dict[str, Any] = given if isinstance(given, dict) else {}
        kind = _kind(prop)
        if kind == JSON_TEXT and isinstance(arguments.get(name), str) and not prop:
            kind = STRING  # no schema: a string stays a string
        text = _text(kind, arguments.get(name))
        options = []
        if kind == CHOICE:
            options = [(plain(v), json.dumps(v)) for v in _choices(prop) or []]
        elif kind == BOOLEAN:
            options = [("true", "true"), ("false", "false")]
        if options and text is not None and text not in [value for _, value in options]:
            options.insert(0, (f"{plain(arguments.get(name))} (as now)", text))
        fields.append(
            ArgumentField(
                name=name,
                kind=kind,
                label=str(prop.get("title") or name),
                description=str(prop.get("description") or ""),
                text=text,
                required=name in required,
                options=options,
            )
        )
    return fields


class Unreadable(ValueError):
    """Typed text that must not become a value: the sentence says why (the field is named by
    where it is shown)."""


def _number(text: str, kind: str) -> Any:
    """A number as typed, exactly: an int for an integer (for an ``integer`` argument, any
    integral value), else a float that is the number typed. Text that is no number stays text
    (the engine names the argument); ``Unreadable`` for text that would become a number other
    than the one typed, or none the call can carry."""
    cleaned = text.strip()
    shown = cleaned if len(cleaned) <= 40 else cleaned[:20] + "…" + cleaned[-10:]
    if "," in cleaned:
        if not _GROUPED.fullmatch(cleaned):
            if (
                cleaned.count(",") == 1
                and "." not in cleaned
                and _NUMBER.fullmatch(cleaned.replace(",", "."))
            ):
                raise Unreadable(
                    f"{shown} is ambiguous: write {cleaned.replace(',', '.')} (a point for decimals)"
                )
            raise Unreadable(
                f"{shown} is ambiguous: write it with a point for decimals and commas only between "
                "groups of three digits (1,234,567.89), or without commas"
            )
        cleaned = cleaned.replace(",", "")
    if not _NUMBER.fullmatch(cleaned):
        if cleaned.lower().lstrip("+-") in _NOT_FINITE:
            raise Unreadable(f"{shown} is not a number a call can carry: give a finite number")
        return text
    mantissa, _, exponent = cleaned.replace("E", "e").partition("e")
    if sum(c.isdigit() for c in mantissa) > MAX_DIGITS:
        raise Unreadable(f"{shown} is too long: a number has at most {MAX_DIGITS} digits")
    if len(exponent.lstrip("+-").lstrip("0")) > 4:  # beyond 1e±9999: no float, and Decimal refuses some
        raise Unreadable(f"{shown} is out of the range of a number a call can carry")
    number = Decimal(cleaned)
    integral = number == number.to_integral_value()
    if kind == INTEGER or (integral and "." not in cleaned and "e" not in cleaned.lower()):
        if integral:
            if number and number.adjusted() >= MAX_DIGITS:
                raise Unreadable(f"{shown} is too large: a number has at most {MAX_DIGITS} digits")
            return int(number)
    as_float = float(number)
    if as_float in (float("inf"), float("-inf")):
        raise Unreadable(f"{shown} is too large for a number a call can carry")
    if as_float == 0 and number != 0:
        raise Unreadable(f"{shown} is too close to zero for a number a call can carry")
    if Decimal(repr(as_float)) != number:
        raise Unreadable(
            f"{shown} has more digits than a number keeps (it would become {as_float!r}): round it"
        )
    return as_float


def _value(kind: str, text: str) -> Any:
    if kind == STRING:
        return text
    if kind in (NUMBER, INTEGER):
        return _number(text, kind)
    if kind == BOOLEAN:
        lowered = text.strip().lower()
        return {"true": True, "false": False}.get(lowered, text)
    # CHOICE (a JSON value per option) and JSON_TEXT; ValueError: caller. Measured before it
    # is parsed: json.loads recurses, and a typed value may nest thousands deep.
    if json_too_deep(text):
        raise ValueError(f"nested deeper than {MAX_NESTING} levels (the limit)")
    return json.loads(text)


def _lines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _string(text: str, now: Any) -> str:
    """A string as typed, with the line endings of the value now: ``now`` itself when they
    are all that differ (a browser sends CRLF), else LF, or CRLF when ``now`` has CRLF."""
    if not isinstance(now, str) or ("\r" not in text and "\r" not in now):
        return text
    if _lines(text) == _lines(now):
        return now
    return _lines(text).replace("\n", "\r\n") if "\r\n" in now else _lines(text)


def read_inputs(view: RequestView, inputs: Mapping[str, str | None]) -> tuple[dict[str, Any], dict[str, str]]:
    """The arguments an edit changes, and problems by argument name.

    ``inputs`` maps argument names to what the approver left in each input
    (None: left empty). Arguments not among the inputs keep their value; an
    input equal to the value now (or differing only in line endings) is no
    change. A name the call has no field for (a crafted form) is passed on as
    typed for the engine to refuse.
    """
    fields = {f.name: f for f in argument_fields(view)}
    current = view.call_now["arguments"] if view.call_now is not None else {}
    changes: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for name, text in inputs.items():
        entry = fields.get(name)
        if entry is None:
            changes[name] = text
            continue
        if entry.text is not None and text == entry.text:
            continue  # the input as it was drawn: untouched
        if text is None or text == "":
            if entry.kind == STRING:
                if current.get(name) not in (None, ""):
                    changes[name] = ""  # emptied
            elif current.get(name) is not None:
                problems[name] = "give a value (an argument cannot be removed)"
            continue
        if entry.kind == STRING:
            text = _string(text, current.get(name))
        try:
            value = _value(entry.kind, text)
        except Unreadable as exc:
            problems[name] = str(exc)
            continue
        except ValueError as exc:
            problems[name] = f"not valid JSON: {exc}"
            continue
        if name in current and (
            _same_number(current[name], value)
            or (current[name] == value and type(current[name]) is type(value))
        ):
            continue  # unchanged
        changes[name] = value
    return changes, problems


def changed_arguments(view: RequestView, edited: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments an edit of the whole argument object changes (a JSON editor's, or a
    form's with every argument it draws): those whose value differs from the call's now.

    An argument the call has that the edit leaves out was deleted by the approver, and
    no answer can remove an argument (the engine would keep its value): refused in
    words, ``InvalidResponse`` naming each, so nothing is recorded. (One that is null
    now is not set either way.)"""
    current = view.call_now["arguments"] if view.call_now is not None else {}
    removed = [name for name, value in current.items() if name not in edited and value is not None]
    if removed:
        raise InvalidResponse(
            [
                f"arguments.{name}: an argument cannot be removed (put it back, or give it another value)"
                for name in sorted(removed)
            ]
        )
    return {
        name: value
        for name, value in edited.items()
        if name not in current
        or not (
            _same_number(current[name], value)
            or (current[name] == value and type(current[name]) is type(value))
        )
    }


def _same_number(before: Any, after: Any) -> bool:
    """Whether two numbers are the same number, exactly (12345678901234567891 is not the
    float nearest it)."""
    numbers = (int, float)
    return (
        isinstance(before, numbers)
        and isinstance(after, numbers)
        and not isinstance(before, bool)
        and not isinstance(after, bool)
        and Decimal(before) == Decimal(after)
    )


def read_amount(text: str | None) -> Any:
    """The approved amount as typed: a number, or the text for the engine to refuse
    (``problems_by_field`` then says why, for text ``_number`` refuses: "9,50")."""
    if text is None or not text.strip():
        return None
    try:
        return _number(text, NUMBER)
    except Unreadable:
        return text


# The engine's refusal of an amount that is text: "'9,50' is not of type 'number'".
_TEXT_AMOUNT = re.compile(r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*") is not of type 'number'""")


def _amount_problem(problem: str) -> str:
    """The engine's refusal of an amount typed as text, or why ``_number`` read no number
    from that text (the sentence a person can act on)."""
    found = _TEXT_AMOUNT.fullmatch(problem)
    if found is None:
        return problem
    try:
        typed = ast.literal_eval(found.group(1))
        _number(typed, NUMBER)
    except Unreadable as exc:
        return str(exc)
    except (ValueError, SyntaxError):
        pass
    return problem


def answer_for(
    view: RequestView,
    *,
    changes: Mapping[str, Any] | None = None,
    approved_amount: Any = None,
    tool: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """The decision and data of an approving answer with these edits.

    The approved amount is given only when it differs from the amount asked
    now (the engine approves that amount by default), and always for a request
    that is not a budget (a crafted answer: the engine refuses it, rather than
    the amount being dropped and the call run as shown); ``tool`` only when it
    is not the call's own (a crafted answer: the engine refuses it).
    """
    data: dict[str, Any] = {}
    if tool is not None and tool != view.tool:
        data["tool"] = tool
    if changes:
        data["arguments"] = dict(changes)
    if approved_amount is not None and not (_budget(view) and _same_number(approved_amount, view.amount)):
        data[AMOUNT] = approved_amount
    return ("modify" if data else "approve"), data


def record_shown_answer(
    db: Database,
    approval_id: str,
    approver: str,
    decision: str,
    data: dict[str, Any] | None,
    comment: str,
    *,
    channel: str,
    shown: tuple[int, str | None] | None,
    allow_for_days: float | None = None,
    allow_when: str | None = None,
) -> ApprovalRequest:
    """Record an answer given on a page that showed the request at ``shown`` (its level
    and call digest): once the request has moved on, it is refused (``AnswerOutdated``,
    core.approvals.once) and nothing is recorded; without ``shown``, it is for the
    request as it is."""
    level, digest = shown if shown is not None else (None, ANY)
    return respond_once(
        db,
        key=None,
        what="The page you answered on",
        approval_id=approval_id,
        approver=approver,
        decision=decision,
        data=data,
        comment=comment,
        channel=channel,
        level=level,
        digest=digest,
        allow_for_days=allow_for_days,
        allow_when=allow_when,
    )


def problems_by_field(problems: list[str], view: RequestView | None = None) -> dict[str, list[str]]:
    """The engine's refusals by what they name: an argument, the approved amount, or
    ``GENERAL``. A budget's amount argument is the approved amount's input; a request
    that is not a budget has no amount input, so a refused amount is ``GENERAL``."""
    found: dict[str, list[str]] = {}
    for problem in problems:
        head, _, rest = problem.partition(": ")
        key = GENERAL
        if head.startswith("arguments."):
            key = head.split(".", 2)[1]
            if view is not None and _budget(view) and key == view.amount_argument:
                key = AMOUNT
            problem = rest or problem
        elif head == AMOUNT and (view is None or _budget(view)):
            key, problem = AMOUNT, _amount_problem(rest) if rest else problem
        found.setdefault(key, []).append(problem)
    return found


__all__ = [
    "AMOUNT",
    "GENERAL",
    "NOT_SET",
    "ArgumentField",
    "answer_for",
    "argument_fields",
    "changed_arguments",
    "editable",
    "problems_by_field",
    "read_amount",
    "read_inputs",
    "record_shown_answer",
]
