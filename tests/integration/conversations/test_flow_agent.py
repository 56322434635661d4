"""Sessions whose flow has tools run the flow's smolagents agent, on SQLite and
PostgreSQL: the tool runs with the model's arguments, the final answer is the
reply, every step and tool call is in execution_logs, a supervisor's message
never reaches the agent, held tools are refused, rehearsal answers directly."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from smolagents import ChatMessage, MessageRole, Model
from smolagents.models import ChatMessageToolCall, ChatMessageToolCallFunction
from smolagents.monitoring import TokenUsage
from sqlalchemy import func, select

from core.base.errors import AgentUnavailable, FlowNotSupported
from core.conversations import sessions as conv
from core.store.db import Database
from core.store.tables import ChatSession, ExecutionLog, TenantFlow, utcnow
from tests.integration.conversations.conftest import ACME_ADMIN, ACME_USER

SECRET = "Internal: the kitchen closes early today (note 4412)."
ITEMS = [{"sku": "muffin", "price": 3.5, "quantity": 2}]
# A step: the (role, text) messages given -> a tool call (name, arguments) or code text.
Script = Callable[[list[tuple[str, str]]], tuple[str, dict[str, Any]] | str]


def _text(message: ChatMessage | dict[str, Any]) -> tuple[str, str]:
    assert isinstance(message, ChatMessage)
    content = message.content
    text = (
        "".join(str(p.get("text", "")) for p in content) if isinstance(content, list) else str(content or "")
    )
    return str(getattr(message.role, "value", message.role)), text


class ToolScriptModel(Model):
    """A smolagents model that follows a script, one entry per agent step, and
    records every message list it was given."""

    def __init__(
        self,
        script: list[Script],
        *,
        fail: bool = False,
        gate: threading.Event | None = None,
        entered: threading.Event | None = None,
    ) -> None:
        super().__init__(model_id="scripted-tools")
        self.script, self.fail, self.gate, self.entered = script, fail, gate, entered
        self.calls: list[list[tuple[str, str]]] = []

    def generate(
        self,
        messages: list[ChatMessage | dict[str, Any]],
        stop_sequences: list[str] | None = None,
        response_format: dict[str, str] | None = None,
        tools_to_call_from: list[Any] | None = None,
        **kwargs: Any,
    ) -> ChatMessage:
        seen = [_text(m) for m in messages]
        self.calls.append(seen)
        if self.entered is not None:
            self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(30), "the test never opened the gate"
        if self.fail:
            raise ConnectionError("model server refused the connection")
        step = self.script[min(len(self.calls), len(self.script)) - 1](seen)
        usage = TokenUsage(input_tokens=10, output_tokens=5)
        if isinstance(step, str):  # a code agent's answer
            return ChatMessage(role=MessageRole.ASSISTANT, content=step, token_usage=usage)
        name, arguments = step
        return ChatMessage(
            role=MessageRole.ASSISTANT,
            content=f"calling {name}",
            token_usage=usage,
            tool_calls=[
                ChatMessageToolCall(
                    function=ChatMessageToolCallFunction(name=name, arguments=arguments),
                    id=f"call_{len(self.calls)}",
                    type="function",
                )
            ],
        )

    def texts_given(self) -> list[str]:
        return [text for call in self.calls for _, text in call]


def _total_seen(seen: list[tuple[str, str]]) -> str:
    """The order total the tool returned, as the model read it in its observation."""
    observed = next(text for _, text in reversed(seen) if "'total'" in text or '"total"' in text)
    return observed.split("total")[1].split(",")[0].strip("'\": ")


def validate_then_answer() -> list[Script]:
    return [
        lambda seen: ("validate_order", {"order_id": "A1", "items": ITEMS}),
        lambda seen: ("final_answer", {"answer": f"Your order A1 comes to {_total_seen(seen)}."}),
    ]


def _flow(
    db: Database,
    name: str,
    *,
    agent_type: str = "tool_calling",
    tools: list[str] | None = None,
    parameters: dict[str, Any] | None = None,
) -> None:
    with db.session() as session:
        now = utcnow()
        session.add(
            TenantFlow(
                tenant="acme",
                name=name,
                agent_type=agent_type,
                tools=tools if tools is not None else ["validate_order"],
                parameters={"instructions": "You check food orders.", "max_steps": 4, **(parameters or {})},
                created_at=now,
                updated_at=now,
            )
        )


def _logs(db: Database, session_id: str) -> list[ExecutionLog]:
    with db.read() as session:
        return list(
            session.scalars(
                select(ExecutionLog).where(ExecutionLog.session_id == session_id).order_by(ExecutionLog.id)
            )
        )


def test_a_tool_flow_runs_its_agent_and_logs_every_step_and_tool_call(people: Database) -> None:
    db = people
    _flow(db, "checker")
    model = ToolScriptModel(validate_then_answer())
    chat = conv.start_session(db, ACME_USER, "checker")
    posted = conv.post_user_message(db, chat.id, ACME_USER, "Check order A1 please.", model=model)

    assert posted.outcome == "answered" and posted.reply is not None
    # The tool's result (2 x 3.5) reached the model, which put it in its final answer.
    assert posted.reply.content == "Your order A1 comes to 7.0."
    assert (posted.reply.role, posted.reply.author) == ("assistant", "agent:checker")
    assert len(model.calls) == 2
    system = model.calls[0][0]
    assert system[0] == "system" and "You check food orders." in system[1] and "validate_order" in system[1]
    assert "Check order A1 please." in model.calls[0][1][1]

    logs = _logs(db, chat.id)
    assert {(x.tenant, x.agent, x.step_name) for x in logs} == {("acme", "checker", "conversation")}
    assert [x.kind for x in logs] == ["agent_step", "tool_call", "agent_step", "final_answer"]
    step, call, _, final = logs
    assert step.message == "Step 1: called validate_order" and step.data["step_number"] == 1
    assert call.tool_name == "validate_order"
    assert call.data["arguments"] == {"order_id": "A1", "items": ITEMS}
    assert call.data["result"] == {"order_id": "A1", "valid": True, "total": 7.0, "items": 1}
    assert final.message == "Your order A1 comes to 7.0."
    assert (final.data["agent_steps"], final.data["model"], final.data["message_id"]) == (
        2,
        "scripted-tools",
        posted.reply.id,
    )
    assert (final.data["input_tokens"], final.data["output_tokens"]) == (20, 10)


def test_a_supervisor_message_never_reaches_a_tool_agent_even_after_release(people: Database) -> None:
    db = people
    _flow(db, "checker")
    model = ToolScriptModel(validate_then_answer())
    chat = conv.start_session(db, ACME_USER, "checker")
    conv.post_user_message(db, chat.id, ACME_USER, "Check order A1 please.", model=model)
    conv.take_over(db, chat.id, ACME_ADMIN)
    assert conv.post_user_message(db, chat.id, ACME_USER, "Is it ready?", model=model).outcome == "supervised"
    conv.inject(db, chat.id, ACME_ADMIN, SECRET)
    conv.release(db, chat.id, ACME_ADMIN)
    model.calls.clear()
    again = conv.post_user_message(db, chat.id, ACME_USER, "And again, A1?", model=model)

    assert again.outcome == "answered" and again.reply is not None
    assert len(model.calls) == 2  # a run after release, with tools
    assert all(SECRET not in text and "kitchen" not in text for text in model.texts_given())
    task = model.calls[0][1][1]
    # The earlier turns, including the user's message while supervised, are the agent's context.
    assert "User: Check order A1 please.\nAssistant: Your order A1 comes to 7.0.\nUser: Is it ready?" in task
    assert task.rstrip().endswith("And again, A1?")
    assert [x.tool_name for x in _logs(db, chat.id) if x.kind == "tool_call"] == ["validate_order"] * 2


def test_a_code_agent_flow_calls_its_tool_from_code(people: Database) -> None:
    db = people
    _flow(db, "coder", agent_type="code")
    call = f"result = validate_order(order_id='B7', items={ITEMS!r})\nprint(result['total'])"
    model = ToolScriptModel(
        [
            lambda seen: f"Thought: check it.\n<code>\n{call}\n</code>",
            lambda seen: "Thought: done.\n<code>\nfinal_answer('B7 is valid')\n</code>",
        ]
    )
    chat = conv.start_session(db, ACME_USER, "coder")
    posted = conv.post_user_message(db, chat.id, ACME_USER, "Is B7 valid?", model=model)

    assert posted.reply is not None and posted.reply.content == "B7 is valid"
    assert any("7.0" in text for _, text in model.calls[1][2:])  # the printed total was observed
    tool_calls = [x for x in _logs(db, chat.id) if x.kind == "tool_call"]
    assert [(x.tool_name, x.data["arguments"]) for x in tool_calls] == [
        ("validate_order", {"order_id": "B7", "items": ITEMS})
    ]


@pytest.mark.parametrize(
    ("tools", "parameters", "named"),
    [
        (["validate_order", "send_confirmation"], {"held_tools": ["send_confirmation"]}, "send_confirmation"),
        (["validate_order", "request_approval"], {}, "request_approval"),
    ],
)
def test_a_flow_with_held_tools_is_refused_at_start_and_nothing_is_written(
    people: Database, tools: list[str], parameters: dict[str, Any], named: str
) -> None:
    db = people
    _flow(db, "held", tools=tools, parameters=parameters)
    with pytest.raises(FlowNotSupported, match=f"uses {named}.*need a person's approval"):
        conv.start_session(db, ACME_USER, "held")
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(ChatSession)) == 0


def test_a_failing_model_in_an_agent_run_is_logged_and_the_message_kept(people: Database) -> None:
    db = people
    _flow(db, "checker")
    chat = conv.start_session(db, ACME_USER, "checker")
    with pytest.raises(AgentUnavailable, match="ConnectionError.*your message is saved"):
        conv.post_user_message(
            db, chat.id, ACME_USER, "Anyone?", model=ToolScriptModel(validate_then_answer(), fail=True)
        )
    assert [m.role for m in conv.full_history(db, chat.id, ACME_USER)] == ["user"]
    logs = _logs(db, chat.id)
    assert [(x.kind, x.level, x.agent) for x in logs] == [("model_error", "error", "checker")]
    assert "refused the connection" in logs[0].message


def test_a_take_over_during_a_run_stops_it_before_the_next_step(people: Database) -> None:
    db = people
    _flow(db, "checker")
    gate, entered = threading.Event(), threading.Event()
    model = ToolScriptModel(validate_then_answer(), gate=gate, entered=entered)
    chat = conv.start_session(db, ACME_USER, "checker")
    results: list[conv.Posted] = []
    writer = threading.Thread(
        target=lambda: results.append(conv.post_user_message(db, chat.id, ACME_USER, "Check A1", model=model))
    )
    writer.start()
    assert entered.wait(30), "the model was never asked"
    conv.take_over(db, chat.id, ACME_ADMIN)
    gate.set()
    writer.join(30)
    assert not writer.is_alive()
    assert results[0].outcome == "taken_over" and results[0].reply is None
    assert len(model.calls) == 1  # step 1's call ran; no second step was started
    kinds = [(x.kind, x.data.get("dropped")) for x in _logs(db, chat.id)]
    assert kinds == [("agent_step", None), ("tool_call", None), ("agent_step", True)]


def test_rehearsal_answers_a_tool_flow_directly_and_says_so(
    people: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("COUNTERSIGN_MODEL_PROVIDER", "COUNTERSIGN_MODEL_ID"):
        monkeypatch.delenv(name, raising=False)
    db = people
    _flow(db, "checker", parameters={"model": "rehearsal"})
    chat = conv.start_session(db, ACME_USER, "checker")
    posted = conv.post_user_message(db, chat.id, ACME_USER, "Check A1")
    assert posted.reply is not None
    assert posted.reply.content.startswith("[rehearsal, no LLM] You said: 'Check A1'.")
    assert "tool_calling agent and its tools validate_order were not run" in posted.reply.content
    logs = _logs(db, chat.id)
    assert [(x.kind, x.data["model"]) for x in logs] == [("final_answer", "rehearsal (no LLM)")]
    assert json.dumps(logs[0].data["agent_steps"]) == "0"


def test_a_flow_given_a_held_tool_after_the_start_is_refused_and_the_message_kept(people: Database) -> None:
    db = people
    _flow(db, "checker")
    chat = conv.start_session(db, ACME_USER, "checker")
    with db.session() as session:
        row = session.get(TenantFlow, ("acme", "checker"))
        assert row is not None
        row.parameters = {**row.parameters, "held_tools": ["validate_order"]}
    model = ToolScriptModel(validate_then_answer())
    with pytest.raises(FlowNotSupported, match="'checker' uses validate_order"):
        conv.post_user_message(db, chat.id, ACME_USER, "Check A1", model=model)
    assert model.calls == [] and _logs(db, chat.id) == []
    assert [m.content for m in conv.full_history(db, chat.id, ACME_USER)] == ["Check A1"]


def test_a_code_agent_flow_runs_in_the_guarded_interpreter(people: Database) -> None:
    """A session's code agent gets the workflow steps' executor (core.agents.sandbox): its
    code cannot read a generator's frame (probe D, finding 1) and the run is refused."""
    db = people
    _flow(db, "coder", agent_type="code")
    walk = "g = (x for x in [1])\nprint(g.gi_frame.f_back.f_locals)"
    model = ToolScriptModel(
        [
            lambda seen: f"Thought: look around.\n<code>\n{walk}\n</code>",
            lambda seen: "Thought: done.\n<code>\nfinal_answer('nothing')\n</code>",
        ]
    )
    chat = conv.start_session(db, ACME_USER, "coder")
    with pytest.raises(
        AgentUnavailable, match="ToolTampering: the agent's code tried to use the introspection"
    ):
        conv.post_user_message(db, chat.id, ACME_USER, "Look around", model=model)
    assert len(model.calls) == 1  # nothing ran after the refusal
