"""Starting a workflow from pasted text in a real browser: which tab is open lives in
the browser, so only a browser shows whether a refusal stays in sight."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.server import Dashboard, sign_in, wait_for_app

pytestmark = pytest.mark.browser

PASTE_TAB = "From JSON or YAML"
UNKNOWN_TOOL = "name: UT\nsteps:\n  - name: s\n    type: tool\n    tool: nope_tool\n"
BROKEN_YAML = "name: UT\nsteps:\n  - name: s\n  type: tool\n"


def test_a_refused_pasted_definition_is_shown_under_the_text_in_its_own_tab(
    dashboard: Dashboard, page: Any
) -> None:
    page.goto(f"{dashboard.url}/workflows")
    sign_in(page, "admin@example.com")
    tab = page.get_by_role("tab", name=PASTE_TAB)
    # On a loaded machine the first click may land while the page is still redrawn: retry.
    for _ in range(3):
        wait_for_app(page)
        tab.click()
        try:
            expect(tab).to_have_attribute("aria-selected", "true", timeout=5_000)
            break
        except AssertionError:
            continue
    paste = page.get_by_role("tabpanel").filter(has=page.get_by_role("button", name="Validate and start"))
    for text, refusal in [
        (UNKNOWN_TOOL, "steps[0].tool: no tool is registered as 'nope_tool'"),
        (BROKEN_YAML, "not valid YAML: line 4, column 3:"),
    ]:
        paste.get_by_role("textbox", name="Definition (JSON or YAML)").fill(text)
        paste.get_by_role("button", name="Validate and start").click()
        wait_for_app(page)
        expect(tab).to_have_attribute("aria-selected", "true")
        error = paste.locator('[data-testid="stAlertContentError"]')
        expect(error).to_be_visible()
        expect(error).to_contain_text(refusal)
        expect(error).not_to_contain_text("<unicode string>")
