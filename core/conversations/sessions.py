"""Supervised conversations: a person chats with a tenant's flow, and a
supervisor can take the conversation over, write to the person, and give it
back to the agent.

Two histories per session, both read from ``chat_messages``:

- the full history: every message (user, assistant, supervisor);
- the model history: user and assistant messages with ``visible_to_model``.
  Supervisor messages are stored with ``visible_to_model = False`` and are
  never given to the model, also after a release. User messages written
  while a supervisor holds the session stay visible to the model: they are
  the person's own words, so the agent knows what was asked once it answers
  again (it does not see the supervisor's replies).

States (``chat_sessions.status``): ``active`` (the agent answers every user
message) -> ``supervised`` (take over: the agent stays silent) -> ``active``
(release) ... -> ``closed`` (nothing more is written). Injecting is allowed
only while supervised and only by the supervisor holding the session; a
release may be done by any supervisor allowed to see the session, so a
session is never stranded by an absent supervisor.

Every state change (``session.started``, ``session.taken_over``,
``session.message_injected``, ``session.released``, ``session.closed``) is a
``workflow_events`` row with ``session_id`` and the person as actor, written
in the same transaction as the change. Each transaction first locks the
session row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN
IMMEDIATE`` serialises writers). The model call happens outside any
transaction; its answer is stored only if no take-over committed since the
user's message was stored (the newest ``session.taken_over`` event is
compared), so an agent reply never appears after a take-over. A flow with
tools runs its smolagents agent (``core.conversations.runner``), which stops
between steps once the session was taken over.

Who may do what is in ``core.conversations.access``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.base.errors import (
    AgentUnavailable,
    AlreadySupervised,
    FlowNotFound,
    InvalidMessage,
    NotAuthorized,
    NotSupervising,
    SessionClosed,
    SessionNotFound,
)
from core.conversations.access import Person, can_see, can_supervise, person
from core.conversations.agent import Flow, chat_model, get_flow, list_flows
from core.conversations.runner import answer_with_flow, session_agent_spec
from core.identity.permissions import Action, decide, refuse
from core.store.tables import ChatMessage, ChatSession, ExecutionLog, Tenant, WorkflowEvent, utcnow
from core.store.tenancy import tenant_scope

if TYPE_CHECKING:
    from smolagents import Model

    from core.store.db import Database

log = structlog.get_logger(__name__)

STATUSES = ("active", "supervised", "closed")
MAX_MESSAGE_CHARS = 20_000
TAKEN_OVER = "session.taken_over"


@dataclass(frozen=True)
class Posted:
    """A user message and what followed: the agent's reply, or why none."""

    message: ChatMessage
    reply: ChatMessage | None
    # "answered", "supervised" (a person holds the session) or "taken_over"
    # (a take-over committed while the model was thinking; its answer dropped)
    outcome: str


# -- visibility ---------------------------------------------------------------------------


def list_sessions(
    db: Database, viewer: str, *, status: str | None = None, limit: int = 200
) -> list[ChatSession]:
    """The sessions ``viewer`` may see, most recently changed first."""
    who = person(db, viewer)
    query = select(ChatSession).order_by(ChatSession.updated_at.desc(), ChatSession.id).limit(limit)
    if not who.is_supervisor:
        query = query.where(ChatSession.user_email == who.email)
    else:
        query = tenant_scope(who.tenant).apply(query, ChatSession.tenant)
    if status:
        query = query.where(ChatSession.status == status)
    with db.read() as session:
        return list(session.scalars(query))


def get_session(db: Database, session_id: str, viewer: str) -> ChatSession:
    who = person(db, viewer)
    with db.read() as session:
        chat = session.get(ChatSession, session_id)
    if chat is None or not can_see(who, chat):
        # Someone else's session is reported as missing, not as forbidden.
        raise SessionNotFound(f"No conversation session has the id {session_id!r}.")
    return chat


def full_history(db: Database, session_id: str, viewer: str) -> list[ChatMessage]:
    get_session(db, session_id, viewer)
    with db.read() as session:
        return _messages(session, session_id, model_only=False)


def model_history(db: Database, session_id: str, viewer: str) -> list[ChatMessage]:
    get_session(db, session_id, viewer)
    with db.read() as session:
        return _messages(session, session_id, model_only=True)


