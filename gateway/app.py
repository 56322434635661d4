"""The gateway application: ``create_app(db)`` builds it; ``app`` is the default.

Start it with ``python -m core serve`` or ``uvicorn gateway.app:app``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import HTMLResponse, Response
from fastapi_offline import FastAPIOffline

from core.base.logging import configure_logging
from core.engine.tools import default_registry
from core.ops.metrics import make_registry
from core.ops.production import require_production_secrets
from core.runtime import Database, open_database
from gateway import api, api_rules, email_pages, errors, metrics, pages, slack, webhooks_in
from gateway.hardening import BodyLimits, SecurityHeaders

DOCS_ASSETS = "/static/api-docs"
# ReDoc's bundle as /redoc loads it: fastapi-offline's, but for its "API docs by Redocly"
# credit image, which it fetches from Redocly's CDN (a request to a third party, and a
# broken image offline). No ReDoc option hides it (hideLogo is the API's own logo).
REDOC_BUNDLE = "/static/redoc/redoc.standalone.js"
REDOC_CREDIT_IMAGE = "https://cdn.redoc.ly/redoc/logo-mini.svg"
DESCRIPTION = """Countersign's HTTP gateway: the REST API (workflows, approvals,
checkpoints, rollback) authenticated by API tokens (`Authorization: Bearer`),
the Slack interactivity and command endpoints, email confirmation pages,
inbound webhooks, `/healthz`, `/metrics` and the Gradio approver UI at `/approve`."""


def create_app(db: Database | None = None, *, approver_ui: bool = True) -> FastAPI:
    """A gateway over ``db`` (default: the configured database, migrated)."""
    configure_logging()
    tools = None  # the tool names workflows are checked against, once the runners' are loaded
    if db is None:
        require_production_secrets("The gateway")
        db = open_database()
        tools = default_registry  # open_database loaded the process's tools into it
    # /docs (Swagger UI 5, which reads the OpenAPI 3.1 FastAPI writes) and /redoc are
    # drawn from files shipped in a Python package (fastapi-offline), never from a
    # CDN, so both work offline; /redoc is ours (_add_redoc).
    app = FastAPIOffline(
        title="Countersign",
        version="1.0.0",
        description=DESCRIPTION,
        docs_url="/docs",
        redoc_url=None,
        static_url=DOCS_ASSETS,
    )
    _add_redoc(app)
    app.state.db = db
    app.state.tools = tools
    app.state.metrics = make_registry(db)
    errors.install(app)
    for router in (
        api.router,
        api_rules.router,
        webhooks_in.router,
        metrics.router,
        slack.router,
        email_pages.router,
        pages.router,
    ):
        app.include_router(router)
    if approver_ui:
        _mount_approver_ui(app, db)
    # Bodies are bounded (COUNTERSIGN_MAX_BODY, 64 levels of JSON) before any route
    # reads them; the security headers, outermost, go on every answer, refusals too.
    app.add_middleware(BodyLimits)
    app.add_middleware(SecurityHeaders)
    return app


@cache
def redoc_bundle() -> bytes:
    """fastapi-offline's ReDoc bundle with its credit image as an empty data URL: the
    image removes itself when it cannot be drawn (ReDoc's onError), as it did offline,
    and the page asks nothing of Redocly's CDN. The "API docs by Redocly" link stays."""
    shipped = Path(fastapi_offline.__file__).parent / "static" / "redoc.standalone.js"
    return shipped.read_bytes().replace(REDOC_CREDIT_IMAGE.encode(), b"data:,")


def _add_redoc(app: FastAPI) -> None:
    """/redoc as fastapi-offline draws it, loading ``redoc_bundle``."""

    @app.get(REDOC_BUNDLE, include_in_schema=False)
    def redoc_js() -> Response:
        return Response(
            redoc_bundle(),
            media_type="text/javascript; charset=utf-8",
            headers={"Cache-Control": "public, max-age=3600"},
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc_html(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{REDOC_BUNDLE}",
            redoc_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )


def _mount_approver_ui(app: FastAPI, db: Database) -> None:
    from gateway.approver_ui import mount

    mount(app, db)


class _LazyApp:
    """``gateway.app:app`` for uvicorn, built on first use (not at import)."""

    _app: FastAPI | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            self._app = create_app()
        await self._app(scope, receive, send)


app = _LazyApp()
