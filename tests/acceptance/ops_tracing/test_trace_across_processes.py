"""One trace across processes, exported over OTLP/HTTP to a receiver on loopback.

Four real ``python -m core`` processes with ``COUNTERSIGN_OTEL=otlp``: one
starts the example agent workflow, a runner runs it until the agent asks
finance, another process answers, a second runner resumes and finishes. The
receiver decodes each export with ``opentelemetry-proto``; every span of
every process carries the trace id stored with the workflow, parented on it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from core.engine import workflows as ops
from core.store.db import Database
from tests.acceptance.core.conftest import CLI_TIMEOUT, ROOT, accounts, cli_env


@dataclass(frozen=True)
class ReceivedSpan:
    process: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    start_ns: int
    attributes: dict[str, Any]


class OtlpReceiver:
    """Answers ``POST /v1/traces`` like a collector and keeps the decoded spans."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.path != "/v1/traces" or self.headers.get("content-type") != "application/x-protobuf":
                    self.send_response(404)
                    self.end_headers()
                    return
                receiver.receive(ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def receive(self, request: ExportTraceServiceRequest) -> None:
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    attributes = {a.key: a.value.string_value or a.value.int_value for a in span.attributes}
                    with self.lock:
                        self.spans.append(
                            ReceivedSpan(
                                resource.get("countersign.process", ""),
                                span.name,
                                span.trace_id.hex(),
                                span.span_id.hex(),
                                span.parent_span_id.hex(),
                                span.start_time_unix_nano,
                                attributes,
                            )
                        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver()
    yield server
    server.close()


def traced(db_url: str, receiver: OtlpReceiver, process: str, *args: str) -> str:
    """Run one command with OTLP tracing on; its standard output."""
    env = cli_env(
        db_url,
        COUNTERSIGN_OTEL="otlp",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
        OTEL_RESOURCE_ATTRIBUTES=f"countersign.process={process}",
        COUNTERSIGN_DEFAULT_CHANNELS="email",
    )
    done = subprocess.run(
        [sys.executable, "-m", "core", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
    )
    assert done.returncode == 0, f"{args} failed: {done.stderr}"
    return done.stdout


def test_a_workflow_resumed_by_another_runner_process_continues_its_trace(
    db_url: str,
    receiver: OtlpReceiver,
) -> None:
    accounts(db_url, "service", "agent@example.com")  # it starts the workflow
    workflow_id = traced(
        db_url,
        receiver,
        "start",
        "workflow",
        "start",
        str(ROOT / "examples" / "agent_workflow.yaml"),
        "--input",
        '{"order_id": "ORD-7", "amount": 180, "note": "rush"}',
        "--as",
        "agent@example.com",
    ).strip()
    traced(db_url, receiver, "runner-1", "runner", "--until-idle")
    [approval] = json.loads(
        traced(db_url, receiver, "cli", "approvals", "list", "--workflow", workflow_id, "--json")
    )
    traced(
        db_url,
        receiver,
        "answer",
        "approvals",
        "respond",
        approval["id"],
        "--decision",
        "approve",
        "--as",
        "finance@example.com",
    )
    traced(db_url, receiver, "runner-2", "runner", "--until-idle")
    shown = json.loads(traced(db_url, receiver, "cli", "workflow", "show", workflow_id, "--json"))
    assert shown["status"] == "completed"

    # Each process flushed its spans on exit.
    spans = receiver.spans
    [root] = [s for s in spans if s.name == "workflow Custom order with an agent"]
    assert root.process == "start" and root.parent_span_id == ""
    assert {s.trace_id for s in spans} == {root.trace_id}
    by_process: dict[str, list[str]] = {}
    for s in spans:
        by_process.setdefault(s.process, []).append(s.name)
    assert sorted(by_process["runner-1"]) == [
        "countersign.agent.run",
        "step charge_agent",
        "step check_order",
    ]
    assert sorted(by_process["runner-2"]) == ["countersign.agent.run", "step charge_agent"]
    assert by_process["answer"] == ["approval wait"]
    assert "cli" not in by_process  # reading creates no spans
    steps = [s for s in spans if s.name.startswith("step ")]
    assert all(s.parent_span_id == root.span_id for s in steps)
    for run in (s for s in spans if s.name == "countersign.agent.run"):
        [parent] = [s for s in steps if s.span_id == run.parent_span_id]
        assert parent.process == run.process and parent.name == "step charge_agent"
    [wait] = [s for s in spans if s.name == "approval wait"]
    assert wait.parent_span_id == root.span_id and wait.attributes["approval_id"] == approval["id"]
    # The wait started when runner-1 opened the request, before the answering process existed.
    first_task_step = min((s for s in steps if s.name == "step charge_agent"), key=lambda s: s.start_ns)
    assert first_task_step.process == "runner-1" and wait.start_ns >= first_task_step.start_ns


def test_console_tracing_writes_spans_to_stderr_and_leaves_stdout_to_the_command(db_url: str) -> None:
    env = cli_env(db_url, COUNTERSIGN_OTEL="console", COUNTERSIGN_LOG_FORMAT="json")
    accounts(db_url, "service", "agent@example.com")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "core",
            "workflow",
            "start",
            str(ROOT / "examples" / "agent_workflow.yaml"),
            "--as",
            "agent@example.com",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    workflow_id = done.stdout.strip()  # nothing but the id on stdout
    db = Database(db_url)
    try:
        traceparent = ops.get_workflow(db, workflow_id).trace_context["traceparent"]
    finally:
        db.dispose()
    # The console exporter prints each span as an indented JSON object.
    assert '"name": "workflow Custom order with an agent"' in done.stderr
    assert f'"trace_id": "0x{traceparent.split("-")[1]}"' in done.stderr
    assert f'"span_id": "0x{traceparent.split("-")[2]}"' in done.stderr
