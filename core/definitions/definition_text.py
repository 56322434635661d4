"""A workflow definition read from JSON or YAML text or a file: bounded before it
is parsed (its size, how deep its brackets nest; YAML without aliases, so no
"billion laughs"), then validated by ``core.definitions.workflow.parse_definition``.
"""

from __future__ import annotations

import json
from collections.abc import Container
from pathlib import Path
from typing import Any

import yaml

from core.base.errors import DefinitionError
from core.definitions.limits import MAX_DEFINITION_BYTES
from core.definitions.workflow import WorkflowDefinition, parse_definition

__all__ = [
    "MAX_TEXT_NESTING",
    "load_definition_file",
    "load_definition_text",
    "read_definition_file",
    "read_definition_text",
]


# Brackets nested deeper than this are refused before a parser recurses into
# them (a few over the 64 levels stored JSON may have, for brackets in text).
MAX_TEXT_NESTING = 200


def _flow_depth(text: str) -> int:
    """How deep ``[`` and ``{`` nest in ``text``, counted without parsing."""
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}" and depth:
            depth -= 1
    return deepest


_BOOL_TAG = "tag:yaml.org,2002:bool"
_STR_TAG = "tag:yaml.org,2002:str"


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors' aliases: nine levels of nine aliases expand to 9^9 nodes
    (a "billion laughs" bomb); definitions never need them.

    A mapping's key written ``on``, ``off``, ``yes`` or ``no`` (any case) is that text,
    as in YAML 1.2, not YAML 1.1's boolean: ``retry: {on: [transient]}`` means the
    ``on`` field. Only ``true`` and ``false`` are boolean keys; values keep their
    meaning (``dry_run: no`` is still false)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            for key_node, _ in node.value:
                if key_node.tag == _BOOL_TAG and key_node.value.lower() not in ("true", "false"):
                    key_node.tag = _STR_TAG
        return super().construct_mapping(node, deep=deep)

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.YAMLError(
                f"aliases (*{event.anchor}) are not allowed (line {event.start_mark.line + 1})"
            )
        return super().compose_node(parent, index)


def _where(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's refusal as "line 4, column 3: <problem> (<context> at line 3, column 3)",
    without its ``in "<unicode string>"`` and the echoed source lines."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        return str(exc)
    mark, problem = exc.problem_mark, exc.problem or "cannot be read"
    text = f"{_where(mark)}: {problem}" if mark is not None else problem
    if exc.context:
        at = exc.context_mark
        same = at is not None and mark is not None and (at.line, at.column) == (mark.line, mark.column)
        text += f" ({exc.context}" + (f" at {_where(at)}" if at is not None and not same else "") + ")"
    return text


def load_definition_text(text: str, *, tools: Container[str] | None = None) -> WorkflowDefinition:
    """Parse JSON or YAML text (JSON is YAML, but JSON errors read better) and validate
    it (``parse_definition``: with ``tools``, unknown tools are among the problems)."""
    return parse_definition(read_definition_text(text), tools=tools)


def read_definition_text(text: str) -> Any:
    """JSON or YAML text as data, bounded before it is parsed; not yet validated."""
    if len(text) > MAX_DEFINITION_BYTES:
        raise DefinitionError(
            [f"(definition): {len(text):,} characters, more than the {MAX_DEFINITION_BYTES:,} allowed"]
        )
    if _flow_depth(text) > MAX_TEXT_NESTING:
        raise DefinitionError(["(definition): nested too deeply to read (the limit is 64 levels)"])
    stripped = text.lstrip()
    try:
        data = json.loads(text) if stripped.startswith(("{", "[")) else yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader
    except json.JSONDecodeError as exc:
        raise DefinitionError([f"(definition): not valid JSON: {exc}"]) from None
    except yaml.YAMLError as exc:
        raise DefinitionError([f"(definition): not valid YAML: {_yaml_problem(exc)}"]) from None
    except RecursionError:
        raise DefinitionError(["(definition): nested too deeply to read (the limit is 64 levels)"]) from None
    return data


def load_definition_file(path: str | Path, *, tools: Container[str] | None = None) -> WorkflowDefinition:
    return parse_definition(read_definition_file(path), tools=tools)


def read_definition_file(path: str | Path) -> Any:
    """A definition file's JSON or YAML as data (``read_definition_text``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DefinitionError([f"(file): cannot read {path}: {exc.strerror}"]) from None
    return read_definition_text(text)