def change_marker(db: Database, session_id: str) -> tuple[str, str | None, int]:
    """(status, supervisor, newest message id), in one indexed query: what
    pages poll to notice what the other party did."""
    newest = (
        select(func.coalesce(func.max(ChatMessage.id), 0))
        .where(ChatMessage.session_id == session_id)
        .scalar_subquery()
    )
    with db.read() as session:
        row = session.execute(
            select(ChatSession.status, ChatSession.supervisor, newest).where(ChatSession.id == session_id)
        ).one_or_none()
    if row is None:
        raise SessionNotFound(f"No conversation session has the id {session_id!r}.")
    return str(row[0]), row[1], int(row[2] or 0)


def flows_for(db: Database, email: str) -> list[Flow]:
    return list_flows(db, person(db, email).tenant)


# -- state changes ------------------------------------------------------------------------


def start_session(
    db: Database, user: str, flow: str, tenant: str | None = None, *, title: str = ""
) -> ChatSession:
    """A new, active session of ``user`` with ``flow`` of their tenant.

    ``tenant`` defaults to the user's; only platform people (no tenant) may
    name another tenant.
    """
    who = person(db, user)
    tenant = tenant if tenant is not None else who.tenant
    if who.tenant is not None and tenant != who.tenant:
        raise NotAuthorized("You can only start conversations with your own organisation's flows.")
    if tenant is not None and tenant != who.tenant:
        with db.read() as session:
            if session.get(Tenant, tenant) is None:
                raise FlowNotFound(f"No organisation is named {tenant!r}.")
    chosen = get_flow(db, tenant, flow)
    session_agent_spec(db, chosen)  # refuses a flow with held tools before anything is written
    with db.session() as session:
        chat = ChatSession(
            tenant=tenant,
            flow=chosen.name,
            user_email=who.email,
            title=(title.strip() or f"{chosen.name} conversation")[:500],
            status="active",
        )
        session.add(chat)
        session.flush()
        _event(
            session,
            chat,
            "session.started",
            who.email,
            after={"status": "active"},
            data={"flow": chosen.name, "tenant": tenant},
        )
    return chat


def post_user_message(
    db: Database, session_id: str, author: str, text: str, *, model: Model | None = None
) -> Posted:
    """Store the user's message; while the session is active, the agent answers.

    ``model`` replaces the flow's model (tests pass a scripted one).
    """
    text = _clean(text)
    who = person(db, author)
    with db.session() as session:
        chat = _locked(session, session_id, who)
        if chat.user_email != who.email:
            raise NotAuthorized(
                "Only the person who started this conversation writes in it; "
                "a supervisor takes it over and injects a message instead."
            )
        _refuse_closed(chat)
        message = _add_message(session, chat, "user", who.email, text, visible_to_model=True)
        if chat.status != "active":
            return Posted(message, None, "supervised")
        history = _messages(session, chat.id, model_only=True)
        taken_over_mark = _last_take_over(session, chat.id)
    return _answer(db, chat, message, history, taken_over_mark, model)


def take_over(db: Database, session_id: str, supervisor: str) -> ChatSession:
    """The agent stops answering; ``supervisor`` now holds the session."""
    who = person(db, supervisor)
    with db.session() as session:
        chat = _locked(session, session_id, who, supervise=True)
        _refuse_closed(chat)
        if chat.status == "supervised":
            if chat.supervisor == who.email:
                return chat  # already yours: nothing changes, nothing is recorded
            raise AlreadySupervised(f"{chat.supervisor} has already taken this conversation over.")
        chat.status, chat.supervisor, chat.updated_at = "supervised", who.email, utcnow()
        _event(
            session,
            chat,
            TAKEN_OVER,
            who.email,
            before={"status": "active"},
            after={"status": "supervised", "supervisor": who.email},
        )
    return chat


