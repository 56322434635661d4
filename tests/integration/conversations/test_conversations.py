"""Supervised conversations on SQLite and PostgreSQL: the two histories, the
state machine and its refusals, audit events, visibility, the race of a user
message with a take-over, and a session surviving a restart."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

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
from core.conversations import sessions as conv
from core.conversations.agent import BUILTIN_FLOW
from core.store.db import Database
from core.store.tables import ExecutionLog, WorkflowEvent
from tests.integration.conversations.conftest import (
    ACME_ADMIN,
    ACME_OTHER,
    ACME_USER,
    GLOBEX_ADMIN,
    GLOBEX_USER,
    PLATFORM_ADMIN,
    ScriptedModel,
)

SECRET = "We are out of muffins; offer scones (internal note 7731)."


def _events(db: Database, session_id: str) -> list[WorkflowEvent]:
    with db.read() as session:
        return list(
            session.scalars(
                select(WorkflowEvent).where(WorkflowEvent.session_id == session_id).order_by(WorkflowEvent.id)
            )
        )


def _rows(db: Database, session_id: str) -> list[tuple[str, str, bool]]:
    return [
        (m.role, m.content, m.visible_to_model) for m in conv.full_history(db, session_id, PLATFORM_ADMIN)
    ]


def test_agent_answers_with_the_model_history_and_both_histories_are_kept(
    people: Database, model: ScriptedModel
) -> None:
    db = people
    chat = conv.start_session(db, ACME_USER, "orders")
    assert (chat.tenant, chat.flow, chat.status) == ("acme", "orders", "active")
    posted = conv.post_user_message(db, chat.id, ACME_USER, "Hi, I'd like to order.", model=model)
    assert posted.outcome == "answered" and posted.reply is not None
    assert posted.reply.content == "reply 1" and posted.reply.role == "assistant"
    conv.post_user_message(db, chat.id, ACME_USER, "Two muffins please.", model=model)
    assert model.calls[0] == [("system", "You take food orders."), ("user", "Hi, I'd like to order.")]
    assert model.calls[1][1:] == [
        ("user", "Hi, I'd like to order."),
        ("assistant", "reply 1"),
        ("user", "Two muffins please."),
    ]
    full = conv.full_history(db, chat.id, ACME_USER)
    assert [m.role for m in full] == ["user", "assistant", "user", "assistant"]
    assert [m.content for m in conv.model_history(db, chat.id, ACME_USER)] == [m.content for m in full]


def test_injected_message_never_reaches_the_model_even_after_release(
    people: Database, model: ScriptedModel
) -> None:
    db = people
    chat = conv.start_session(db, ACME_USER, "orders")
    conv.post_user_message(db, chat.id, ACME_USER, "Two muffins please.", model=model)
    conv.take_over(db, chat.id, ACME_ADMIN)
    silent = conv.post_user_message(db, chat.id, ACME_USER, "Hello? Anyone?", model=model)
    assert (silent.outcome, silent.reply) == ("supervised", None)
    assert len(model.calls) == 1  # the model was not asked while a person held the session
    injected = conv.inject(db, chat.id, ACME_ADMIN, SECRET)
    assert (injected.role, injected.author, injected.visible_to_model) == ("supervisor", ACME_ADMIN, False)
    conv.release(db, chat.id, ACME_ADMIN)
    again = conv.post_user_message(db, chat.id, ACME_USER, "Scones then.", model=model)
    assert again.outcome == "answered"

    assert all(SECRET not in text for text in model.texts_given())
    assert model.calls[-1][1:] == [
        ("user", "Two muffins please."),
        ("assistant", "reply 1"),
        ("user", "Hello? Anyone?"),
        ("user", "Scones then."),
    ]
    assert _rows(db, chat.id) == [
        ("user", "Two muffins please.", True),
        ("assistant", "reply 1", True),
        ("user", "Hello? Anyone?", True),
        ("supervisor", SECRET, False),
        ("user", "Scones then.", True),
        ("assistant", "reply 2", True),
    ]
    assert SECRET not in [m.content for m in conv.model_history(db, chat.id, ACME_USER)]
    # The user sees the supervisor's message in the full history.
    assert SECRET in [m.content for m in conv.full_history(db, chat.id, ACME_USER)]


def test_every_state_change_is_an_audited_event(people: Database, model: ScriptedModel) -> None:
    db = people
    chat = conv.start_session(db, ACME_USER, "orders")
    conv.take_over(db, chat.id, ACME_ADMIN)
    message = conv.inject(db, chat.id, ACME_ADMIN, "A person is here.")
    conv.release(db, chat.id, PLATFORM_ADMIN)  # any supervisor may give it back
    conv.close(db, chat.id, ACME_USER)
    events = _events(db, chat.id)
    assert [(e.event_type, e.actor) for e in events] == [
        ("session.started", ACME_USER),
        ("session.taken_over", ACME_ADMIN),
        ("session.message_injected", ACME_ADMIN),
        ("session.released", PLATFORM_ADMIN),
        ("session.closed", ACME_USER),
    ]
    assert events[2].data["message_id"] == message.id
    assert events[3].before == {"status": "supervised", "supervisor": ACME_ADMIN}
    assert all(e.workflow_id is None and e.data["tenant"] == "acme" for e in events)
    assert [e.event_type for e in conv.session_events(db, chat.id, ACME_ADMIN)][-1] == "session.closed"


def test_refusals_are_named_and_leave_nothing_behind(people: Database, model: ScriptedModel) -> None:
    db = people
    chat = conv.start_session(db, ACME_USER, "orders")
    with pytest.raises(NotSupervising):
        conv.inject(db, chat.id, ACME_ADMIN, "not yet")
    with pytest.raises(NotSupervising):
        conv.release(db, chat.id, ACME_ADMIN)
    with pytest.raises(NotAuthorized):
        conv.take_over(db, chat.id, ACME_USER)  # a viewer is no supervisor
    with pytest.raises(SessionNotFound):
        conv.take_over(db, chat.id, GLOBEX_ADMIN)  # another tenant's admin does not see it
    with pytest.raises(NotAuthorized):
        conv.post_user_message(db, chat.id, ACME_ADMIN, "I am not the user", model=model)
    with pytest.raises(InvalidMessage):
        conv.post_user_message(db, chat.id, ACME_USER, "   ", model=model)
    conv.take_over(db, chat.id, ACME_ADMIN)
    assert conv.take_over(db, chat.id, ACME_ADMIN).status == "supervised"  # idempotent, no event
    with pytest.raises(AlreadySupervised, match=ACME_ADMIN):
        conv.take_over(db, chat.id, PLATFORM_ADMIN)
    with pytest.raises(NotSupervising):
        conv.inject(db, chat.id, PLATFORM_ADMIN, "I do not hold it")
    conv.close(db, chat.id, ACME_ADMIN)
    for attempt in (
        lambda: conv.post_user_message(db, chat.id, ACME_USER, "hi", model=model),
        lambda: conv.take_over(db, chat.id, ACME_ADMIN),
        lambda: conv.inject(db, chat.id, ACME_ADMIN, "x"),
        lambda: conv.release(db, chat.id, ACME_ADMIN),
        lambda: conv.close(db, chat.id, ACME_USER),
    ):
        with pytest.raises(SessionClosed, match="closed"):
            attempt()
    assert [e.event_type for e in _events(db, chat.id)] == [
        "session.started",
        "session.taken_over",
        "session.closed",
    ]
    assert _rows(db, chat.id) == []
    assert model.calls == []
    with pytest.raises(FlowNotFound):
        conv.start_session(db, ACME_USER, "no-such-flow")
    with pytest.raises(NotAuthorized):
        conv.start_session(db, ACME_USER, BUILTIN_FLOW, tenant="globex")


def test_visibility_by_tenant_and_role(people: Database) -> None:
    db = people
    alice = conv.start_session(db, ACME_USER, "orders")
    bob = conv.start_session(db, ACME_OTHER, "orders")
    carol = conv.start_session(db, GLOBEX_USER, BUILTIN_FLOW)  # globex has no flows: built in
    platform = conv.start_session(db, PLATFORM_ADMIN, BUILTIN_FLOW)
    assert carol.tenant == "globex" and platform.tenant is None

    def seen(email: str) -> set[str]:
        return {s.id for s in conv.list_sessions(db, email)}

    assert seen(PLATFORM_ADMIN) == {alice.id, bob.id, carol.id, platform.id}
    assert seen(ACME_ADMIN) == {alice.id, bob.id}
    assert seen(GLOBEX_ADMIN) == {carol.id}
    assert seen(ACME_USER) == {alice.id}
    assert seen(ACME_OTHER) == {bob.id}
    with pytest.raises(SessionNotFound):
        conv.full_history(db, alice.id, ACME_OTHER)
    assert [f.name for f in conv.flows_for(db, ACME_USER)] == ["orders"]
    assert [f.name for f in conv.flows_for(db, GLOBEX_USER)] == [BUILTIN_FLOW]
    assert [s.id for s in conv.list_sessions(db, PLATFORM_ADMIN, status="supervised")] == []
    # Platform people may talk to a tenant's flow; the session then belongs to that tenant.
    visiting = conv.start_session(db, PLATFORM_ADMIN, "orders", tenant="acme")
    assert visiting.tenant == "acme" and visiting.id in seen(ACME_ADMIN)
    with pytest.raises(FlowNotFound, match="No organisation is named 'initech'"):
        conv.start_session(db, PLATFORM_ADMIN, BUILTIN_FLOW, tenant="initech")


def test_take_over_committed_while_the_model_thinks_drops_its_answer(people: Database) -> None:
    db = people
    gate, entered = threading.Event(), threading.Event()
    model = ScriptedModel(gate=gate, entered=entered)
    chat = conv.start_session(db, ACME_USER, "orders")
    results: list[conv.Posted] = []
    writer = threading.Thread(
        target=lambda: results.append(
            conv.post_user_message(db, chat.id, ACME_USER, "Quick, refund me!", model=model)
        )
    )
    writer.start()
    assert entered.wait(30), "the model was never asked"
    conv.take_over(db, chat.id, ACME_ADMIN)  # commits while the model is still thinking
    gate.set()
    writer.join(30)
    assert not writer.is_alive()
    assert results[0].outcome == "taken_over" and results[0].reply is None
    assert [r[0] for r in _rows(db, chat.id)] == ["user"]
    with db.read() as session:
        logs = list(session.scalars(select(ExecutionLog).where(ExecutionLog.session_id == chat.id)))
    assert [(x.kind, x.data.get("dropped")) for x in logs] == [("agent_step", True)]


def test_take_over_and_release_while_the_model_thinks_still_drop_its_answer(people: Database) -> None:
    db = people
    gate, entered = threading.Event(), threading.Event()
    model = ScriptedModel(gate=gate, entered=entered)
    chat = conv.start_session(db, ACME_USER, "orders")
    results: list[conv.Posted] = []
    writer = threading.Thread(
        target=lambda: results.append(conv.post_user_message(db, chat.id, ACME_USER, "Hello", model=model))
    )
    writer.start()
    assert entered.wait(30)
    conv.take_over(db, chat.id, ACME_ADMIN)
    conv.inject(db, chat.id, ACME_ADMIN, "I'm here.")
    conv.release(db, chat.id, ACME_ADMIN)
    gate.set()
    writer.join(30)
    assert results[0].outcome == "taken_over"
    assert [r[0] for r in _rows(db, chat.id)] == ["user", "supervisor"]


def test_user_messages_racing_a_take_over_never_get_an_answer_after_it(people: Database) -> None:
    """Many user messages race one take-over: every stored assistant reply
    comes before the take-over event, none after."""
    db = people
    model = ScriptedModel()
    chat = conv.start_session(db, ACME_USER, "orders")
    start = threading.Barrier(3)

    def user(n: int) -> None:
        start.wait(10)
        for i in range(4):
            conv.post_user_message(db, chat.id, ACME_USER, f"message {n}.{i}", model=model)

    threads = [threading.Thread(target=user, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    start.wait(10)
    conv.take_over(db, chat.id, ACME_ADMIN)
    for thread in threads:
        thread.join(60)
    taken = next(e for e in _events(db, chat.id) if e.event_type == "session.taken_over")
    replies = [m for m in conv.full_history(db, chat.id, ACME_ADMIN) if m.role == "assistant"]
    assert all(m.created_at <= taken.created_at for m in replies)
    assert len([m for m in conv.full_history(db, chat.id, ACME_ADMIN) if m.role == "user"]) == 8


def test_a_session_survives_a_restart_and_continues(people: Database, db_url: str) -> None:
    first = ScriptedModel()
    chat = conv.start_session(people, ACME_USER, "orders")
    conv.post_user_message(people, chat.id, ACME_USER, "Before the restart.", model=first)
    conv.take_over(people, chat.id, ACME_ADMIN)
    conv.inject(people, chat.id, ACME_ADMIN, SECRET)
    people.engine.dispose()  # the first process lets go of the database (the fixture disposes it)

    restarted = Database(db_url)
    try:
        assert conv.get_session(restarted, chat.id, ACME_USER).status == "supervised"
        conv.release(restarted, chat.id, ACME_ADMIN)
        second = ScriptedModel()
        posted = conv.post_user_message(restarted, chat.id, ACME_USER, "After it.", model=second)
        assert posted.outcome == "answered"
        assert second.calls[0][1:] == [
            ("user", "Before the restart."),
            ("assistant", "reply 1"),
            ("user", "After it."),
        ]
        assert [r[0] for r in _rows(restarted, chat.id)] == [
            "user",
            "assistant",
            "supervisor",
            "user",
            "assistant",
        ]
    finally:
        restarted.dispose()


def test_a_failing_model_is_logged_and_the_message_kept(people: Database) -> None:
    db = people
    chat = conv.start_session(db, ACME_USER, "orders")
    with pytest.raises(AgentUnavailable, match="ConnectionError.*your message is saved"):
        conv.post_user_message(db, chat.id, ACME_USER, "Anyone?", model=ScriptedModel(fail=True))
    assert [r[0] for r in _rows(db, chat.id)] == ["user"]
    with db.read() as session:
        logs = list(session.scalars(select(ExecutionLog).where(ExecutionLog.session_id == chat.id)))
    assert [(x.kind, x.level, x.tenant, x.agent) for x in logs] == [
        ("model_error", "error", "acme", "orders")
    ]
    assert "refused the connection" in logs[0].message


def test_without_a_configured_model_the_labelled_rehearsal_answers(
    people: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("COUNTERSIGN_MODEL_PROVIDER", "COUNTERSIGN_MODEL_ID"):
        monkeypatch.delenv(name, raising=False)
    db = people
    chat = conv.start_session(db, PLATFORM_ADMIN, BUILTIN_FLOW)
    posted = conv.post_user_message(db, chat.id, PLATFORM_ADMIN, "ping")
    assert posted.reply is not None
    assert posted.reply.content.startswith("[rehearsal, no LLM] You said: 'ping'.")
    assert "given 1 message(s)" in posted.reply.content
    with db.read() as session:
        log = session.scalars(select(ExecutionLog).where(ExecutionLog.session_id == chat.id)).one()
    assert (log.kind, log.data["model"], log.data["messages_given"]) == (
        "agent_step",
        "rehearsal (no LLM)",
        1,
    )


def test_a_flow_takes_instructions_from_its_agent_profile_and_its_own_model(
    people: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.agents.profiles import create_profile
    from core.store.tables import TenantFlow, utcnow

    db = people
    create_profile(
        db,
        {"name": "support", "role": "Support lead", "instructions": "Answer questions about orders."},
        PLATFORM_ADMIN,
    )
    with db.session() as session:
        now = utcnow()
        session.add(
            TenantFlow(
                tenant="acme",
                name="support",
                profile="support",
                parameters={"model": "rehearsal"},
                created_at=now,
                updated_at=now,
            )
        )
    assert [f.name for f in conv.flows_for(db, ACME_USER)] == ["orders", "support"]
    scripted = ScriptedModel()
    chat = conv.start_session(db, ACME_USER, "support")
    conv.post_user_message(db, chat.id, ACME_USER, "Where is my order?", model=scripted)
    assert scripted.calls[0][0] == ("system", "Your role: Support lead.\nAnswer questions about orders.")

    # Without an injected model the flow's own setting wins over the environment's provider.
    monkeypatch.setenv("COUNTERSIGN_MODEL_PROVIDER", "openai")
    posted = conv.post_user_message(db, chat.id, ACME_USER, "Hello?")
    assert posted.reply is not None and posted.reply.content.startswith("[rehearsal, no LLM]")
