"""The REST API's documentation pages, drawn in Chromium with the network cut off:
every request that leaves loopback is refused and recorded, and both pages must
still list the API's operations."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from core.store.db import Database
from tests.reliability.browser_sites import gateway_site

pytestmark = pytest.mark.browser


def _offline(page: Any) -> list[str]:
    """Refuse every request that leaves loopback; the list collects their addresses."""
    left: list[str] = []

    def route(route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            left.append(route.request.url)
            route.abort()

    page.route("**/*", route)
    return left


def test_swagger_ui_lists_the_operations_offline(sqlite_db: Database, page: Any) -> None:
    left = _offline(page)
    with gateway_site(sqlite_db, approver_ui=False) as gateway:
        page.goto(f"{gateway}/docs")
        expect(page.locator(".opblock-summary-path", has_text="/api/workflows").first).to_be_visible()
        expect(page.get_by_text("Unable to render this definition")).to_have_count(0)
        expect(page.locator(".info .title")).to_contain_text("Countersign")
    assert left == []


def test_redoc_lists_the_operations_offline(sqlite_db: Database, page: Any) -> None:
    left = _offline(page)
    with gateway_site(sqlite_db, approver_ui=False) as gateway:
        page.goto(f"{gateway}/redoc")
        expect(page.get_by_role("heading", name="Countersign").first).to_be_visible()
        expect(page.get_by_text("/api/workflows").first).to_be_attached()
        # ReDoc's "API docs by Redocly" credit: the link, without its image from Redocly's
        # CDN (the gateway serves the bundle without that address: gateway.app.redoc_bundle).
        expect(page.get_by_role("link", name="API docs by Redocly")).to_be_attached()
        expect(page.get_by_alt_text("redocly logo")).to_have_count(0)
    assert left == []
