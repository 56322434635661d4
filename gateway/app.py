"""The gateway application: ``create_app(db)`` builds it; ``app`` is the default.

Start it with ``python -m core serve`` or ``uvicorn gateway.app:app``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from core.base.logging import configure_logging
from core.engine.tools import default_registry
from core.ops.metrics import make_registry
from core.ops.production import require_production_secrets
from core.runtime import Database, open_database
from gateway import api, api_rules, email_pages, errors, metrics, pages, slack, webhooks_in
from gateway.hardening import BodyLimits, SecurityHeaders

if TYPE_CHECKING:
    pass

SWAGGER_ASSETS = "/static/swagger-ui"
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
    # /docs is drawn from Swagger UI's files shipped in a Python package
    # (swagger-ui-bundle), never from a CDN, so it works offline.
    app = FastAPI(
        title="Countersign", version="1.0.0", description=DESCRIPTION, docs_url=None, redoc_url=None
    )
    _mount_docs(app)
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


def _mount_docs(app: FastAPI) -> None:
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount(SWAGGER_ASSETS, StaticFiles(directory=swagger_ui_path), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Countersign API",
            swagger_js_url=f"{SWAGGER_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER_ASSETS}/favicon-32x32.png",
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
