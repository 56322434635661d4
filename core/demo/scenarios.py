"""The seed's four demo scenarios, started against any database.

Order processing, multi-level budget, deployment pipeline with rollback and
document review with several approvers. Demo users get the password
``countersign-demo`` (said in the README; change it for anything real).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from core.definitions.definition_text import load_definition_file
from core.engine import workflows as ops
from core.identity.users import add_user
from core.store.tables import Workflow

if TYPE_CHECKING:
    from core.store.db import Database

TEMPLATES_DIR = Path(__file__).parent / "templates"
DEMO_PASSWORD = "countersign-demo"
DEMO_USERS: list[tuple[str, str, list[str]]] = [
    ("admin@example.com", "admin", []),
    ("finance@example.com", "approver", ["finance"]),
    ("devops@example.com", "approver", ["devops"]),
    ("manager@example.com", "approver", []),
    ("director@example.com", "approver", []),
    ("cfo@example.com", "approver", []),
    ("legal@example.com", "approver", ["reviewers"]),
    ("compliance@example.com", "approver", ["reviewers"]),
    ("editor@example.com", "approver", ["reviewers"]),
    ("viewer@example.com", "viewer", []),
]
# The seed's agent: a service account that starts workflows and reads their
# status, and can answer nothing (core.identity.permissions).
DEMO_REQUESTER = "agent@example.com"

DEMO_INPUTS: dict[str, dict[str, Any]] = {
    "order_processing": {
        "order_id": "ORD-1042",
        "amount": 12500,
        "items": [{"sku": "GPU-A100", "price": 6250, "quantity": 2}],
    },
    "budget_multilevel": {},
    "deployment_pipeline": {"service": "checkout-api", "version": "2.14.0"},
    "document_review": {"document": "pricing-page-v7"},
}


def template_names() -> list[str]:
    return sorted(p.stem for p in TEMPLATES_DIR.glob("*.yaml"))


def template_path(name: str) -> Path:
    return TEMPLATES_DIR / f"{name}.yaml"


def add_demo_users(db: Database) -> None:
    for email, role, groups in DEMO_USERS:
        add_user(db, email, role=role, password=DEMO_PASSWORD, groups=groups)
    add_user(db, DEMO_REQUESTER, role="service", name="Demo agent")  # no password: no sign-in


# Agents and a tenant to try the Agents, Sessions and Tenants pages with; the
# rehearsal model answers until a real model is configured.
DEMO_PROFILES: list[dict[str, Any]] = [
    {
        "name": "researcher",
        "role": "Researcher",
        "instructions": "Gather the facts the task needs and list them briefly.",
        "model_provider": "rehearsal",
    },
    {
        "name": "writer",
        "role": "Writer",
        "instructions": "Turn the facts you are given into a short, clear summary.",
        "model_provider": "rehearsal",
    },
]
DEMO_TEAM: dict[str, Any] = {
    "name": "research_brief",
    "members": ["researcher", "writer"],
    "description": "A researcher gathers facts; a person approves them before the writer summarises.",
    "settings": {"approve_before": ["writer"]},
}
DEMO_TENANT = "acme"
DEMO_TENANT_USER = "amy@acme.example"
DEMO_FLOW: dict[str, Any] = {
    "name": "support",
    "description": "Customer support for Acme's orders.",
    "agent_type": "tool_calling",
    "tools": ["validate_order"],
    "parameters": {"instructions": "You answer Acme's customers about their orders, briefly."},
}


def add_demo_agents_and_tenant(db: Database) -> None:
    """Two agent profiles, a team of them, and the tenant Acme with a support flow."""
    from core.agents import profiles as profiles_store
    from core.agents import teams
    from core.tenants import registry as tenants

    for profile in DEMO_PROFILES:
        profiles_store.create_profile(db, profile, actor="system:demo")
    teams.create_team(db, DEMO_TEAM, actor="system:demo")
    tenants.create_tenant(db, DEMO_TENANT, name="Acme Corp", actor="system:demo")
    add_user(db, DEMO_TENANT_USER, role="approver", password=DEMO_PASSWORD, tenant=DEMO_TENANT)
    tenants.save_flow(db, DEMO_TENANT, DEMO_FLOW, actor="system:demo")


def load_demo(db: Database) -> list[Workflow]:
    """Create the demo users, agents and tenant, and start one workflow per scenario."""
    add_demo_users(db)
    add_demo_agents_and_tenant(db)
    started = []
    for name, input_data in DEMO_INPUTS.items():
        definition = load_definition_file(template_path(name))
        started.append(ops.create_workflow(db, definition, input_data=input_data, created_by=DEMO_REQUESTER))
    return started


def load_demo_if_empty(db: Database) -> bool:
    """Load the demo into an empty database (the dashboard's first start)."""
    with db.read() as session:
        if session.scalar(select(func.count()).select_from(Workflow)):
            return False
    load_demo(db)
    return True
