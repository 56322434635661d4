"""A session's answer when its flow has tools: the flow's smolagents agent.

A flow (with its agent profile, if it names one) whose tools are not empty
is answered by a ``ToolCallingAgent`` or ``CodeAgent`` (the flow's
``agent_type``) built as workflow task steps build theirs: the same agent
classes, the same registry tools (``core.agents.tools.registry_tool``), the
flow's instructions and ``max_steps``, and the session's model (platform,
tenant, user, flow, as ``conversation_agent.chat_model`` resolves it). A flow
without tools keeps the cheaper direct model call
(``conversation_agent.ask_model``).

The agent sees the model history only: its task is a transcript of the user
and assistant messages with ``visible_to_model`` followed by the user's newest
message. Supervisor messages are filtered out here again, whatever the caller
passes.

Held tools (``held_tools``, ``request_approval``, ``rollback``) need a person's
approval and a durable pause that only workflows have, and
``create_checkpoint`` needs a workflow: a session refuses such a flow at
start and before each answer (``FlowNotSupported``), rather than silently
running it without the approvals it was defined with.

Each agent step writes its ``agent_step`` row (and ``tool_call`` rows for the
tools it ran) to ``execution_logs`` in a short transaction of its own, after
the step's model call: no transaction is open while the model thinks. After
each step the session is checked: once it was taken over the run stops, so
no further tool runs for an answer that will be dropped.

In rehearsal (no model configured) a tool flow is answered by the rehearsal
chat model directly, labelled, and says that the tools were not run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from core.agents import execution_logs
from core.agents.execution_logs import LogContext, LogEntry
from core.base.errors import FlowNotSupported
from core.conversations.agent import ModelAnswer, ask_model
from core.definitions.agents import BUILTIN_TOOLS, AgentSpec

if TYPE_CHECKING:
    from smolagents import Model
    from smolagents.memory import ActionStep

    from core.conversations.agent import Flow
    from core.engine.tools import ToolRegistry
    from core.store.db import Database
    from core.store.tables import ChatMessage as ChatMessageRow
    from core.store.tables import ChatSession

STEP_NAME = "conversation"
MAX_TEXT = 2000
TASK_INTRO = (
    "Answer the user's newest message in this conversation. Use your tools when they help. "
    "Your final answer is sent to the user as your reply, so write it to them."
)


def session_agent_spec(db: Database, flow: Flow) -> AgentSpec | None:
    """The agent a session of ``flow`` runs, or None when the flow has no tools
    (it is answered by one direct model call). Refuses a flow with held tools."""
    if flow.builtin or flow.tenant is None or not (flow.tools or flow.profile):
        return None
    from pydantic import ValidationError

    from core.agents.profiles import stored_profiles
    from core.base.errors import InvalidTenantSettings
    from core.tenants.flows import flow_agent_spec, validation_problems

    try:
        spec = flow_agent_spec(db, flow.tenant, flow.name, stored_profiles(db))
    except ValidationError as exc:  # a row written without save_flow's checks
        raise InvalidTenantSettings(validation_problems(exc), what=f"flow {flow.name!r}") from None
    if not spec.tools:
        return None
    needs_person = sorted({*spec.held_tools, *(t for t in spec.tools if t in BUILTIN_TOOLS)})
    if needs_person:
        raise FlowNotSupported(
            f"The flow {flow.name!r} uses {', '.join(needs_person)}, which need a person's approval "
            "or a workflow; conversations cannot run it. Remove these tools from the flow, or run "
            "it as a workflow step."
        )
    return spec


def session_task(history: list[ChatMessageRow]) -> str:
    """The agent's task: the model history as a transcript, then the newest user message."""
    turns = [row for row in history if row.visible_to_model and row.role in ("user", "assistant")]
    newest = turns.pop() if turns and turns[-1].role == "user" else None
    parts = [TASK_INTRO]
    if turns:
        said = "\n".join(f"{'User' if row.role == 'user' else 'Assistant'}: {row.content}" for row in turns)
        parts.append(f"## Conversation so far (oldest first)\n{said}")
    parts.append(f"## The user's newest message\n{newest.content if newest else '(none)'}")
    return "\n\n".join(parts)


def answer_with_flow(
    db: Database,
    chat: ChatSession,
    flow: Flow,
    spec: AgentSpec | None,
    history: list[ChatMessageRow],
    model: Model,
    *,
    label: str,
    message_id: int,
    still_active: Callable[[], bool],
    registry: ToolRegistry | None = None,
) -> ModelAnswer:
    """The session's answer: one direct call, or a run of the flow's agent."""
    from core.conversations.rehearsal import RehearsalChatModel

    if spec is None:
        return ask_model(model, flow, history)
    if isinstance(model, RehearsalChatModel):
        answer = ask_model(model, flow, history)
        note = (
            f" (Rehearsal: the {flow.name} flow's {spec.type} agent and its tools "
            f"{', '.join(spec.tools)} were not run.)"
        )
        return replace(answer, text=answer.text + note, steps=0)
    return _AgentRun(db, chat, flow, spec, model, label=label, message_id=message_id, registry=registry).run(
        history, still_active
    )


