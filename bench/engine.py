"""Engine throughput and resume latency on SQLite and PostgreSQL, side by side.

    python bench/engine.py                 # about 2-3 minutes
    python bench/engine.py --quick         # about 30 seconds
    python bench/engine.py --json out.json # also write the results as JSON
    python bench/engine.py --backends postgresql

For each backend, in one run, on a fresh scratch database (an SQLite file in
a temporary directory; a PostgreSQL database ``cs_bench_<pid>`` created and
dropped on the server of ``COUNTERSIGN_TEST_PG``, default
``postgresql://postgres@127.0.0.1:5432/test``), migrated with
``Database.upgrade()``:

* **steps/s**: workflows of cheap ``tool`` steps (a registered no-op tool)
  are created in bulk, then 1 or 4 runners are started, each a ``Runner`` in
  its own process (on SQLite four processes share one file), and the
  completed ``step_runs`` rows are counted over a measured window.
* **pgbench -N TPS** of the same PostgreSQL server at the same client count,
  measured in the same run on its own scratch database, and the ratio
  steps/s / TPS (aim: >= 0.5). For SQLite the same ratio is printed against
  pgbench (same machine), and against a raw ``sqlite3`` loop doing pgbench's
  -N transaction on a WAL file with the engine's pragmas, in 1 and 4 processes.
* **decision-to-resume latency** p50/p99: from ``respond_to_approval``
  returning to the moment the idle runner calls the tool of the step after
  the approval (aim: p99 < 100 ms). On PostgreSQL the runner is another
  process, woken by LISTEN/NOTIFY; on SQLite it is a thread of this process,
  woken by the in-process signal.

* **scale** (``--sections scale``): the same 1,000 steps run as 100 workflows
  of 10 steps, 10 of 100 and one of 1,000, by one in-process runner, for three
  workloads: plain no-op steps, checkpoint-heavy (every step takes a
  checkpoint) and agent-like (each step reads the previous step's output
  through a template and returns 2 KB). For each: ms per step, bytes per step
  (database growth after VACUUM: the SQLite file, or ``pg_database_size``
  after ``VACUUM FULL``), and the ratio of each at 100 and 1,000 steps to its
  value at 10 (goal: <= 1.3 at 1,000).
* **waiting** (``--sections waiting``): claim latency (``claim_next_workflow``
  of one runnable workflow) with 100 and with 100,000 waiting workflows beside
  it (created with one bulk INSERT); the ratio should stay near 1.

The machine is shared and noisy: the ratios measured side by side are what
matter, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from sqlalchemy import func, select, update  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench._runners import baseline_tree, runner_processes  # noqa: E402
from core.approvals.engine import ApprovalEngine  # noqa: E402
from core.definitions.workflow import WorkflowDefinition, parse_definition  # noqa: E402
from core.engine import workflows as ops  # noqa: E402
from core.engine.executor import rehearsal_task  # noqa: E402
from core.engine.tools import ToolRegistry  # noqa: E402
from core.store.db import Database  # noqa: E402
from core.store.tables import ApprovalRequest, StepRun, Workflow  # noqa: E402

PGBENCH = os.environ.get("PGBENCH", "/usr/lib/postgresql/15/bin/pgbench")
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
APPROVER = "approver@example.com"
REQUESTER = "bench@example.com"
STEPS_PER_WORKFLOW = 10

REGISTRY = ToolRegistry()


@REGISTRY.register("noop")
def noop() -> dict[str, Any]:
    """Does nothing: the step's cost is the engine's alone."""
    return {}


@REGISTRY.register("agentish")
def agentish(previous: Any = None) -> dict[str, Any]:
    """An agent-like step: reads the previous answer, returns about 2 KB."""
    return {"result": f"answer after {previous}: " + "lorem ipsum " * 170, "n": 1}


@REGISTRY.register("stamp")
def stamp() -> dict[str, Any]:
    """Records when a runner reached this step (same machine, same clock)."""
    return {"t": time.time()}


def throughput_definition(length: int = STEPS_PER_WORKFLOW) -> WorkflowDefinition:
    return parse_definition(
        {
            "name": "bench throughput",
            "steps": [{"name": f"s{i}", "type": "tool", "tool": "noop"} for i in range(length)],
        }
    )


def latency_definition() -> WorkflowDefinition:
    return parse_definition(
        {
            "name": "bench resume",
            "steps": [
                {
                    "name": "gate",
                    "type": "approval",
                    "approval_config": {"type": "binary", "title": "Go?", "requested_from": APPROVER},
                },
                {"name": "after", "type": "tool", "tool": "stamp"},
            ],
        }
    )


# -- settings -----------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    window: float  # seconds of measured steady-state throughput
    warmup: float  # seconds between runners ready and the window
    workflows_per_runner: int
    latency_samples: int
    pgbench_seconds: int

    @staticmethod
    def of(quick: bool) -> Plan:
        if quick:
            return Plan(
                window=2.5, warmup=0.5, workflows_per_runner=40, latency_samples=30, pgbench_seconds=2
            )
        return Plan(window=8.0, warmup=1.0, workflows_per_runner=250, latency_samples=100, pgbench_seconds=5)


@dataclass
class ScalePoint:
    workload: str
    length: int
    workflows: int
    ms_per_step: float
    bytes_per_step: float


@dataclass
class ThroughputPoint:
    length: int
    runners: int
    code: str
    steps_per_second: float


@dataclass
class BackendResult:
    backend: str
    scale: list[ScalePoint] = field(default_factory=list)
    claim_ms: dict[int, float] = field(default_factory=dict)  # waiting workflows -> p50
    # (workflow length, runners, code: "after" = this checkout, "before" = --baseline)
    throughput: list[ThroughputPoint] = field(default_factory=list)
    reference_tps: dict[int, float] = field(default_factory=dict)  # pgbench -N
    sqlite_raw_tps: dict[int, float] = field(default_factory=dict)  # SQLite only
    resume_ms: dict[str, float] = field(default_factory=dict)
    resume_before_ms: dict[str, float] = field(default_factory=dict)  # --baseline, PostgreSQL
    notes: list[str] = field(default_factory=list)


# -- scratch databases ------------------------------------------------------------------


def pg_admin_url() -> str:
    return os.environ.get("COUNTERSIGN_TEST_PG", DEFAULT_PG)


def _pg_conninfo(dbname: str) -> dict[str, str]:
    url = make_url(pg_admin_url().replace("postgresql+psycopg://", "postgresql://"))
    env = dict(os.environ)
    env.update(
        {
            "PGHOST": url.host or "127.0.0.1",
            "PGPORT": str(url.port or 5432),
            "PGUSER": url.username or "postgres",
            "PGDATABASE": dbname,
        }
    )
    if url.password:
        env["PGPASSWORD"] = url.password
    return env


def _pg_url(dbname: str) -> str:
    url = make_url(pg_admin_url().replace("postgresql://", "postgresql+psycopg://"))
    return url.set(database=dbname).render_as_string(hide_password=False)


def _pg_admin(sql: str) -> None:
    import psycopg

    admin = make_url(pg_admin_url().replace("postgresql+psycopg://", "postgresql://"))
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(sql)


@contextlib.contextmanager
def scratch_pg(name: str) -> Iterator[str]:
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _requester_account(db: Database) -> None:
    """The bench's requester may start workflows (a service account, where roles say so)."""
    from core.identity.users import add_user

    try:
        add_user(db, REQUESTER, role="service")
    except Exception:  # noqa: BLE001 - a version without that role lets anyone start
        pass


