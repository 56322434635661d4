"""A small Ollama on loopback: ``GET /api/tags`` and the OpenAI-compatible
``POST /v1/chat/completions``, each answering well or failing as told."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.integration.agents.test_openai_server import completion

MODELS = [
    {
        "name": "qwen2.5:0.5b",
        "model": "qwen2.5:0.5b",
        "size": 397_821_319,
        "modified_at": "2026-11-20T09:15:02.123456789+01:00",
        "digest": "a8b0c5157701",
        "details": {"family": "qwen2", "parameter_size": "494.03M", "quantization_level": "Q4_K_M"},
    },
    {
        "name": "llama3.1:latest",
        "model": "llama3.1:latest",
        "size": 4_920_753_328,
        "modified_at": "2026-11-19T18:00:00Z",
        "digest": "46e0c10c039e",
        "details": {"family": "llama", "parameter_size": "8.0B", "quantization_level": "Q4_K_M"},
    },
]


class FakeOllama:
    """``mode``: ok, error (HTTP 500), garbage (not JSON) or slow (answers after ``delay`` s)."""

    def __init__(self, mode: str = "ok", delay: float = 2.0) -> None:
        self.mode = mode
        self.delay = delay
        self.requests: list[tuple[str, str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (the timeout tests)

            def _answer(self, payload: Any) -> None:
                if fake.mode == "slow":
                    time.sleep(fake.delay)
                if fake.mode == "error":
                    self._send(500, b'{"error":"model runner has unexpectedly stopped"}')
                elif fake.mode == "garbage":
                    self._send(200, b"<html>this is not an Ollama</html>", "text/html")
                else:
                    self._send(200, json.dumps(payload).encode())

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                fake.requests.append(("GET", self.path, None))
                if self.path == "/api/tags":
                    self._answer({"models": MODELS})
                else:
                    self._send(404, b'{"error":"not found"}')

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(("POST", self.path, body))
                if self.path == "/v1/chat/completions":
                    self._answer(completion({"content": "ok"}, len(fake.requests)))
                else:
                    self._send(404, b'{"error":"not found"}')

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def chats(self) -> list[Any]:
        return [body for method, path, body in self.requests if path == "/v1/chat/completions"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
