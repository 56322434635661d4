"""Conversation fixtures: people of two tenants and a scripted model that
records every list of messages it was given."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from smolagents import ChatMessage, MessageRole, Model

from core.identity.users import add_user
from core.store.db import Database
from core.store.tables import Tenant, TenantFlow, utcnow

PLATFORM_ADMIN = "root@example.com"
ACME_ADMIN = "sup@acme.example"
ACME_USER = "alice@acme.example"
ACME_OTHER = "bob@acme.example"
GLOBEX_ADMIN = "sup@globex.example"
GLOBEX_USER = "carol@globex.example"


class ScriptedModel(Model):
    """A smolagents model answering "reply N"; ``calls`` holds the
    (role, text) pairs of every message list it was given."""

    def __init__(
        self, gate: threading.Event | None = None, entered: threading.Event | None = None, fail: bool = False
    ) -> None:
        super().__init__(model_id="scripted")
        self.calls: list[list[tuple[str, str]]] = []
        self.gate, self.entered, self.fail = gate, entered, fail

    def generate(
        self,
        messages: list[ChatMessage | dict[str, Any]],
        stop_sequences: list[str] | None = None,
        response_format: dict[str, str] | None = None,
        tools_to_call_from: list[Any] | None = None,
        **kwargs: Any,
    ) -> ChatMessage:
        seen = []
        for message in messages:
            assert isinstance(message, ChatMessage)
            content = message.content
            text = "".join(p["text"] for p in content) if isinstance(content, list) else str(content)
            seen.append((str(message.role.value if hasattr(message.role, "value") else message.role), text))
        self.calls.append(seen)
        if self.entered is not None:
            self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(30), "the test never opened the gate"
        if self.fail:
            raise ConnectionError("model server refused the connection")
        return ChatMessage(role=MessageRole.ASSISTANT, content=f"reply {len(self.calls)}")

    def texts_given(self) -> list[str]:
        return [text for call in self.calls for _, text in call]


@pytest.fixture
def people(db: Database) -> Database:
    """Two tenants (acme with a flow, globex with none), their people, a platform admin."""
    with db.session() as session:
        now = utcnow()
        session.add_all(
            [
                Tenant(slug="acme", name="Acme", created_at=now, updated_at=now),
                Tenant(slug="globex", name="Globex", created_at=now, updated_at=now),
            ]
        )
        session.flush()
        session.add(
            TenantFlow(
                tenant="acme",
                name="orders",
                description="Food orders",
                parameters={"instructions": "You take food orders."},
                created_at=now,
                updated_at=now,
            )
        )
    add_user(db, PLATFORM_ADMIN, role="admin")
    add_user(db, ACME_ADMIN, role="admin", tenant="acme")
    add_user(db, ACME_USER, role="viewer", tenant="acme")
    add_user(db, ACME_OTHER, role="approver", tenant="acme")
    add_user(db, GLOBEX_ADMIN, role="admin", tenant="globex")
    add_user(db, GLOBEX_USER, role="viewer", tenant="globex")
    return db


@pytest.fixture
def model() -> ScriptedModel:
    return ScriptedModel()
