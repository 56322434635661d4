"""Jinja2 pages of the gateway, autoescaped (titles come from agents and users)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
)


def page(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = _env.get_template(template).render(**context)
    # Pages hold single-use tokens: keep them out of caches and other sites' referrers
    # (same-origin: our own forms still send a real Origin, which gateway.browser checks).
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"}
    return HTMLResponse(html, status_code=status_code, headers=headers)
