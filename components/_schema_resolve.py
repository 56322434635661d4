"""Reading a JSON Schema for drawing: ``$ref``, ``allOf``, and which widget a field gets.

Pure functions, no Streamlit. Anything the form cannot draw raises
:class:`Undrawable`, and the caller falls back to a JSON text area.
Validation never relies on this module: submitted data is checked by
``jsonschema`` against the original schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

# Keywords that change a value's shape in ways plain widgets cannot follow.
SHAPE_KEYWORDS = (
    "if",
    "then",
    "else",
    "patternProperties",
    "dependentSchemas",
    "dependencies",
    "prefixItems",
    "additionalItems",
    "$dynamicRef",
    "$recursiveRef",
)
_KEEP_FIRST = {"title", "description", "default", "examples", "$comment", "readOnly"}
_MAX_REF_HOPS = 32
MAX_DEPTH = 12


class Undrawable(Exception):
    """A schema construct the form cannot draw; its field becomes a JSON text area."""

    def __init__(self, reason: str, ref: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.ref = ref


@dataclass(frozen=True)
class Choices:
    values: list[Any]
    labels: list[str]

    def label(self, value: Any) -> str:
        for known, text in zip(self.values, self.labels, strict=True):
            if known == value and type(known) is type(value):
                return text
        return display(value)


def display(value: Any) -> str:
    """How a constant shows in a select box."""
    if isinstance(value, str):
        return value
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    return str(value)


def humanise(name: str) -> str:
    words = name.replace("_", " ").replace("-", " ").strip()
    return words[:1].upper() + words[1:] if words else name


def _as_schema(node: Any, ref: str) -> dict[str, Any]:
    if node is True:
        return {}
    if isinstance(node, dict):
        return node
    raise Undrawable(f"reference {ref!r} does not name a schema", ref)


def _find_anchor(node: Any, name: str) -> Any:
    if isinstance(node, dict):
        if node.get("$anchor") == name or node.get("$id") == f"#{name}":
            return node
        children: Any = node.values()
    elif isinstance(node, list):
        children = node
    else:
        return None
    for child in children:
        found = _find_anchor(child, name)
        if found is not None:
            return found
    return None


def lookup(root: dict[str, Any], ref: str) -> dict[str, Any]:
    """The schema a local ``$ref`` points at (JSON pointer or plain-name anchor)."""
    if not isinstance(ref, str) or not ref.startswith("#"):
        raise Undrawable(f"reference {ref!r} is not inside this schema", str(ref))
    fragment = unquote(ref[1:])
    if fragment and not fragment.startswith("/"):
        found = _find_anchor(root, fragment)
        if found is None:
            raise Undrawable(f"reference {ref!r} does not resolve", ref)
        return _as_schema(found, ref)
    node: Any = root
    for raw in fragment.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise Undrawable(f"reference {ref!r} does not resolve", ref)
    return _as_schema(node, ref)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if k == "properties" and isinstance(v, dict):
            props = dict(out.get("properties") or {})
            for name, sub in v.items():
                props[name] = {"allOf": [props[name], sub]} if name in props else sub
            out["properties"] = props
        elif k == "required" and isinstance(v, list):
            out["required"] = list(dict.fromkeys([*(out.get("required") or []), *v]))
        elif k in _KEEP_FIRST:
            out.setdefault(k, v)
        elif k in out and out[k] != v:
            raise Undrawable(f"allOf parts disagree on {k!r}")
        else:
            out[k] = v
    return out


def _is_null(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "null" and len(schema) == 1


def resolve(schema: Any, root: dict[str, Any], followed: list[str] | None = None) -> dict[str, Any]:
    """``schema`` with its ``$ref`` chain followed and ``allOf`` merged.

    Keywords beside a ``$ref`` (title, description, default) override the
    target's, which is what a reader of the schema expects to see.
    """
    if schema is True:
        return {}
    if not isinstance(schema, dict):
        raise Undrawable("not a schema object")
    out = schema
    for _ in range(_MAX_REF_HOPS):
        if "$ref" in out:
            ref = out["$ref"]
            if followed is not None:
                followed.append(str(ref))
            siblings = {k: v for k, v in out.items() if k != "$ref"}
            out = {**lookup(root, ref), **siblings} if siblings else lookup(root, ref)
            continue
        if isinstance(out.get("allOf"), list):
            merged = {k: v for k, v in out.items() if k != "allOf"}
            for part in out["allOf"]:
                merged = _merge(merged, resolve(part, root, followed))
            out = merged
            continue
        for kw in ("anyOf", "oneOf"):
            alts = out.get(kw)
            if isinstance(alts, list) and len(alts) == 2 and any(_is_null(a) for a in alts):
                # The "optional X" idiom: draw X; an empty field is simply omitted.
                other = next(a for a in alts if not _is_null(a))
                rest = {k: v for k, v in out.items() if k != kw}
                out = _merge(rest, resolve(other, root, followed))
                break
        else:
            return out
    raise Undrawable("reference cycle")


def schema_type(schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        if len(kinds) != 1:
            raise Undrawable(f"a value of several types ({', '.join(map(str, kind))})")
        kind = kinds[0]
    if kind is None:
        if "properties" in schema:
            return "object"
        if "items" in schema:
            return "array"
        return None
    return str(kind)


def sub_ui(ui: dict[str, Any], name: str) -> dict[str, Any]:
    """The part of a UI schema for one property (or ``items``, ``ui:options``)."""
    part = ui.get(name)
    return part if isinstance(part, dict) else {}


def _names(schema: dict[str, Any], ui: dict[str, Any]) -> Any:
    options = sub_ui(ui, "ui:options")
    for source in (
        ui.get("ui:enumNames"),
        ui.get("enumNames"),
        options.get("enumNames"),
        schema.get("enumNames"),
    ):
        if isinstance(source, list):
            return source
    return None


def choices(schema: dict[str, Any], ui: dict[str, Any], root: dict[str, Any]) -> Choices | None:
    """The fixed options of an ``enum`` or a ``oneOf``/``anyOf`` list of ``const``."""
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        values = list(schema["enum"])
        names = _names(schema, ui)
        if names is not None and len(names) == len(values):
            return Choices(values, [str(n) for n in names])
        return Choices(values, [display(v) for v in values])
    for kw in ("oneOf", "anyOf"):
        alts = schema.get(kw)
        if isinstance(alts, list) and alts:
            resolved = [resolve(a, root) for a in alts]
            if all("const" in a for a in resolved):
                return Choices(
                    [a["const"] for a in resolved],
                    [str(a.get("title") or display(a["const"])) for a in resolved],
                )
    return None


def field_kind(schema: dict[str, Any], ui: dict[str, Any], root: dict[str, Any], *, top: bool = False) -> str:
    """Which drawer renders an already resolved ``schema``."""
    if ui.get("ui:widget") == "hidden":
        return "hidden"
    for kw in SHAPE_KEYWORDS:
        if kw in schema:
            raise Undrawable(f"{kw!r} cannot be drawn as a form")
    if "const" in schema and "enum" not in schema:
        return "const"
    if choices(schema, ui, root) is not None:
        return "choice"
    if "oneOf" in schema or "anyOf" in schema:
        raise Undrawable("alternatives other than a list of constants")
    kind = schema_type(schema)
    if kind == "string":
        fmt = ui.get("ui:widget") or schema.get("format")
        return str(fmt) if fmt in ("date", "date-time", "time") else "text"
    if kind in ("number", "integer"):
        return "number"
    if kind == "boolean":
        return "boolean"
    if kind == "array":
        items = schema.get("items")
        if not isinstance(items, dict):
            raise Undrawable("an array without a single item schema")
        item = resolve(items, root)
        item_ui = sub_ui(ui, "items")
        if choices(item, item_ui, root) is not None:
            return "multiselect"
        field_kind(item, item_ui, root)  # raises when the rows could not be drawn
        return "rows"
    if kind == "object":
        if schema.get("properties") or top or schema.get("additionalProperties") is False:
            return "object"
        raise Undrawable("an object with free-form keys")
    raise Undrawable("a schema without a type")