@contextlib.contextmanager
def scratch_database(backend: str) -> Iterator[Database]:
    if backend == "sqlite":
        directory = tempfile.mkdtemp(prefix="cs_bench_")
        db = Database(f"sqlite:///{directory}/bench.db")
        try:
            db.upgrade()
            _requester_account(db)
            yield db
        finally:
            db.dispose()
            shutil.rmtree(directory, ignore_errors=True)
    else:
        with scratch_pg(f"cs_bench_{os.getpid()}") as name:
            db = Database(_pg_url(name))
            try:
                db.upgrade()
                _requester_account(db)
                yield db
            finally:
                db.dispose()


# -- runner processes -----------------------------------------------------------------


# -- measurements ------------------------------------------------------------------


def create_workflows(db: Database, definition: WorkflowDefinition, count: int) -> list[str]:
    """``count`` runnable workflows, created through the engine's own API (8 threads)."""

    def create(_: int) -> str:
        return ops.create_workflow(db, definition, created_by=REQUESTER).id

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(create, range(count)))


def completed_steps(db: Database) -> int:
    with db.read() as session:
        return int(
            session.scalar(select(func.count()).select_from(StepRun).where(StepRun.status == "completed"))
            or 0
        )


def runnable_left(db: Database) -> int:
    with db.read() as session:
        return int(
            session.scalar(select(func.count()).select_from(Workflow).where(Workflow.status == "running"))
            or 0
        )


