"""Shared services, set up once per server process and database.

``st.cache_resource`` keys them by the database URL and runner mode read at
call time (``DATABASE_URL``, ``RUNNER``), so an in-process test that points
``DATABASE_URL`` elsewhere gets its own services.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import streamlit as st
import structlog

from core.approvals.engine import ApprovalEngine
from core.demo.scenarios import load_demo_if_empty
from core.runtime import Database, build_runner, configured_database_url, open_database

if TYPE_CHECKING:
    from core.engine.runner import Runner

log = structlog.get_logger(__name__)

RUNNER_ENV = "RUNNER"  # "external": runners run elsewhere (python -m core runner)
DEMO_ENV = "COUNTERSIGN_DEMO"  # "off": never load the demo into an empty database


@dataclass
class Services:
    db: Database
    approvals: ApprovalEngine
    runner: Runner | None
    demo_loaded: bool


def database_url() -> str:
    return configured_database_url()


def runner_mode() -> str:
    return "external" if os.environ.get(RUNNER_ENV, "").strip().lower() == "external" else "internal"


@st.cache_resource(show_spinner="Starting Countersign…")
def _services(url: str, mode: str, demo: bool) -> Services:
    # Migrated, with the tools of COUNTERSIGN_TOOL_MODULES and the demo's loaded, so
    # this process's runner runs what a separate runner would (core.runtime).
    db = open_database(url)
    demo_loaded = load_demo_if_empty(db) if demo else False
    runner = None
    if mode == "internal":
        # One background runner per server process (and database).
        runner = build_runner(db)
        runner.start()
    log.info("dashboard services ready", database=db.dialect, runner=mode, demo_loaded=demo_loaded)
    return Services(db, ApprovalEngine(db), runner, demo_loaded)


def get_services() -> Services:
    demo = os.environ.get(DEMO_ENV, "").strip().lower() not in ("off", "0", "false", "no")
    return _services(database_url(), runner_mode(), demo)


def get_db() -> Database:
    return get_services().db
