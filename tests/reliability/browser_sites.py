"""Two real sites on loopback for the browser attacks: the gateway (uvicorn in a thread,
over the test's database) and an attacker's static pages on another port.

``127.0.0.1:<other port>`` is the same *site* as the gateway at
``127.0.0.1:<port>`` (ports do not count: a sibling subdomain is the same
case), so the victim's ``SameSite=Lax`` cookies go along with its requests;
``localhost:<port>`` is another site altogether.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import uvicorn

from core.store.db import Database
from gateway.app import create_app
from tests.e2e.server import free_port

STARTUP_S = 60.0


@contextmanager
def gateway_site(db: Database, *, approver_ui: bool = True) -> Iterator[str]:
    """The whole gateway (the Gradio UI unless ``approver_ui`` is False) served on a free
    loopback port."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(db, approver_ui=approver_ui),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            log_config=None,
        )
    )
    thread = threading.Thread(target=server.run, name="gateway-site", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the gateway did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@dataclass
class AttackerSite:
    """Static pages an attacker serves; ``hits`` counts what the browser fetched."""

    port: int
    pages: dict[str, str] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@contextmanager
def attacker_site() -> Iterator[AttackerSite]:
    site = AttackerSite(free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            site.hits.append(self.path)
            body = site.pages.get(self.path.split("?")[0])
            if body is None:
                self.send_response(404)
                self.end_headers()
                return
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", site.port), Handler)
    thread = threading.Thread(target=httpd.serve_forever, name="attacker-site", daemon=True)
    thread.start()
    try:
        yield site
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)