# Steps per second one runner is assumed to reach at most, to create enough work
# (500 ran out of work within the window once a runner passed 600 steps/s).
RATE_CEILING = 1000


def measure_steps(
    db: Database, runners: int, plan: Plan, length: int = STEPS_PER_WORKFLOW, tree: str | None = None
) -> tuple[float, str | None]:
    """Steps committed per second by ``runners`` runner processes (``tree``'s code)."""
    needed = runners * (plan.window + plan.warmup + 1) * RATE_CEILING
    count = max(runners * 6, -(-int(needed) // length))
    if length == STEPS_PER_WORKFLOW:
        count = max(count, plan.workflows_per_runner * runners)
    create_workflows(db, throughput_definition(length), count)
    note = None
    with runner_processes(db.url, runners, *([tree] if tree else [])):
        time.sleep(plan.warmup)
        start_count, start = completed_steps(db), time.perf_counter()
        end_count, end = start_count, start
        while end - start < plan.window:
            time.sleep(0.1)
            end_count, end = completed_steps(db), time.perf_counter()
            if runnable_left(db) == 0:
                note = f"{runners} runner(s), {length} steps: ran out of work after {end - start:.1f}s"
                break
    # Whatever the runners did not reach is left out of the next measurement.
    with db.session() as session:
        session.execute(
            update(Workflow).where(Workflow.status == "running").values(status="cancelled", runnable_at=None)
        )
    return (end_count - start_count) / max(end - start, 1e-9), note


def measure_resume(
    db: Database, samples: int, *, in_process: bool, tree: str | None = None
) -> dict[str, float]:
    """Decision-to-resume latency in milliseconds (p50, p99, max)."""
    create_workflows(db, latency_definition(), samples)
    engine = ApprovalEngine(db)
    latencies: list[float] = []
    with _runner_for_latency(db, in_process, tree):
        approvals = _wait_for_approvals(db, samples)
        for approval_id, workflow_id in approvals:
            time.sleep(0.05)  # the runner has let go and is idle, waiting again
            engine.respond_to_approval(approval_id, APPROVER, "approve", channel="bench")
            decided = time.time()
            reached = _wait_for_stamp(db, workflow_id)
            latencies.append(max(0.0, reached - decided) * 1000)
    latencies.sort()
    return {
        "p50": statistics.median(latencies),
        "p99": _percentile(latencies, 99),
        "max": latencies[-1],
        "samples": float(len(latencies)),
    }


@contextlib.contextmanager
def _runner_for_latency(db: Database, in_process: bool, tree: str | None = None) -> Iterator[None]:
    if not in_process:
        with runner_processes(db.url, 1, *([tree] if tree else [])):
            yield
        return
    from core.runtime import build_runner

    runner = build_runner(db, registry=REGISTRY, task_handler=rehearsal_task, dispatch_notifications=False)
    runner.start()
    try:
        yield
    finally:
        runner.stop()


def _wait_for_approvals(db: Database, count: int) -> list[tuple[str, str]]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with db.read() as session:
            rows = session.execute(
                select(ApprovalRequest.id, ApprovalRequest.workflow_id).where(
                    ApprovalRequest.status == "pending"
                )
            ).all()
        if len(rows) >= count:
            return [(str(a), str(w)) for a, w in rows]
        time.sleep(0.05)
    raise RuntimeError("workflows did not all reach their approval step within 120 s")


def _wait_for_stamp(db: Database, workflow_id: str) -> float:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with db.read() as session:
            output = session.scalar(
                select(StepRun.output).where(
                    StepRun.workflow_id == workflow_id,
                    StepRun.step_name == "after",
                    StepRun.status == "completed",
                )
            )
        if output:
            return float(output["t"])
        # Polling only notices the stamp (the runner wrote the time itself), so
        # it can be gentle and leave the CPU to the runner being measured.
        time.sleep(0.02)
    raise RuntimeError(f"workflow {workflow_id} did not resume within 30 s")


def _percentile(sorted_values: list[float], pct: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(pct / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


# -- scale: a step's cost at step 1,000 against step 1 ------------------------------------

SCALE_LENGTHS = (10, 100, 1000)
SCALE_TOTAL_STEPS = 1000
WORKLOADS = ("plain", "checkpoints", "agent-like")
WAITING_COUNTS = (100, 100_000)


def scale_definition(workload: str, length: int) -> WorkflowDefinition:
    steps: list[dict[str, Any]] = []
    for i in range(length):
        if workload == "agent-like":
            step: dict[str, Any] = {"name": f"s{i}", "type": "tool", "tool": "agentish"}
            if i:
                step["args"] = {"previous": f"${{steps.s{i - 1}.n}}"}
        else:
            step = {"name": f"s{i}", "type": "tool", "tool": "noop"}
            if workload == "checkpoints":
                step["create_checkpoint"] = True
        steps.append(step)
    return parse_definition({"name": f"bench {workload} {length}", "steps": steps})


def database_bytes(db: Database) -> int:
    """The database's size on disk once dead rows are reclaimed."""
    if db.is_postgres:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM FULL")
            return int(conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar() or 0)
    db.engine.dispose()  # VACUUM needs no other connection in a transaction
    import sqlite3

    path = make_url(db.url).database or ""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as raw:
        raw.execute("VACUUM")
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return os.path.getsize(path)


def measure_scale(db: Database, workload: str, length: int) -> ScalePoint:
    """1,000 steps as workflows of ``length`` steps: ms and bytes per step."""
    from core.runtime import build_runner

    count = max(1, SCALE_TOTAL_STEPS // length)
    size_before = database_bytes(db)
    ids = create_workflows(db, scale_definition(workload, length), count)
    runner = build_runner(
        db, registry=REGISTRY, task_handler=rehearsal_task, lease_seconds=60, dispatch_notifications=False
    )
    started = time.perf_counter()
    runner.run_until_idle(max_seconds=1800)
    elapsed = time.perf_counter() - started
    with db.read() as session:
        done = session.scalar(
            select(func.count())
            .select_from(Workflow)
            .where(Workflow.id.in_(ids), Workflow.status == "completed")
        )
    if done != count:
        raise RuntimeError(f"{workload}/{length}: {done} of {count} workflows completed")
    steps = count * length
    grown = database_bytes(db) - size_before
    return ScalePoint(workload, length, count, elapsed * 1000 / steps, grown / steps)


def bench_scale(backend: str, log: Any) -> list[ScalePoint]:
    points = []
    for workload in WORKLOADS:
        with scratch_database(backend) as db:
            for length in SCALE_LENGTHS:
                log(f"{backend}: {workload}, {SCALE_TOTAL_STEPS} steps as workflows of {length}...")
                points.append(measure_scale(db, workload, length))
    return points


def bench_waiting(backend: str, samples: int, log: Any) -> dict[int, float]:
    """Claim latency p50 (ms) beside 100 and 100,000 waiting workflows."""
    from sqlalchemy import insert

    from core.engine.runner import claim_next_workflow
    from core.store.tables import new_id, utcnow

    result: dict[int, float] = {}
    definition = {"name": "waiting", "steps": [{"name": "gate", "type": "approval"}]}
    with scratch_database(backend) as db:
        present = 0
        for target in WAITING_COUNTS:
            log(f"{backend}: claim latency beside {target:,} waiting workflows...")
            now = utcnow()
            rows = [
                {
                    "id": new_id(),
                    "name": "waiting",
                    "description": "",
                    "definition": definition,
                    "input_data": {},
                    "context": {},
                    "status": "waiting_approval",
                    "current_step": 0,
                    "created_by": REQUESTER,
                    "trace_context": {},
                    "engine_errors": 0,
                    "created_at": now,
                    "updated_at": now,
                    "started_at": now,
                }
                for _ in range(target - present)
            ]
            with db.session() as session:
                for start in range(0, len(rows), 5000):
                    session.execute(insert(Workflow), rows[start : start + 5000])
            present = target
            if db.is_postgres:
                with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.exec_driver_sql("VACUUM ANALYZE workflows")
            latencies = []
            for _ in range(samples):
                workflow_id = new_id()
                with db.session() as session:
                    session.execute(
                        insert(Workflow),
                        [{**rows[0], "id": workflow_id, "status": "running", "runnable_at": utcnow()}]
                        if rows
                        else [
                            {
                                "id": workflow_id,
                                "name": "one",
                                "description": "",
                                "definition": definition,
                                "input_data": {},
                                "context": {},
                                "status": "running",
                                "runnable_at": utcnow(),
                                "current_step": 0,
                                "created_by": REQUESTER,
                                "trace_context": {},
                                "engine_errors": 0,
                                "created_at": utcnow(),
                                "updated_at": utcnow(),
                            }
                        ],
                    )
                started = time.perf_counter()
                claimed = claim_next_workflow(db, "bench-runner", 30.0)
                latencies.append((time.perf_counter() - started) * 1000)
                if claimed != workflow_id:
                    raise RuntimeError(f"claimed {claimed!r}, expected {workflow_id!r}")
                with db.session() as session:
                    session.execute(
                        update(Workflow)
                        .where(Workflow.id == workflow_id)
                        .values(status="completed", runnable_at=None, lease_owner=None)
                    )
            result[target] = statistics.median(latencies)
    return result


def render_scale(results: list[BackendResult]) -> str:
    lines = [
        f"{'backend':<11} {'workload':<12} {'steps':>6} {'ms/step':>8} {'x10':>5} "
        f"{'B/step':>8} {'x10':>5}  goal (x10 <= 1.3 at 1,000)"
    ]
    for r in results:
        base = {(p.workload): p for p in r.scale if p.length == SCALE_LENGTHS[0]}
        for p in r.scale:
            b = base[p.workload]
            ms_ratio = p.ms_per_step / b.ms_per_step if b.ms_per_step else 0.0
            bytes_ratio = p.bytes_per_step / b.bytes_per_step if b.bytes_per_step else 0.0
            goal = ""
            if p.length == SCALE_LENGTHS[-1]:
                goal = (
                    "ok"
                    if max(ms_ratio, bytes_ratio) <= 1.3
                    else f"HIGH ({'ms' if ms_ratio > 1.3 else ''}"
                    f"{' ' if ms_ratio > 1.3 and bytes_ratio > 1.3 else ''}"
                    f"{'bytes' if bytes_ratio > 1.3 else ''})"
                )
            lines.append(
                f"{r.backend:<11} {p.workload:<12} {p.length:>6} {p.ms_per_step:>8.2f} "
                f"{ms_ratio:>5.2f} {p.bytes_per_step:>8.0f} {bytes_ratio:>5.2f}  {goal}"
            )
    return "\n".join(lines)


def render_waiting(results: list[BackendResult]) -> str:
    lines = [
        f"{'backend':<11} "
        + " ".join(f"{f'claim p50 @{n:,}':>18}" for n in WAITING_COUNTS)
        + f" {'ratio':>6}"
    ]
    for r in results:
        if not r.claim_ms:
            continue
        low, high = (r.claim_ms.get(n, 0.0) for n in WAITING_COUNTS)
        lines.append(
            f"{r.backend:<11} "
            + " ".join(f"{r.claim_ms.get(n, 0.0):>16.2f}ms" for n in WAITING_COUNTS)
            + f" {high / low if low else 0.0:>6.2f}"
        )
    return "\n".join(lines)


# -- references: pgbench and raw sqlite3 ---------------------------------------------


def pgbench_tps(clients: int, seconds: int) -> float:
    with scratch_pg(f"cs_pgbench_{os.getpid()}") as name:
        env = _pg_conninfo(name)
        subprocess.run(
            [PGBENCH, "-i", "-s", "1", "-q", name], env=env, check=True, capture_output=True, timeout=120
        )
        done = subprocess.run(
            [PGBENCH, "-N", "-c", str(clients), "-j", str(clients), "-T", str(seconds), name],
            env=env,
            check=True,
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        )
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", done.stdout)
    if match is None:
        raise RuntimeError(f"could not read pgbench's TPS from: {done.stdout[-300:]}")
    return float(match.group(1))


def sqlite_raw_tps(clients: int, seconds: float) -> float:
    from bench import _sqlite_raw

    directory = tempfile.mkdtemp(prefix="cs_bench_raw_")
    path = os.path.join(directory, "raw.db")
    try:
        _sqlite_raw.prepare(path)
        ctx = multiprocessing.get_context("fork")
        ready, go, out = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
        procs = [
            ctx.Process(target=_sqlite_raw.client, args=(path, seconds, ready, go, out))
            for _ in range(clients)
        ]
        for proc in procs:
            proc.start()
        for _ in procs:
            ready.acquire(timeout=60)
        go.set()
        total = sum(out.get(timeout=seconds + 60) for _ in procs)
        for proc in procs:
            proc.join(10)
        return total / seconds
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# -- the run ---------------------------------------------------------------------------


RUNNER_COUNTS = (1, 4)
THROUGHPUT_LENGTHS = (10, 100, 1000)


SECTIONS = ("throughput", "scale", "waiting")


def bench_backend(
    backend: str,
    plan: Plan,
    log: Any,
    pgbench: dict[int, float],
    sections: tuple[str, ...] = SECTIONS,
    baseline: str | None = None,
    lengths: tuple[int, ...] = THROUGHPUT_LENGTHS,
) -> BackendResult:
    result = BackendResult(backend, reference_tps=pgbench)
    if "scale" in sections:
        result.scale = bench_scale(backend, log)
    if "waiting" in sections:
        result.claim_ms = bench_waiting(backend, plan.latency_samples, log)
    if "throughput" not in sections:
        return result
    with scratch_database(backend) as db:
        codes: list[tuple[str, str | None]] = [("after", None)]
        if baseline:
            codes.append(("before", baseline))
        for cell, (length, runners) in enumerate(
            (length, runners) for length in lengths for runners in RUNNER_COUNTS
        ):
            # Before and after alternate which goes first, so drift favours neither.
            for code, tree in codes if cell % 2 == 0 else codes[::-1]:
                log(f"{backend}: steps/s, workflows of {length}, {runners} runner process(es), {code}...")
                rate, note = measure_steps(db, runners, plan, length, tree)
                result.throughput.append(ThroughputPoint(length, runners, code, rate))
                if note:
                    result.notes.append(f"{code}: {note}")
        log(f"{backend}: decision-to-resume latency...")
        result.resume_ms = measure_resume(db, plan.latency_samples, in_process=backend == "sqlite")
        if baseline and backend == "postgresql":  # a runner process either way
            log(f"{backend}: decision-to-resume latency, before...")
            try:
                result.resume_before_ms = measure_resume(
                    db, plan.latency_samples, in_process=False, tree=baseline
                )
            except RuntimeError as exc:  # e.g. a baseline that refuses today's definitions
                result.notes.append(f"before: resume latency not measured ({exc})")
                with db.session() as session:  # its workflows stay out of what follows
                    session.execute(
                        update(Workflow)
                        .where(Workflow.status == "running")
                        .values(status="cancelled", runnable_at=None)
                    )
    if backend == "sqlite":
        for clients in RUNNER_COUNTS:
            log(f"sqlite: raw sqlite3 -N loop with {clients} process(es)...")
            result.sqlite_raw_tps[clients] = sqlite_raw_tps(clients, plan.pgbench_seconds)
    return result


def render(results: list[BackendResult]) -> str:
    lines = [
        f"{'backend':<11} {'steps':>5} {'runners':>7} {'before':>8} {'steps/s':>8} "
        f"{'x before':>8} {'pgbench TPS':>11} {'ratio':>6} {'aim':>4}  "
        f"{'raw sqlite3 TPS':>15} {'ratio':>6}",
    ]
    for r in results:
        rates = {(p.length, p.runners, p.code): p.steps_per_second for p in r.throughput}
        for length, runners, code in rates:
            if code != "after":
                continue
            steps, tps = rates[(length, runners, code)], r.reference_tps.get(runners, 0.0)
            before = rates.get((length, runners, "before"))
            before_cols = (
                f"{before:>8.0f} {steps:>8.0f} {steps / before:>8.2f}"
                if before
                else f"{'':>8} {steps:>8.0f} {'':>8}"
            )
            ratio = steps / tps if tps else 0.0
            raw = r.sqlite_raw_tps.get(runners)
            raw_cols = f"  {raw:>15.0f} {steps / raw:>6.2f}" if raw else ""
            lines.append(
                f"{r.backend:<11} {length:>5} {runners:>7} {before_cols} {tps:>11.0f} "
                f"{ratio:>6.2f} {'ok' if ratio >= 0.5 else 'LOW':>4}{raw_cols}"
            )
    lines.append("")
    lines.append(f"{'backend':<11} {'woken by':<22} {'resume p50':>10} {'p99':>8} {'max':>8} {'aim':>4}")
    for r in results:
        woken = "in-process signal" if r.backend == "sqlite" else "LISTEN/NOTIFY (other proc)"
        for label, ms in ((r.backend, r.resume_ms), (f"{r.backend} (before)", r.resume_before_ms)):
            if not ms:
                continue
            lines.append(
                f"{label:<11} {woken:<22} {ms['p50']:>8.1f}ms {ms['p99']:>6.1f}ms "
                f"{ms['max']:>6.1f}ms {'ok' if ms['p99'] < 100 else 'SLOW':>4}"
            )
    for r in results:
        for note in r.notes:
            lines.append(f"note ({r.backend}): {note}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="about 30 seconds")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also measure throughput with the runners of git revision REV "
        "('before'), interleaved with this checkout's ('after')",
    )
    parser.add_argument(
        "--lengths",
        default=",".join(map(str, THROUGHPUT_LENGTHS)),
        help="workflow lengths for throughput (default 10,100,1000)",
    )
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help="comma-separated: throughput (with resume latency), scale, waiting",
    )
    args = parser.parse_args(argv)
    from core.base.logging import configure_logging

    configure_logging(level="WARNING")  # per-step INFO lines would be measured too
    plan = Plan.of(args.quick)
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    sections = tuple(s.strip() for s in args.sections.split(",") if s.strip())
    pgbench: dict[int, float] = {}
    if "throughput" in sections:
        for clients in RUNNER_COUNTS:
            log(f"pgbench -N with {clients} client(s)...")
            pgbench[clients] = pgbench_tps(clients, plan.pgbench_seconds)
    lengths = tuple(int(n) for n in args.lengths.split(",") if n.strip())
    with contextlib.ExitStack() as stack:
        baseline = stack.enter_context(baseline_tree(args.baseline)) if args.baseline else None
        results = [
            bench_backend(b.strip(), plan, log, pgbench, sections, baseline, lengths)
            for b in args.backends.split(",")
            if b.strip()
        ]
    if "throughput" in sections:
        print(render(results))
    if "scale" in sections:
        print("\n" + render_scale(results))
    if "waiting" in sections:
        print("\n" + render_waiting(results))
    print(
        f"\n(total {time.perf_counter() - started:.0f}s; steps/s from completed step_runs "
        f"rows over a {plan.window:g}s window; workflows of 'steps' no-op tool steps; "
        f"'before' is {args.baseline or '-'}; aims: ratio >= 0.5, resume p99 < 100 ms)"
    )
    if args.json:
        payload = {
            "plan": asdict(plan),
            "results": [asdict(r) for r in results],
            "seconds": time.perf_counter() - started,
        }
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
