"""An agent through smolagents' OpenAIServerModel and the real openai client,
against a small OpenAI-compatible server on loopback (as Ollama, vLLM or LM
Studio would serve it)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from core.agents import test_connection as check_connection
from core.approvals.engine import ApprovalEngine
from core.engine import workflows as ops
from core.engine.tools import ToolRegistry
from core.store.db import Database
from tests.helpers.engine import Calls, open_approval_of, run, start, status
from tests.integration.agents.conftest import BOSS


class FakeOpenAI:
    """Answers /v1/chat/completions from a script of tool calls, recording requests."""

    def __init__(self, replies: list[dict[str, Any]]) -> None:
        self.replies = replies
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(body)
                fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                if self.path != "/v1/chat/completions":
                    self.send_response(404)
                    self.end_headers()
                    return
                reply = fake.replies[min(len(fake.requests) - 1, len(fake.replies) - 1)]
                payload = json.dumps(completion(reply, len(fake.requests))).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def completion(reply: dict[str, Any], n: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.get("content")}
    if "tool" in reply:
        message["tool_calls"] = [
            {
                "id": f"call_{n}",
                "type": "function",
                "function": {"name": reply["tool"], "arguments": json.dumps(reply.get("args", {}))},
            }
        ]
    return {
        "id": f"chatcmpl-{n}",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "test-model",
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if "tool" in reply else "stop"}
        ],
        "usage": {"prompt_tokens": 100 + n, "completion_tokens": 7, "total_tokens": 107 + n},
    }


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI(
        [
            {"tool": "lookup", "args": {"order": "A-7"}},
            {"tool": "charge", "args": {"amount": 120.0}},
            {"tool": "final_answer", "args": {"answer": "Order A-7 charged 120.0 USD."}},
        ]
    )
    yield fake
    fake.close()


def test_an_agent_runs_through_the_openai_client_and_a_held_call_waits(
    db: Database,
    registry: ToolRegistry,
    calls: Calls,
    server: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COUNTERSIGN_MODEL_PROVIDER", "openai")
    monkeypatch.setenv("COUNTERSIGN_MODEL_ID", "test-model")
    monkeypatch.setenv("COUNTERSIGN_MODEL_API_BASE", server.url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-real")
    workflow_id = start(
        db,
        [
            {
                "name": "agent",
                "type": "task",
                "task": "Charge order A-7.",
                "agent": {
                    "tools": ["lookup"],
                    "held_tools": ["charge"],
                    "approval": {"requested_from": BOSS},
                },
            }
        ],
        input_data={"order": "A-7"},
    )
    run(db, registry)
    assert status(db, workflow_id) == "waiting_approval"
    assert calls.of("lookup") == [{"order": "A-7"}] and calls.of("charge") == []
    first = server.requests[0]
    assert first["model"] == "test-model"
    assert {t["function"]["name"] for t in first["tools"]} >= {
        "lookup",
        "charge",
        "request_approval",
        "final_answer",
    }
    task_text = json.dumps(first["messages"])
    assert "Charge order A-7." in task_text and "Approval guidelines" in task_text
    assert "held: a person approves" in task_text and "A-7" in task_text
    assert server.headers[0]["authorization"] == "Bearer sk-test-not-real"

    ApprovalEngine(db).respond_to_approval(
        open_approval_of(db, workflow_id).id, BOSS, "approve", comment="ok"
    )
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    assert [c["amount"] for c in calls.of("charge")] == [120.0]
    output = ops.get_workflow(db, workflow_id).step_outputs["agent"]
    assert output["result"] == "Order A-7 charged 120.0 USD."
    assert output["model"] == "openai:test-model" and output["rehearsal"] is False
    assert output["token_usage"] == {"input": 101 + 102 + 103, "output": 21}
    # After the restart-free resume the model was shown the approved call's result.
    assert '\\"charged\\": 120.0' in json.dumps(server.requests[2]["messages"])


def test_test_connection_reports_the_server_answer_and_failures(server: FakeOpenAI) -> None:
    good = check_connection({"provider": "openai", "model_id": "test-model", "api_base": server.url})
    assert good.ok and good.provider == "openai" and good.model == "openai:test-model"
    assert server.requests[-1]["messages"][0]["content"][0]["text"] == "Reply with: ok"
    closed = FakeOpenAI([{"content": "ok"}])
    closed.close()
    # A connection test never retries (a spec's options cannot set client settings).
    bad = check_connection({"provider": "openai", "model_id": "test-model", "api_base": closed.url})
    assert not bad.ok and "Connection" in bad.message
    rehearsal = check_connection({"provider": "rehearsal"})
    assert rehearsal.ok and rehearsal.model == "rehearsal (no LLM)"
