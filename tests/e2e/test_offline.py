"""The dashboard works with no network: every request that leaves loopback is
refused and recorded while a person signs in and opens the pages an approver uses."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.e2e.server import Dashboard, sign_in, wait_for_app

pytestmark = pytest.mark.browser


def test_no_page_reaches_past_loopback(dashboard: Dashboard, page: Any) -> None:
    left: list[str] = []

    def route(route: Any) -> None:
        if urlsplit(route.request.url).hostname in {"127.0.0.1", "localhost"}:
            route.continue_()
        else:
            left.append(route.request.url)
            route.abort()

    page.route("**/*", route)
    page.goto(dashboard.url)
    wait_for_app(page)
    sign_in(page, "admin@example.com")
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    for path in ("workflows", "policies", "monitor"):
        page.goto(f"{dashboard.url}/{path}")
        wait_for_app(page)
    # The favicon is the page's own file, not a Material icon from Google's servers.
    icon = page.locator("link[rel='shortcut icon'], link[rel='icon']").first.get_attribute("href") or ""
    assert icon and not icon.startswith(("http://", "https://")) or "127.0.0.1" in icon, icon
    assert left == []
