"""Agent settings, tool inputs, the held-call policy, memory round trips and
model selection, without a database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from smolagents.memory import ActionStep, TaskStep, ToolCall
from smolagents.monitoring import Timing, TokenUsage
from smolagents.utils import AgentToolCallError

from core.agents.llm import build_model, effective_model_spec, model_label
from core.agents.memory import _QUIET as QUIET_LOGGER
from core.agents.memory import dump_memory, load_memory
from core.agents.tools import HoldForApproval, RunContext, build_tools, registry_inputs
from core.base.errors import ConfigurationError, DefinitionError
from core.definitions.agents import AgentSpec, ModelSpec, register_profile, resolve_spec
from core.definitions.calls import edit_problems, make_call, smolagents_input_schema
from core.definitions.definition_text import load_definition_file
from core.definitions.workflow import parse_definition
from core.engine.tools import ToolRegistry

ROOT = Path(__file__).resolve().parents[3]


def problems(step: dict[str, Any]) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        parse_definition({"steps": [{"name": "first"}, {"name": "agent", **step}]})
    return caught.value.problems


@pytest.mark.parametrize(
    "step, expected",
    [
        ({"agent": {"max_steps": 0}}, "steps[1].agent.max_steps: Input should be greater than or equal to 1"),
        ({"agent": {"typo": 1}}, "steps[1].agent.typo: unknown field"),
        ({"agent": {"type": "cobol"}}, "steps[1].agent.type: must be one of 'tool_calling' or 'code'"),
        (
            {"agent": {"type": "code", "authorized_imports": ["*"]}},
            "steps[1].agent.authorized_imports: '*' would allow every import",
        ),
        ({"agent": {"held_tools": ["not a name"]}}, "steps[1].agent.held_tools: 'not a name' is not"),
        ({"agent": {"approval": {"type": "vote"}}}, "steps[1].agent.approval: type: Input should be"),
        ({"agent": {"model": {"provider": "skynet"}}}, "steps[1].agent.model.provider: must be one of"),
        ({"plan": [{"args": {}}]}, "steps[1].plan[0].tool: required"),
        ({"plan": [{"tool": "x", "when": "now"}]}, "steps[1].plan[0].when: unknown field"),
    ],
)
def test_a_bad_agent_config_is_refused_by_path(step: dict[str, Any], expected: str) -> None:
    [problem] = problems(step)
    assert problem.startswith(expected), problem


def test_agent_settings_inline_shorthand_profiles_and_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert resolve_spec(None) == AgentSpec()
    assert resolve_spec({"model": "llama3.1"}).model.model_id == "llama3.1"
    assert resolve_spec({"model": "rehearsal"}).model.provider == "rehearsal"
    register_profile("careful", {"type": "code", "max_steps": 3, "authorized_imports": ["json"]})
    assert resolve_spec("careful").authorized_imports == ["json"]
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text("writer:\n  max_steps: 4\n  tools: [echo]\n")
    monkeypatch.setenv("COUNTERSIGN_AGENT_PROFILES", str(profiles))
    assert resolve_spec("writer").max_steps == 4
    with pytest.raises(ConfigurationError, match="No agent profile is named 'nobody'.*careful"):
        resolve_spec("nobody")
    assert load_definition_file(ROOT / "examples" / "agent_workflow.yaml").steps[1].agent


def test_models_come_from_the_environment_and_missing_packages_are_explained(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("COUNTERSIGN_MODEL_PROVIDER", "COUNTERSIGN_MODEL_ID", "COUNTERSIGN_MODEL_API_BASE"):
        monkeypatch.delenv(name, raising=False)
    assert model_label(effective_model_spec()) == "rehearsal (no LLM)"
    monkeypatch.setenv("COUNTERSIGN_MODEL_PROVIDER", "openai")
    monkeypatch.setenv("COUNTERSIGN_MODEL_ID", "llama3.1")
    monkeypatch.setenv("COUNTERSIGN_MODEL_API_BASE", "http://127.0.0.1:11434/v1")
    spec = effective_model_spec()
    assert (spec.provider, spec.model_id, model_label(spec)) == ("openai", "llama3.1", "openai:llama3.1")
    model = build_model(spec)
    assert type(model).__name__ == "OpenAIModel" and model.model_id == "llama3.1"
    assert str(model.client.base_url).startswith("http://127.0.0.1:11434/v1")
    with pytest.raises(ConfigurationError, match="needs the 'litellm' package"):
        build_model(ModelSpec(provider="litellm", model_id="anthropic/claude-sonnet-4"))
    with pytest.raises(ConfigurationError, match="Set COUNTERSIGN_MODEL_ID"):
        build_model(ModelSpec(provider="openai"))


def test_registered_tools_get_inputs_from_their_signatures() -> None:
    def charge(
        amount: float,
        currency: str = "USD",
        note: str | None = None,
        items: list[dict[str, Any]] | None = None,
        idempotency_key: str = "",
    ) -> dict:
        return {}

    assert registry_inputs(charge) == {
        "amount": {"type": "number", "description": "amount (number)"},
        "currency": {"type": "string", "description": "currency (string)", "nullable": True},
        "note": {"type": "string", "description": "note (string)", "nullable": True},
        "items": {"type": "array", "description": "items (array)", "nullable": True},
    }


def tools_for(held: set[str]) -> dict[str, Any]:
    registry = ToolRegistry()
    done: list[dict[str, Any]] = []

    @registry.register("charge")
    def charge(amount: float, idempotency_key: str) -> dict[str, Any]:
        """Charge."""
        done.append({"amount": amount, "key": idempotency_key})
        return {"charged": amount}

    ctx = RunContext(None, registry, "wf", "step", "wf/1", held=held)
    tools = {t.name: t for t in build_tools(ctx, ["charge"])}
    return {"tools": tools, "ctx": ctx, "done": done}


def test_a_held_tool_stops_before_it_runs_and_nothing_runs_after_it() -> None:
    world = tools_for({"charge"})
    charge = world["tools"]["charge"]
    with pytest.raises(HoldForApproval) as held:
        charge(amount=5.0)
    assert (held.value.tool, held.value.arguments, held.value.kind) == ("charge", {"amount": 5.0}, "held")
    assert not isinstance(held.value, Exception)  # smolagents cannot swallow it
    with pytest.raises(HoldForApproval):
        world["tools"]["create_checkpoint"](name="after")
    assert world["done"] == []
    with pytest.raises(ValueError, match="charge was not called: Argument amount has type"):
        tools_for({"charge"})["tools"]["charge"](amount="five")


def test_request_approval_refuses_an_unknown_approval_type_to_the_model() -> None:
    tool = tools_for(set())["tools"]["request_approval"]
    with pytest.raises(ValueError, match="approval_config.type"):
        tool(title="t", description="d", approval_type="vote")
    with pytest.raises(HoldForApproval):
        tool(title="t", description="d", approval_type="form")


def test_an_approvers_edit_is_checked_against_the_held_tools_inputs() -> None:
    charge = tools_for({"charge"})["tools"]["charge"]
    call = make_call("charge", {"amount": 5.0}, smolagents_input_schema(charge.inputs))
    assert edit_problems(call, {}) == []
    assert edit_problems(call, {"arguments": {"amount": 3}}) == []
    assert edit_problems(call, {"arguments": {"amount": "x"}})[0].startswith("arguments.amount")
    assert "cannot name another tool" in edit_problems(call, {"tool": "refund"})[0]
    assert "no argument named 'note'" in edit_problems(call, {"arguments": {"note": 1}})[0]


def test_memory_survives_a_json_round_trip() -> None:
    steps = [
        TaskStep(task="Do it."),
        ActionStep(
            step_number=1,
            timing=Timing(start_time=1.0, end_time=2.5),
            tool_calls=[ToolCall(name="charge", arguments={"amount": 5}, id="c1")],
            model_output="calling charge",
            observations="{'charged': 5}",
            token_usage=TokenUsage(input_tokens=10, output_tokens=3),
        ),
        ActionStep(
            step_number=2,
            timing=Timing(start_time=3.0, end_time=3.1),
            error=AgentToolCallError("Argument amount is required", QUIET_LOGGER),
            model_output="oops",
        ),
    ]
    saved = json.loads(json.dumps(dump_memory(steps)))
    restored = load_memory(saved)
    assert [m.dict() if hasattr(m, "dict") else m for m in restored][0] == {
        "task": "Do it.",
        "task_images": None,
    }
    for before, after in zip(steps[1:], restored[1:], strict=True):
        assert [m.content for m in before.to_messages()] == [m.content for m in after.to_messages()]
    assert type(restored[2].error).__name__ == "AgentToolCallError"
    assert restored[1].token_usage.total_tokens == 13


def test_console_tracing_prints_spans_and_closes_them_when_the_body_raises(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import core.agents.tracing as tracing
    import core.telemetry.tracing

    monkeypatch.setenv("COUNTERSIGN_OTEL", "console")
    monkeypatch.setattr(core.telemetry.tracing, "_configured", False)
    monkeypatch.setattr(core.telemetry.tracing, "_provider", None)
    from opentelemetry import trace

    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    monkeypatch.setattr(trace, "_TRACER_PROVIDER_SET_ONCE", trace.Once())
    with pytest.raises(HoldForApproval), tracing.span("countersign.agent.run", step="pay"):
        raise HoldForApproval("charge", {}, "held")
    out = capsys.readouterr().err  # spans go to stderr: stdout is the CLI's output
    assert '"name": "countersign.agent.run"' in out
    assert '"countersign.outcome": "HoldForApproval"' in out and '"step": "pay"' in out


def test_request_approval_takes_the_seeds_required_approver() -> None:
    from core.agents.tools import requested_approver

    assert requested_approver({"required_approver": "admin@company.com"}) == "admin@company.com"
    assert requested_approver({"approver": "ops", "required_approver": "x@y.z"}) == "ops"
    assert requested_approver({}) is None
    tool = tools_for(set())["tools"]["request_approval"]
    with pytest.raises(HoldForApproval) as held:
        tool(
            title="File Deletion Approval",
            description="Delete 100GB of old backups",
            approval_type="binary",
            required_approver="admin@company.com",
        )
    assert held.value.arguments["required_approver"] == "admin@company.com"
