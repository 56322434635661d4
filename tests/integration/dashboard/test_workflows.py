"""Workflows page: server-side paging, status filter, search; starting workflows."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from core.definitions.definition_text import load_definition_text
from core.engine import workflows as ops
from core.store.db import Database
from tests.integration.dashboard.conftest import (
    all_text,
    new_app,
    no_exception,
    open_page,
    sign_in,
    visible,
)

TINY = """
name: Tiny {n}
steps:
  - name: ask
    type: approval
    approval_config: {title: "Go ahead", requested_from: director@example.com}
"""


def workflows_page(email: str) -> AppTest:
    at = sign_in(new_app(), email)
    open_page(at, "workflows")
    no_exception(at)
    return at


def names(at: AppTest) -> list[str]:
    return list(at.dataframe[0].value["name"])


def test_paging_filter_and_search_happen_on_the_server(demo_db: Database) -> None:
    for n in range(60):
        ops.create_workflow(
            demo_db,
            load_definition_text(TINY.replace("{n}", str(n))),
            created_by="agent@example.com",
            start=n % 2 == 0,
        )
    at = workflows_page("viewer@example.com")
    assert len(names(at)) == 25
    assert "64 workflows" in all_text(at)
    assert names(at)[0] == "Tiny 59"  # newest first
    at.number_input(key="workflows.page").set_value(3).run()
    assert len(names(at)) == 14  # 64 - 50
    at.multiselect(key="workflows.status").set_value(["pending"]).run()
    assert "30 workflows" in all_text(at)
    assert at.number_input(key="workflows.page").value == 1  # back to a page that exists
    assert len(names(at)) == 25
    assert set(names(at)) <= {f"Tiny {n}" for n in range(1, 60, 2)}
    at.multiselect(key="workflows.status").set_value([]).run()
    at.text_input(key="workflows.search").input("tiny 4").run()
    assert sorted(names(at)) == sorted(["Tiny 4", *[f"Tiny 4{n}" for n in range(10)]])
    at.text_input(key="workflows.search").input("deploy").run()
    assert names(at) == ["Production deployment"]


def test_a_viewer_cannot_start_workflows(demo_db: Database) -> None:
    at = workflows_page("viewer@example.com")
    assert "Start a workflow" not in all_text(at)
    assert not [b for b in at.button if b.key and b.key.startswith("start.")]


def test_start_from_a_bundled_template(demo_db: Database) -> None:
    at = workflows_page("devops@example.com")
    at.selectbox(key="start.template.name").set_value("document_review")
    at.text_area(key="start.template.input").input('{"document": "terms-v2"}')
    at.button(key="start.template.submit").click().run()
    no_exception(at)
    assert "Started **Document review**." in all_text(at)
    newest = ops.list_workflows(demo_db, limit=1).rows[0]
    assert (newest.name, newest.input_data, newest.created_by) == (
        "Document review",
        {"document": "terms-v2"},
        "devops@example.com",
    )
    assert newest.status == "running"


def test_start_from_pasted_yaml(demo_db: Database) -> None:
    at = workflows_page("manager@example.com")
    at.text_area(key="start.paste.definition").input(TINY.replace("{n}", "pasted"))
    at.button(key="start.paste.submit").click().run()
    no_exception(at)
    assert "Started **Tiny pasted**." in all_text(at)
    assert ops.list_workflows(demo_db, search="Tiny pasted").total == 1


def test_pasted_definition_errors_are_named_by_path_and_nothing_starts(demo_db: Database) -> None:
    before = ops.list_workflows(demo_db, limit=1).total
    at = workflows_page("manager@example.com")
    at.text_area(key="start.paste.definition").input(
        "name: Broken\nsteps:\n  - name: a\n    type: teleport\n"
        "  - name: b\n    type: approval\n    approval_config: {type: vote}\n"
    )
    at.button(key="start.paste.submit").click().run()
    no_exception(at)
    errors = visible(" ".join(e.value for e in at.error))
    assert "steps[0].type" in errors and "steps[1].approval_config.type" in errors, errors
    assert ops.list_workflows(demo_db, limit=1).total == before

    at.text_area(key="start.paste.definition").input("{not json")
    at.button(key="start.paste.submit").click().run()
    assert "not valid JSON" in " ".join(e.value for e in at.error)