def inject(db: Database, session_id: str, supervisor: str, text: str) -> ChatMessage:
    """A supervisor's message: the user sees it, the model never does."""
    text = _clean(text)
    who = person(db, supervisor)
    with db.session() as session:
        chat = _locked(session, session_id, who, supervise=True)
        _refuse_closed(chat)
        if chat.status != "supervised" or chat.supervisor != who.email:
            raise NotSupervising(
                "Take this conversation over before writing in it: only the "
                "supervisor holding it can inject a message."
            )
        message = _add_message(session, chat, "supervisor", who.email, text, visible_to_model=False)
        _event(
            session,
            chat,
            "session.message_injected",
            who.email,
            data={"message_id": message.id, "characters": len(text)},
        )
    return message


def release(db: Database, session_id: str, supervisor: str) -> ChatSession:
    """The agent answers again, seeing only its own history."""
    who = person(db, supervisor)
    with db.session() as session:
        chat = _locked(session, session_id, who, supervise=True)
        _refuse_closed(chat)
        if chat.status != "supervised":
            raise NotSupervising("This conversation is not taken over; there is nothing to release.")
        held_by = chat.supervisor
        chat.status, chat.supervisor, chat.updated_at = "active", None, utcnow()
        _event(
            session,
            chat,
            "session.released",
            who.email,
            before={"status": "supervised", "supervisor": held_by},
            after={"status": "active"},
        )
    return chat


def close(db: Database, session_id: str, actor: str) -> ChatSession:
    """Closed for good, by the person who started it or a supervisor."""
    who = person(db, actor)
    with db.session() as session:
        chat = _locked(session, session_id, who)
        if chat.user_email != who.email and not can_supervise(who, chat):
            raise NotAuthorized("Only the person who started this conversation or a supervisor can close it.")
        _refuse_closed(chat)
        before = {"status": chat.status, "supervisor": chat.supervisor}
        chat.status, chat.supervisor, chat.updated_at = "closed", None, utcnow()
        _event(session, chat, "session.closed", who.email, before=before, after={"status": "closed"})
    return chat


def session_events(db: Database, session_id: str, viewer: str) -> list[WorkflowEvent]:
    get_session(db, session_id, viewer)
    with db.read() as session:
        return list(
            session.scalars(
                select(WorkflowEvent).where(WorkflowEvent.session_id == session_id).order_by(WorkflowEvent.id)
            )
        )


# -- the agent's answer ---------------------------------------------------------------------


def _answer(
    db: Database,
    chat: ChatSession,
    message: ChatMessage,
    history: list[ChatMessage],
    taken_over_mark: int,
    model: Model | None,
) -> Posted:
    flow = get_flow(db, chat.tenant, chat.flow)
    spec = session_agent_spec(db, flow)  # None: one direct call; else the flow's agent runs
    label = "scripted"
    try:
        if model is None:
            model, label = chat_model(db, chat, flow)
        else:
            label = str(getattr(model, "model_id", None) or type(model).__name__)
        answer = answer_with_flow(
            db,
            chat,
            flow,
            spec,
            history,
            model,
            label=label,
            message_id=message.id,
            still_active=lambda: _unchanged(db, chat.id, taken_over_mark),
        )
    except Exception as exc:  # noqa: BLE001 - any model failure is logged and shown plainly
        log.warning(
            "conversation model failed",
            session_id=chat.id,
            tenant=chat.tenant,
            flow=chat.flow,
            error=type(exc).__name__,
        )
        with db.session() as session:
            session.add(
                _log_row(
                    chat,
                    "model_error",
                    f"{type(exc).__name__}: {exc}"[:2000],
                    level="error",
                    data={"model": label},
                )
            )
        raise AgentUnavailable(
            f"The agent could not answer ({type(exc).__name__}: {str(exc)[:200]}); your message is saved."
        ) from exc
    data: dict[str, Any] = {
        "model": label,
        "messages_given": len(history),
        "input_tokens": answer.input_tokens,
        "output_tokens": answer.output_tokens,
    }
    if answer.steps is not None:
        data["agent_steps"] = answer.steps
    answer_kind = "agent_step" if answer.steps is None else "final_answer"
    with db.session() as session:
        locked = session.scalars(select(ChatSession).where(ChatSession.id == chat.id).with_for_update()).one()
        if locked.status != "active" or _last_take_over(session, chat.id) != taken_over_mark:
            session.add(
                _log_row(
                    chat,
                    "agent_step",
                    "answer dropped: the session was taken over",
                    data={**data, "dropped": True},
                    seconds=answer.seconds,
                )
            )
            return Posted(message, None, "taken_over")
        reply = _add_message(
            session, locked, "assistant", f"agent:{flow.name}", answer.text, visible_to_model=True
        )
        session.add(
            _log_row(
                chat,
                answer_kind,
                answer.text[:2000],
                data={**data, "message_id": reply.id},
                seconds=answer.seconds,
            )
        )
    return Posted(message, reply, "answered")


