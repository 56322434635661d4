"""The agent side of supervised conversations: flows, the model, one answer.

A conversation's agent is a direct call to a smolagents ``Model`` with the
flow's instructions as the system message followed by the model history
(user and assistant messages with ``visible_to_model``), nothing else: a
supervisor's message is never in the list it is given.
A flow with tools is answered by its smolagents agent instead
(``core.conversations.runner``), given the same model history.

Flows are ``tenant_flows`` rows (a flow is named by tenant and name). When a
tenant has none, or the person belongs to no tenant (platform staff), there
is one built-in flow, ``assistant``, using the configured model (the
``COUNTERSIGN_MODEL_*`` settings) or, without one, the labelled rehearsal
chat model below, which never calls an LLM.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from core.agents.llm import REHEARSAL_LABEL, build_model, model_label
from core.base.errors import FlowNotFound
from core.conversations.messages import message_text
from core.definitions.agents import AgentSpec, ModelSpec

if TYPE_CHECKING:
    from smolagents import Model

    from core.store.db import Database
    from core.store.tables import ChatMessage as ChatMessageRow
    from core.store.tables import ChatSession

BUILTIN_FLOW = "assistant"
DEFAULT_INSTRUCTIONS = (
    "You are a helpful assistant. Answer the user's last message briefly and "
    "politely, using the conversation so far."
)


@dataclass(frozen=True)
class Flow:
    """What a session talks to: the flow's instructions and model settings."""

    tenant: str | None
    name: str
    description: str = ""
    agent_type: str = "tool_calling"
    profile: str | None = None
    tools: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    builtin: bool = False

    @property
    def instructions(self) -> str:
        return str(self.parameters.get("instructions") or DEFAULT_INSTRUCTIONS)


def builtin_flow(tenant: str | None) -> Flow:
    return Flow(
        tenant=tenant,
        name=BUILTIN_FLOW,
        builtin=True,
        description="A general assistant with the configured model (built in).",
    )


def list_flows(db: Database, tenant: str | None) -> list[Flow]:
    """The flows a person of ``tenant`` may start a session with."""
    from core.store.tables import TenantFlow

    if tenant is None:
        return [builtin_flow(None)]
    with db.read() as session:
        rows = list(
            session.scalars(select(TenantFlow).where(TenantFlow.tenant == tenant).order_by(TenantFlow.name))
        )
    flows = [
        Flow(
            tenant=r.tenant,
            name=r.name,
            description=r.description,
            agent_type=r.agent_type,
            profile=r.profile,
            tools=list(r.tools),
            parameters=dict(r.parameters),
        )
        for r in rows
    ]
    return flows or [builtin_flow(tenant)]


def get_flow(db: Database, tenant: str | None, name: str) -> Flow:
    for flow in list_flows(db, tenant):
        if flow.name == name:
            return _with_profile(db, flow)
    where = f"tenant {tenant!r}" if tenant else "the platform"
    raise FlowNotFound(f"No conversation flow named {name!r} exists for {where}.")


def _with_profile(db: Database, flow: Flow) -> Flow:
    """A flow that names an agent profile takes its instructions and model
    from it; the flow's own parameters win."""
    if not flow.profile:
        return flow
    from core.agents.profiles import find_spec_data

    data = find_spec_data(db, flow.profile) or {}
    inherited = {"instructions": data.get("instructions"), "model": data.get("model")}
    merged = {k: v for k, v in inherited.items() if v} | flow.parameters
    return Flow(
        tenant=flow.tenant,
        name=flow.name,
        description=flow.description,
        agent_type=flow.agent_type,
        profile=flow.profile,
        tools=flow.tools,
        parameters=merged,
        builtin=flow.builtin,
    )


def _model_spec_for(db: Database, chat: ChatSession, flow: Flow) -> ModelSpec:
    """The model settings for one session's answers: platform, then the
    session's tenant, then its user, then the flow's own ``parameters.model``
    (the most specific), as ``core.tenants.registry.resolve_model_spec`` layers them."""
    from core.tenants.registry import resolve_model_spec

    # The same shorthand as a step's agent.model: "rehearsal", a model id, or a mapping.
    spec = AgentSpec.model_validate({"model": flow.parameters.get("model") or {}}).model
    return resolve_model_spec(db, chat.tenant, chat.user_email, flow=spec)


def chat_model(db: Database, chat: ChatSession, flow: Flow) -> tuple[Model, str]:
    """The smolagents model answering this session, and its label."""
    spec = _model_spec_for(db, chat, flow)
    if spec.provider == "rehearsal":
        from core.conversations.rehearsal import RehearsalChatModel

        return RehearsalChatModel(), REHEARSAL_LABEL
    return build_model(spec), model_label(spec)


@dataclass(frozen=True)
class ModelAnswer:
    text: str
    seconds: float
    input_tokens: int | None
    output_tokens: int | None
    steps: int | None = None  # agent steps when the flow's agent ran (core.conversations.runner)


def model_messages(flow: Flow, history: list[ChatMessageRow]) -> list[Any]:
    """What the model is given: the flow's instructions, then the model history.

    Only user and assistant rows visible to the model are taken, whatever the
    caller passes: a supervisor's message can never reach the model.
    """
    from smolagents import ChatMessage, MessageRole

    roles = {"user": MessageRole.USER, "assistant": MessageRole.ASSISTANT}
    messages = [ChatMessage(role=MessageRole.SYSTEM, content=[{"type": "text", "text": flow.instructions}])]
    messages += [
        ChatMessage(role=roles[row.role], content=[{"type": "text", "text": row.content}])
        for row in history
        if row.visible_to_model and row.role in roles
    ]
    return messages


def ask_model(model: Model, flow: Flow, history: list[ChatMessageRow]) -> ModelAnswer:
    """One model call; runs outside any database transaction."""
    started = time.monotonic()
    reply = model.generate(model_messages(flow, history))
    usage = getattr(reply, "token_usage", None)
    text = message_text(reply).strip() or "(the model gave an empty answer)"
    return ModelAnswer(
        text=text,
        seconds=time.monotonic() - started,
        input_tokens=getattr(usage, "input_tokens", None),
        output_tokens=getattr(usage, "output_tokens", None),
    )
