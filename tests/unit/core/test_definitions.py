"""Workflow definitions: the seed's format verbatim, YAML and JSON, and refusals
that list every problem by its path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.base.durations import parse_duration
from core.base.errors import DefinitionError
from core.definitions.approval import ApprovalConfig
from core.definitions.definition_text import load_definition_file, load_definition_text
from core.definitions.workflow import (
    WorkflowDefinition,
    definition_dict,
    parse_approval_config,
    parse_definition,
)

ROOT = Path(__file__).resolve().parents[3]
SEED = ROOT / "examples" / "seed"
TEMPLATES = ROOT / "core" / "demo" / "templates"
WHOLE_SEEDS = ["basic_usage.json", "order_processing.json", "deployment_pipeline.json"]
SNIPPETS = ["binary_approval_snippet.json", "form_approval_snippet.json", "budget_approval_snippet.json"]


def problems_of(data: Any) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        parse_definition(data)
    return caught.value.problems


# -- the seed's examples, unchanged --------------------------------------------


@pytest.mark.parametrize("name", WHOLE_SEEDS)
def test_each_whole_seed_definition_loads_unchanged(name: str) -> None:
    raw = json.loads((SEED / name).read_text())
    definition = load_definition_file(SEED / name)
    assert [s.name for s in definition.steps] == [s["name"] for s in raw["steps"]]
    assert [s.type for s in definition.steps] == [s.get("type", "task") for s in raw["steps"]]
    # The normalised form is itself a valid definition (it is what a workflow stores).
    again = parse_definition(definition_dict(definition))
    assert definition_dict(again) == definition_dict(definition)


def test_basic_usage_keeps_its_approval_config() -> None:
    step = load_definition_file(SEED / "basic_usage.json").steps[0]
    assert step.requires_approval and step.needs_approval
    config = step.approval_config
    assert config is not None
    assert config.title == "Critical Operation Approval"
    assert config.type == "binary"
    assert config.approvers == ["admin@company.com"]


def test_order_processing_payment_approval_is_a_budget_gate() -> None:
    definition = load_definition_file(SEED / "order_processing.json")
    assert definition.steps[0].create_checkpoint
    payment = definition.steps[1]
    assert payment.type == "task" and payment.requires_approval
    assert payment.approval_config is not None
    assert payment.approval_config.type == "budget"
    assert payment.approval_config.requested_from == ["finance@company.com"]


def test_deployment_pipeline_top_level_shorthand_ends_up_in_approval_config() -> None:
    step = load_definition_file(SEED / "deployment_pipeline.json").steps[1]
    assert step.type == "approval"
    config = step.approval_config
    assert config is not None
    assert config.title == "Production Deploy Approval"
    assert config.type == "form"
    assert config.requested_from == ["devops@company.com"]
    stored = definition_dict(load_definition_file(SEED / "deployment_pipeline.json"))["steps"][1]
    assert "title" not in stored and "approval_type" not in stored
    assert stored["approval_config"]["type"] == "form"


@pytest.mark.parametrize("name", SNIPPETS)
def test_each_snippet_parses_as_an_approval_config(name: str) -> None:
    raw = json.loads((SEED / name).read_text())
    config = parse_approval_config(raw)
    assert config.type == raw["approval_type"]
    # ...and the same snippet works unchanged as an approval step's config.
    definition = parse_definition({"steps": [{"name": "ask", "type": "approval", "approval_config": raw}]})
    assert definition.steps[0].approval_config == config


def test_form_snippet_fields_come_from_context_data() -> None:
    config = parse_approval_config(json.loads((SEED / "form_approval_snippet.json").read_text()))
    assert config.form_fields is not None
    assert [f.name for f in config.form_fields] == ["priority", "comments"]
    assert config.form_fields[0].required is True
    assert config.modify_allowed  # forms may be approved with changed data


def test_budget_snippet_keeps_amount_currency_department() -> None:
    config = parse_approval_config(json.loads((SEED / "budget_approval_snippet.json").read_text()))
    assert config.context_data == {"amount": 50000, "currency": "USD", "department": "marketing"}


def test_binary_snippet_refuses_modify_by_default() -> None:
    config = parse_approval_config(json.loads((SEED / "binary_approval_snippet.json").read_text()))
    assert config.title == "Simple Approval"
    assert not config.modify_allowed
    assert config.approvers == ["admins"]  # nobody named: the admins group is asked


@pytest.mark.parametrize("path", sorted(TEMPLATES.glob("*.yaml")), ids=lambda p: p.stem)
def test_bundled_templates_load(path: Path) -> None:
    definition = load_definition_file(path)
    assert definition.name
    assert any(step.needs_approval for step in definition.steps)


def test_yaml_and_json_give_the_same_definition() -> None:
    as_json = json.dumps(
        {
            "name": "x",
            "steps": [
                {"name": "a", "type": "tool", "tool": "echo", "args": {"v": 1}, "retry": {"attempts": 2}},
                {
                    "name": "b",
                    "type": "approval",
                    "approval_config": {"type": "binary", "requested_from": "a@b.c"},
                },
            ],
        }
    )
    as_yaml = """