def _log_row(
    chat: ChatSession,
    kind: str,
    message: str,
    *,
    level: str = "info",
    data: dict[str, Any] | None = None,
    seconds: float | None = None,
) -> ExecutionLog:
    return ExecutionLog(
        created_at=utcnow(),
        tenant=chat.tenant,
        session_id=chat.id,
        agent=chat.flow,
        kind=kind,
        level=level,
        message=message,
        data=data or {},
        step_name="conversation",
        duration_ms=None if seconds is None else int(seconds * 1000),
    )


# -- helpers --------------------------------------------------------------------------------


def _clean(text: str) -> str:
    text = (text or "").strip()
    if not text:
        raise InvalidMessage("A message cannot be empty.")
    if len(text) > MAX_MESSAGE_CHARS:
        raise InvalidMessage(f"A message can be at most {MAX_MESSAGE_CHARS} characters long.")
    return text


def _locked(session: Session, session_id: str, who: Person, *, supervise: bool = False) -> ChatSession:
    chat = session.scalars(
        select(ChatSession).where(ChatSession.id == session_id).with_for_update()
    ).one_or_none()
    if chat is None or not can_see(who, chat):
        raise SessionNotFound(f"No conversation session has the id {session_id!r}.")
    if supervise and not can_supervise(who, chat):
        # sessions:supervise (core.identity.permissions), refused and recorded like every action.
        _, why = decide(session, who.email, Action.SESSIONS_SUPERVISE, tenant=chat.tenant)
        why = why or f"role {who.role}"
        refuse(
            session,
            who.email,
            Action.SESSIONS_SUPERVISE,
            why,
            role=who.role,
            message=f"{who.email} may not {Action.SESSIONS_SUPERVISE} ({why}). Only a supervisor "
            "(an admin of this organisation or of the platform) can take over, inject "
            "into or release a conversation.",
        )
    return chat


def _refuse_closed(chat: ChatSession) -> None:
    if chat.status == "closed":
        raise SessionClosed()


def _add_message(
    session: Session, chat: ChatSession, role: str, author: str, text: str, *, visible_to_model: bool
) -> ChatMessage:
    message = ChatMessage(
        session_id=chat.id,
        role=role,
        author=author,
        content=text,
        visible_to_model=visible_to_model,
        created_at=utcnow(),
    )
    session.add(message)
    chat.updated_at = message.created_at
    session.flush()
    return message


def _messages(session: Session, session_id: str, *, model_only: bool) -> list[ChatMessage]:
    query = select(ChatMessage).where(ChatMessage.session_id == session_id).order_by(ChatMessage.id)
    if model_only:
        query = query.where(
            ChatMessage.visible_to_model.is_(True), ChatMessage.role.in_(("user", "assistant"))
        )
    return list(session.scalars(query))


def _unchanged(db: Database, session_id: str, taken_over_mark: int) -> bool:
    """Still active and not taken over since ``taken_over_mark`` (read between agent steps)."""
    with db.read() as session:
        status = session.scalar(select(ChatSession.status).where(ChatSession.id == session_id))
        return status == "active" and _last_take_over(session, session_id) == taken_over_mark


def _last_take_over(session: Session, session_id: str) -> int:
    newest = session.scalar(
        select(func.max(WorkflowEvent.id)).where(
            WorkflowEvent.session_id == session_id, WorkflowEvent.event_type == TAKEN_OVER
        )
    )
    return int(newest or 0)


def _event(
    session: Session,
    chat: ChatSession,
    event_type: str,
    actor: str,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    session.add(
        WorkflowEvent(
            session_id=chat.id,
            event_type=event_type,
            actor=actor,
            before=before,
            after=after,
            data={"tenant": chat.tenant, **(data or {})},
            created_at=utcnow(),
        )
    )
