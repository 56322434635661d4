"""Agent teams without a database: validation and the workflow a team becomes."""

from __future__ import annotations

import pytest

from core.agents.teams import member_step_names, team_definition, validate_team
from core.base.errors import InvalidAgentTeam
from core.definitions.workflow import parse_definition


def problems(data: dict[str, object]) -> list[str]:
    with pytest.raises(InvalidAgentTeam) as caught:
        validate_team(data)
    return caught.value.problems


def test_a_valid_team_is_normalised() -> None:
    fields = validate_team({"name": "news desk", "members": [" researcher", "writer "]})
    assert fields == {
        "name": "news desk",
        "description": "",
        "members": ["researcher", "writer"],
        "settings": {"approve_before": [], "approval": {}},
    }


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"name": "", "members": ["a"]}, ["name: String should have at least 1 character"]),
        (
            {"name": "-bad", "members": ["a"]},
            ["name: use letters, digits, spaces, '_', '.' or '-', starting with a letter or digit"],
        ),
        ({"name": "t", "members": []}, ["members: name at least one agent profile"]),
        ({"name": "t"}, ["members: required"]),
        ({"name": "t", "members": ["a"], "colour": "red"}, ["colour: unknown field"]),
        ({"name": "t", "members": ["a"], "settings": {"gate": ["a"]}}, ["settings.gate: unknown field"]),
        (
            {"name": "t", "members": ["a", "b", "a"]},
            ["members[2]: 'a' is already member 1; a profile takes one place in a team"],
        ),
        ({"name": "t", "members": ["a", " "]}, ["members[1]: empty profile name"]),
        (
            {"name": "t", "members": ["a"], "settings": {"approve_before": ["a", "z"]}},
            ["settings.approve_before[1]: 'z' is not a member"],
        ),
        (
            {"name": "t", "members": ["a"], "settings": {"approval": {"type": "vote", "timeout": "soon"}}},
            [
                "settings.approval.type: must be one of binary, form, budget",
                "settings.approval.timeout: must be a duration such as 300, '15m', '24h' or 'PT1H'",
            ],
        ),
    ],
)
def test_problems_are_named_by_path(data: dict[str, object], expected: list[str]) -> None:
    assert problems(data) == expected


def test_every_problem_is_listed_at_once() -> None:
    found = problems(
        {
            "name": "t",
            "members": ["a", "a"],
            "settings": {"approve_before": ["b"], "approval": {"type": "vote"}},
        }
    )
    assert found == [
        "members[1]: 'a' is already member 1; a profile takes one place in a team",
        "settings.approve_before[0]: 'b' is not a member",
        "settings.approval.type: must be one of binary, form, budget",
    ]


def test_each_member_is_a_task_step_fed_the_previous_answer() -> None:
    definition = team_definition(
        validate_team(
            {"name": "desk", "description": "Daily news", "members": ["researcher", "writer", "editor"]}
        )
    )
    assert definition["name"] == "team:desk" and definition["description"] == "Daily news"
    assert definition["metadata"] == {"team": "desk", "members": ["researcher", "writer", "editor"]}
    assert [(s["name"], s["type"], s["agent"], s["task"]) for s in definition["steps"]] == [
        ("researcher", "task", "researcher", "${input.task}"),
        ("writer", "task", "writer", "${steps.researcher.result}"),
        ("editor", "task", "editor", "${steps.writer.result}"),
    ]
    parse_definition(definition)  # an ordinary, valid workflow definition


def test_an_approval_gate_comes_before_its_member() -> None:
    definition = team_definition(
        validate_team(
            {
                "name": "desk",
                "members": ["researcher", "writer"],
                "settings": {
                    "approve_before": ["researcher", "writer"],
                    "approval": {"requested_from": "editor@example.com", "timeout": "2h"},
                },
            }
        )
    )
    steps = definition["steps"]
    assert [s["name"] for s in steps] == ["approve_researcher", "researcher", "approve_writer", "writer"]
    gate = steps[2]
    assert gate["type"] == "approval"
    assert gate["approval_config"]["requested_from"] == "editor@example.com"
    assert gate["approval_config"]["title"] == "Team desk: pass the work to writer?"
    assert gate["context"] == {
        "team": "desk",
        "next_member": "writer",
        "from": "researcher",
        "input": "${steps.researcher.result}",
    }
    assert steps[0]["context"]["input"] == "${input.task}"
    assert steps[3]["task"] == "${steps.researcher.result}"  # the gate passes nothing itself
    config = parse_definition(definition).steps[2].approval_config
    assert config is not None and config.timeout == 7200


def test_profile_names_become_distinct_template_safe_step_names() -> None:
    assert member_step_names(["order checker", "order-checker", "v1.2", "approve_x"]) == [
        "order_checker",
        "order_checker_2",
        "v1_2",
        "approve_x",
    ]
    definition = team_definition(
        validate_team({"name": "t", "members": ["x", "approve_x"], "settings": {"approve_before": ["x"]}})
    )
    assert [s["name"] for s in definition["steps"]] == ["approve_x_2", "x", "approve_x"]