class _AgentRun:
    """One run of a flow's agent for one user message."""

    def __init__(
        self,
        db: Database,
        chat: ChatSession,
        flow: Flow,
        spec: AgentSpec,
        model: Model,
        *,
        label: str,
        message_id: int,
        registry: ToolRegistry | None,
    ) -> None:
        from smolagents import CodeAgent
        from smolagents.monitoring import LogLevel

        from core.agents.policy import CountersignToolCallingAgent
        from core.agents.sandbox import guarded_executor
        from core.agents.tools import RunContext, registry_tool

        # The process's tools (COUNTERSIGN_TOOL_MODULES, the demo's) were loaded when it
        # opened its database (core.runtime.open_database).
        from core.engine.tools import default_registry

        self.db, self.spec, self.label = db, spec, label
        # No workflow: tools get the session id in the key, so a tool can drop a
        # duplicate call of the same answer.
        self.ctx = RunContext(
            db,
            registry or default_registry,
            workflow_id="",
            step_name=STEP_NAME,
            idempotency_key=f"session:{chat.id}/message:{message_id}",
        )
        tools = [registry_tool(self.ctx, name) for name in spec.tools]
        common: dict[str, Any] = {
            "tools": tools,
            "model": model,
            "max_steps": spec.max_steps,
            "instructions": flow.instructions,
            "verbosity_level": LogLevel.OFF,
        }
        if spec.type == "code":
            self.agent: Any = CodeAgent(
                additional_authorized_imports=spec.authorized_imports,
                executor_type=spec.executor,
                # The workflow steps' executor: introspection refused (core.agents.sandbox).
                executor=guarded_executor(spec.authorized_imports, spec.executor, self.ctx),
                **common,
            )
        else:
            self.agent = CountersignToolCallingAgent(context=self.ctx, **common)
        self.log_context = LogContext(
            tenant=chat.tenant, session_id=chat.id, step_name=STEP_NAME, agent=flow.name
        )
        self.logged_records = 0

    def run(self, history: list[ChatMessageRow], still_active: Callable[[], bool]) -> ModelAnswer:
        from smolagents.agents import ActionStep, FinalAnswerStep
        from smolagents.utils import AgentGenerationError

        from core.agents.tools import ToolTampering
        from core.base.errors import CallNotReleased

        started = time.monotonic()
        stream = self.agent.run(session_task(history), stream=True, max_steps=self.spec.max_steps)
        final: Any = None
        try:
            for event in stream:
                if isinstance(event, ActionStep):
                    if event.model_output is None and not event.tool_calls and event.error is None:
                        continue  # the model call failed: smolagents raises next, logged as model_error
                    self._write([*execution_logs.step_entries(_step_data(event)), *self._tool_logs()])
                    if not event.is_final_answer and not still_active():
                        stream.close()  # taken over: no more tools for an answer that is dropped
                        return self._answer("(stopped: the session was taken over)", started)
                elif isinstance(event, FinalAnswerStep):
                    final = event.output
        except AgentGenerationError as exc:
            self._write(self._tool_logs())
            # The model failed: the caller logs and shows the model's own error.
            raise (exc.__cause__ if exc.__cause__ is not None else exc) from None
        except ToolTampering as exc:
            self._write(self._tool_logs())
            # A BaseException (nothing in the run may swallow it); the caller shows a plain error.
            raise CallNotReleased(f"ToolTampering: {exc}") from None
        except Exception:
            self._write(self._tool_logs())
            raise
        text = "" if final is None else str(final).strip()
        return self._answer(text or "(the agent gave an empty answer)", started)

    def _answer(self, text: str, started: float) -> ModelAnswer:
        from smolagents.agents import ActionStep

        steps = [s for s in self.agent.memory.steps if isinstance(s, ActionStep)]
        used = [s.token_usage for s in steps if s.token_usage]
        return ModelAnswer(
            text=text,
            seconds=time.monotonic() - started,
            input_tokens=sum(u.input_tokens for u in used) if used else None,
            output_tokens=sum(u.output_tokens for u in used) if used else None,
            steps=len(steps),
        )

    def _tool_logs(self) -> list[LogEntry]:
        entries = execution_logs.tool_entries(self.ctx.records[self.logged_records :])
        self.logged_records = len(self.ctx.records)
        return entries

    def _write(self, entries: list[LogEntry]) -> None:
        if entries:
            with self.db.session() as session:
                execution_logs.record_all(session, self.log_context, entries)


def _clip(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + " ..."


def _step_data(step: ActionStep) -> dict[str, Any]:
    """What ``execution_logs.step_entries`` reads, as the workflow handler records it."""
    usage = step.token_usage
    return {
        "step_number": step.step_number,
        "model_output": _clip(step.model_output),
        "tool_calls": [{"name": c.name, "arguments": c.arguments} for c in step.tool_calls or []],
        "observations": _clip(step.observations),
        "error": str(step.error) if step.error else None,
        "token_usage": {"input": usage.input_tokens, "output": usage.output_tokens} if usage else None,
        "duration": round(step.timing.duration or 0.0, 4),
        "final": step.is_final_answer,
    }


__all__ = ["session_agent_spec", "session_task", "answer_with_flow"]
