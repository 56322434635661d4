"""The Execution logs page in AppTest: filters, tenant scope, session links and
the CSV the download button serves."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta

import pandas as pd
import pytest
import streamlit.testing.v1.app_test as app_test
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from core.agents.execution_logs import CSV_COLUMNS, record
from core.identity.users import add_user
from core.store.db import Database
from core.store.tables import utcnow
from tests.integration.dashboard.conftest import (
    all_text,
    new_app,
    no_exception,
    open_page,
    sign_in,
    table_with,
)

WF_A = "aaaaaaaa-0000-4000-8000-000000000001"
WF_B = "bbbbbbbb-0000-4000-8000-000000000002"
SESSION = "5e55e55e-0000-4000-8000-000000000003"
PASSWORD = "a-long-test-password"
COLUMNS = ("time", "kind", "level", "workflow", "session", "step", "agent", "tool", "message")


@pytest.fixture
def logs_db(app_env: str) -> Iterator[Database]:
    db = Database(app_env)
    db.upgrade()
    add_user(db, "platform@example.com", role="admin", password=PASSWORD)
    add_user(db, "acme@example.com", role="viewer", password=PASSWORD, tenant="acme")
    with db.session() as session:
        record(
            session,
            "agent_step",
            "Step 1: called lookup",
            workflow_id=WF_A,
            tenant="acme",
            agent="refunds",
            step_name="lookup_order",
        )
        record(
            session,
            "tool_call",
            "lookup() -> 100% done",
            workflow_id=WF_A,
            tool_name="lookup",
            tenant="acme",
            agent="refunds",
        )
        record(
            session,
            "model_error",
            "RuntimeError: model server fell over",
            level="error",
            workflow_id=WF_B,
            tenant="globex",
            agent="deployer",
        )
        record(session, "agent_step", "session turn: hello", session_id=SESSION, agent="helpdesk")
    yield db
    db.dispose()


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> MediaFileManager:
    """One media file manager for every AppTest run, so a download can be made after the run
    (the page's export runs when the button is clicked, as in a browser)."""
    manager = MediaFileManager(MemoryMediaFileStorage("/mock/media"))
    monkeypatch.setattr(app_test, "MediaFileManager", lambda storage: manager)
    return manager


def downloaded_csv(at: AppTest, manager: MediaFileManager) -> pd.DataFrame:
    [button] = [b for b in at.get("download_button") if b.proto.label == "Download CSV"]
    assert button.proto.deferred_file_id and not button.proto.disabled
    url = manager.execute_deferred(button.proto.deferred_file_id)  # what a click fetches
    stored = manager.read_file(url.rsplit("/", 1)[1])
    assert stored is not None, url
    content = stored.content
    return pd.read_csv(io.BytesIO(content), keep_default_na=False)


def apply(at: AppTest) -> None:
    """Press the filters' Apply button (the filters are one form)."""
    at.button(key="logs.apply").click().run()


def test_the_platform_sees_every_row_filters_them_and_downloads_them(
    logs_db: Database, downloads: MediaFileManager
) -> None:
    at = sign_in(new_app(), "platform@example.com", PASSWORD)
    open_page(at, "logs")
    no_exception(at)
    table = table_with(at, *COLUMNS)
    assert sorted(table["message"]) == [
        "RuntimeError: model server fell over",
        "Step 1: called lookup",
        "lookup() -> 100% done",
        "session turn: hello",
    ]
    links = {
        m: (w if isinstance(w, str) else None, s if isinstance(s, str) else None)
        for m, w, s in zip(table["message"], table["workflow"], table["session"], strict=True)
    }
    assert links["Step 1: called lookup"] == (f"workflow?workflow={WF_A}", None)
    assert links["session turn: hello"] == (None, f"sessions?session={SESSION}")
    assert "**4** matching rows" in all_text(at)
    csv = downloaded_csv(at, downloads)
    assert list(csv.columns) == list(CSV_COLUMNS) and len(csv) == 4

    at.multiselect(key="logs.kinds").select("model_error")
    apply(at)
    assert list(table_with(at, *COLUMNS)["message"]) == ["RuntimeError: model server fell over"]
    csv = downloaded_csv(at, downloads)
    assert list(csv["message"]) == ["RuntimeError: model server fell over"]
    assert list(csv["workflow_id"]) == [WF_B] and list(csv["tenant"]) == ["globex"]

    at.multiselect(key="logs.kinds").unselect("model_error")
    at.text_input(key="logs.text").input("%")  # a LIKE wildcard matches only itself
    apply(at)
    assert list(table_with(at, *COLUMNS)["message"]) == ["lookup() -> 100% done"]
    at.text_input(key="logs.text").input("'; DROP TABLE execution_logs; --")
    apply(at)
    no_exception(at)
    assert "**0** matching rows" in all_text(at)
    assert at.get("download_button")[0].proto.disabled


def test_filters_apply_together_and_not_before_apply(logs_db: Database) -> None:
    """The filters are one form: a value typed but not applied changes neither the
    table nor the export (what Download CSV holds is what the table shows)."""
    at = sign_in(new_app(), "platform@example.com", PASSWORD)
    open_page(at, "logs")
    at.text_input(key="logs.text").input("server").run()  # typed, the page rerun, not applied
    assert "**4** matching rows" in all_text(at)
    at.text_input(key="logs.text").input("server")
    apply(at)
    assert list(table_with(at, *COLUMNS)["message"]) == ["RuntimeError: model server fell over"]
    assert "**1** matching rows" in all_text(at)


def test_a_tenant_sees_only_its_rows(logs_db: Database, downloads: MediaFileManager) -> None:
    at = sign_in(new_app(), "acme@example.com", PASSWORD)
    open_page(at, "logs")
    no_exception(at)
    assert "Tenant **acme**: only its rows are shown." in all_text(at)
    assert sorted(table_with(at, *COLUMNS)["message"]) == ["Step 1: called lookup", "lookup() -> 100% done"]
    assert set(downloaded_csv(at, downloads)["tenant"]) == {"acme"}


def test_a_session_id_in_the_url_filters_the_page_to_that_session(logs_db: Database) -> None:
    at = sign_in(new_app(), "platform@example.com", PASSWORD)
    open_page(at, "logs", session=SESSION)
    no_exception(at)
    assert at.text_input(key="logs.session").value == SESSION
    assert list(table_with(at, *COLUMNS)["message"]) == ["session turn: hello"]


def test_time_ranges_and_dates(logs_db: Database) -> None:
    with logs_db.session() as session:
        old = record(session, "final_answer", "an answer from last month", workflow_id=WF_A)
        session.flush()
        old.created_at = utcnow() - timedelta(days=20)
    at = sign_in(new_app(), "platform@example.com", PASSWORD)
    open_page(at, "logs")
    assert "an answer from last month" not in list(table_with(at, *COLUMNS)["message"])  # last 7 days
    at.selectbox(key="logs.range").select("All time")
    apply(at)
    assert "an answer from last month" in list(table_with(at, *COLUMNS)["message"])
    at.selectbox(key="logs.range").select("Between dates")
    day = (utcnow() - timedelta(days=20)).date()
    at.date_input(key="logs.dates").set_value((day, day))
    apply(at)
    no_exception(at)
    assert list(table_with(at, *COLUMNS)["message"]) == ["an answer from last month"]