name: x
steps:
  - name: a
    type: tool
    tool: echo
    args: {v: 1}
    retry: {attempts: 2}
  - name: b
    type: approval
    approval_config: {type: binary, requested_from: a@b.c}
"""
    assert definition_dict(load_definition_text(as_json)) == definition_dict(load_definition_text(as_yaml))


def test_step_options_are_parsed() -> None:
    definition = parse_definition(
        {
            "steps": [
                {
                    "name": "a",
                    "type": "tool",
                    "tool": "t",
                    "retry": {"attempts": 3, "backoff": "2s"},
                    "timeout": "1m",
                    "compensate": "undo_a",
                    "on_reject": "goto:c",
                    "context": {"k": 1},
                },
                {"name": "b", "type": "checkpoint", "on_reject": "skip"},
                {"name": "c", "type": "task", "on_reject": {"goto": "a"}},
            ]
        }
    )
    a, b, c = definition.steps
    assert (a.retry.max_attempts, a.retry.backoff.initial, a.timeout) == (3, 2.0, 60.0)
    assert a.compensate is not None and a.compensate.tool == "undo_a"
    assert (a.on_reject.action, a.on_reject.target) == ("goto", "c")
    assert b.on_reject.action == "skip"
    assert (c.on_reject.action, c.on_reject.target) == ("goto", "a")
    assert a.retry.delay(1) == 2.0 and a.retry.delay(2) == 4.0


# -- refusals --------------------------------------------------------------------


def test_invalid_definition_lists_every_problem_by_path() -> None:
    problems = problems_of(
        {
            "steps": [
                {"name": "a", "type": "task"},
                {"name": "b", "type": "approval", "approval_config": {"type": "vote", "bogus": 1}},
                {
                    "name": "a",
                    "type": "task",
                    "on_reject": "goto:nowhere",
                    "retry": {"attempts": 3, "backoff": "soon"},
                },
                {
                    "name": "d",
                    "type": "approval",
                    "approval_config": {"type": "form", "schema": {"type": "nonsense"}},
                },
                {"name": "e", "type": "tool"},
                {"name": "f", "colour": "red"},
                {"name": "g", "type": "approval", "approval_config": {"timeout": "-5m"}},
            ]
        }
    )
    assert "steps[1].approval_config.type: must be one of binary, form, budget" in problems
    assert "steps[1].approval_config.bogus: unknown field" in problems
    assert any(p.startswith("steps[2].retry.backoff.initial: must be a duration") for p in problems)
    assert "steps[2].name: duplicate step name 'a' (also steps[0])" in problems
    assert "steps[2].on_reject: no step named 'nowhere' to go to" in problems
    assert any(p.startswith("steps[3].approval_config.schema: not a valid JSON Schema") for p in problems)
    assert "steps[4].tool: required for a tool step" in problems
    assert "steps[5].colour: unknown field" in problems
    assert any(p.startswith("steps[6].approval_config.timeout: must be") for p in problems)
    assert len(problems) == 9


def test_error_message_joins_all_problems_on_one_line() -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_definition({"steps": [{"name": "a", "type": "nope"}], "extra": 1})
    message = str(caught.value)
    assert "\n" not in message
    assert "steps[0].type: must be one of task, approval, checkpoint, tool" in message
    assert "extra: unknown field" in message


def test_escalate_without_escalate_to_is_refused() -> None:
    problems = problems_of(
        {
            "steps": [
                {
                    "name": "a",
                    "type": "approval",
                    "approval_config": {"timeout": "1h", "on_timeout": "escalate"},
                }
            ]
        }
    )
    assert problems == ["steps[0].approval_config.escalate_to: required when on_timeout is escalate"]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, "steps: required"),
        ({"steps": []}, "steps: list should have at least 1 item after validation, not 0"),
        ({"steps": [{"type": "task"}]}, "steps[0].name: required"),
        (
            {"steps": [{"name": "a", "type": "approval"}]},
            "steps[0].approval_config: required for an approval step",
        ),
        (
            {"steps": [{"name": "a", "requires_approval": True}]},
            "steps[0].approval_config: required when requires_approval is true",
        ),
        (
            {"steps": [{"name": "a", "tool": "x"}]},
            "steps[0].tool: only tool steps name a tool; use type: tool",
        ),
        (
            {"steps": [{"name": "a", "on_reject": "explode"}]},
            "steps[0].on_reject: must be one of fail, skip, goto:<step name>",
        ),
        (
            {
                "steps": [
                    {
                        "name": "a",
                        "type": "approval",
                        "approval_config": {"type": "binary", "levels": [{"approvers": ["x@y.z"]}]},
                    }
                ]
            },
            "steps[0].approval_config.levels: only budget approvals have levels",
        ),
        (
            {
                "steps": [
                    {
                        "name": "a",
                        "type": "approval",
                        "approval_config": {
                            "type": "form",
                            "form_fields": [{"name": "n"}],
                            "schema": {"type": "object"},
                        },
                    }
                ]
            },
            "steps[0].approval_config.schema: give either form_fields or schema, not both",
        ),
        (
            {"steps": [{"name": "a", "type": "approval", "approval_config": {"approval_threshold": 0}}]},
            "steps[0].approval_config.approval_threshold: input should be greater than or equal to 1",
        ),
        (
            {
                "steps": [
                    {
                        "name": "a",
                        "type": "approval",
                        "approval_config": {"type": "form", "approval_type": "binary"},
                    }
                ]
            },
            "steps[0].approval_config.type: approval_type and type disagree; give one",
        ),
    ],
)
def test_each_rule_names_its_path(data: dict[str, Any], expected: str) -> None:
    assert expected in problems_of(data)


@pytest.mark.parametrize("text", ["{not json", "steps: [unclosed", "- just\n- a list"])
def test_unparseable_or_non_mapping_text_is_refused(text: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        load_definition_text(text)
    assert caught.value.problems[0].startswith("(definition):")


def test_unreadable_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError) as caught:
        load_definition_file(tmp_path / "missing.yaml")
    assert caught.value.problems[0].startswith("(file): cannot read")


def test_approval_config_on_its_own_is_refused_with_its_path() -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_approval_config({"type": "poll", "on_timeout": "explode"})
    assert caught.value.problems == [
        "approval_config.type: must be one of binary, form, budget",
        "approval_config.on_timeout: must be one of reject, approve, escalate",
    ]


# -- small pure pieces --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (300, 300.0),
        (1.5, 1.5),
        ("90s", 90.0),
        ("15m", 900.0),
        ("24h", 86400.0),
        ("2d", 172800.0),
        ("1w", 604800.0),
        ("250ms", 0.25),
        ("PT1H", 3600.0),
        ("P1DT30M", 88200.0),
        (" 10 ", 10.0),
    ],
)
def test_parse_duration(value: Any, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", [True, 0, -1, "soon", "P", "", None, "5 parsecs"])
def test_parse_duration_refuses(value: Any) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


def test_approvers_union_listed_once_and_default_admins() -> None:
    config = ApprovalConfig.model_validate(
        {"requested_from": "a@x.io", "required_approvers": ["b@x.io", "a@x.io"]}
    )
    assert config.approvers == ["a@x.io", "b@x.io"]
    assert ApprovalConfig().approvers == ["admins"]


def test_modify_allowed_by_type_and_flag() -> None:
    assert not ApprovalConfig(type="binary").modify_allowed
    assert ApprovalConfig(type="binary", allow_modify=True).modify_allowed
    assert ApprovalConfig(type="budget").modify_allowed
    assert not ApprovalConfig(type="form", allow_modify=False).modify_allowed


def test_step_index_finds_names() -> None:
    definition = WorkflowDefinition.model_validate({"steps": [{"name": "a"}, {"name": "b"}]})
    assert definition.step_index("b") == 1
    with pytest.raises(KeyError):
        definition.step_index("zzz")


def test_one_refusal_names_unknown_tools_with_every_other_problem() -> None:
    data = {
        "steps": [
            {"name": "pay", "type": "tool", "tool": "nope_tool", "compensate": "undo_nope"},
            {"name": "ask", "type": "approval", "approval_config": {"type": "vote"}},
            {"name": "pay", "type": "task", "agent": {"tools": ["web_search", {"name": "ghost"}]}},
        ]
    }
    with pytest.raises(DefinitionError) as caught:
        parse_definition(data, tools={"web_search"})
    problems = caught.value.problems
    assert "steps[1].approval_config.type: must be one of binary, form, budget" in problems
    assert "steps[2].name: duplicate step name 'pay' (also steps[0])" in problems
    unknown = [p for p in problems if "no tool is registered" in p]
    assert [p.split(":")[0] for p in unknown] == [
        "steps[0].tool",
        "steps[0].compensate.tool",
        "steps[2].agent.tools[1]",
    ]
    assert "'nope_tool'" in unknown[0]
    # Without ``tools`` the names are not checked; with all of them known it is valid.
    assert not any("no tool" in p for p in problems_of(data))
    fixed = {"steps": [{"name": "pay", "type": "tool", "tool": "nope_tool", "compensate": "undo_nope"}]}
    assert parse_definition(fixed, tools={"nope_tool", "undo_nope"}).steps[0].tool == "nope_tool"


def test_yaml_refusal_names_line_and_column_without_pyyaml_internals() -> None:
    with pytest.raises(DefinitionError) as caught:
        load_definition_text("name: UT\nsteps:\n  - name: s\n  type: tool\n")
    (problem,) = caught.value.problems
    assert problem.startswith("(definition): not valid YAML: line 4, column 3: expected <block end>")
    assert "while parsing a block collection at line 3, column 3" in problem
    assert "<unicode string>" not in problem and "^" not in problem
