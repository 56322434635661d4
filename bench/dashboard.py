"""Every page's render time on the demo, and how the Inbox and Workflows pages scale.

    python bench/dashboard.py --pages    # each page on the demo against a bare page only
    python bench/dashboard.py            # both: the pages, then 100,000 workflows against 100
    python bench/dashboard.py --pg       # PostgreSQL (COUNTERSIGN_TEST_PG, default
                                         # postgresql://postgres@127.0.0.1:5432/test)
    python bench/dashboard.py --browser [--rounds N]   # each page in Chromium, what a person waits
                                         # for (bench/_browser_times.py; about 5 minutes)

First (bench/_page_times.py), every page is rendered on a SQLite copy of
the demo, alternately with a bare Streamlit page, and printed with its
median and its ratio to the bare page (aim: under 1 s each). Then two
databases are built side by side in one run: a small one (100 workflows,
10 waiting for the inbox user) and a large one (100,000 workflows, 10,000
waiting). Rows are copied from one real workflow that the engine ran to its
approval step, so every pending approval has what the engine itself writes
(step run, request, assignee row), and they are bulk-inserted with SQLAlchemy
Core executemany. Each page is then rendered with Streamlit's AppTest, signed
in as the inbox user, alternating small and large, and the median of several
renders is compared as a ratio (aim: under 3x).

With --browser (bench/_browser_times.py), only this: `streamlit run app.py` over a
fresh SQLite demo and a bare Streamlit page on a second server, each page timed in
Debian's Chromium from the click or the page load until it has settled (script
finished, charts drawn), alternately with a full load of the bare page.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from sqlalchemy import Table, insert, select  # noqa: E402

from core.definitions.definition_text import load_definition_file  # noqa: E402
from core.demo.scenarios import add_demo_users, template_path  # noqa: E402
from core.engine import workflows as ops  # noqa: E402
from core.runtime import build_runner  # noqa: E402
from core.store.db import Database  # noqa: E402
from core.store.tables import (  # noqa: E402
    ApprovalRequest,
    Base,
    StepRun,
    Workflow,
    utcnow,
)

TABLES = Base.metadata.tables

INBOX_USER = "devops@example.com"
CHUNK = 5_000
# A mix of finished and live work, as a busy installation would hold.
OTHER_STATUSES = ["completed"] * 6 + ["failed", "cancelled", "running", "paused"]
PG_ADMIN_URL = os.environ.get("COUNTERSIGN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


# -- building a database ----------------------------------------------------------------


def _row(obj: Any, table: Table) -> dict[str, Any]:
    return {column.key: getattr(obj, column.key) for column in table.columns}


def _prototype(db: Database) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """One deployment workflow run by the engine up to its form approval."""
    workflow = ops.create_workflow(
        db,
        load_definition_file(template_path("deployment_pipeline")),
        input_data={"service": "checkout-api", "version": "2.14.0"},
        created_by="agent@example.com",
    )
    build_runner(db, runner_id="bench-setup").run_until_idle(max_seconds=60)
    with db.read() as session:
        wf = session.get(Workflow, workflow.id)
        approval = session.scalars(
            select(ApprovalRequest).where(ApprovalRequest.workflow_id == workflow.id)
        ).one()
        run = session.get(StepRun, approval.step_run_id)
        assert wf is not None and run is not None and wf.status == "waiting_approval", wf
        return (
            _row(wf, TABLES["workflows"]),
            _row(run, TABLES["step_runs"]),
            _row(approval, TABLES["approval_requests"]),
        )


def populate(db: Database, workflows: int, pending: int) -> float:
    """Fill ``db`` with ``workflows`` rows, ``pending`` of them waiting; returns seconds."""
    started = time.perf_counter()
    add_demo_users(db)
    wf_proto, run_proto, approval_proto = _prototype(db)
    every = max(1, workflows // pending) if pending else workflows + 1
    now = utcnow()
    with db.read() as session:
        next_run_id = (session.scalar(select(StepRun.id).order_by(StepRun.id.desc()).limit(1)) or 0) + 1
    batch: dict[str, list[dict[str, Any]]] = {
        "wf": [],
        "run": [],
        "approval": [],
        "assignee": [],
        "outbox": [],
    }
    made_pending = 0

    def flush() -> None:
        with db.engine.begin() as conn:
            for key, table in (
                ("wf", TABLES["workflows"]),
                ("run", TABLES["step_runs"]),
                ("approval", TABLES["approval_requests"]),
                ("assignee", TABLES["approval_assignees"]),
                ("outbox", TABLES["notifications"]),
            ):
                if batch[key]:
                    conn.execute(insert(table), batch[key])
                    batch[key].clear()

    for index in range(workflows - 1):  # the prototype is the last one
        created = now - timedelta(seconds=60 * (index + 1))
        wf_id = str(uuid.uuid4())
        wf = {
            **wf_proto,
            "id": wf_id,
            "name": f"{wf_proto['name']} #{index}",
            "created_at": created,
            "updated_at": created,
            "started_at": created,
            "lease_owner": None,
            "lease_expires_at": None,
        }
        if index % every == 0 and made_pending < pending - 1:
            made_pending += 1
            approval_id = str(uuid.uuid4())
            run_id = next_run_id
            next_run_id += 1
            wf["current_step_run_id"] = run_id
            batch["run"].append(
                {
                    **run_proto,
                    "id": run_id,
                    "workflow_id": wf_id,
                    "approval_id": approval_id,
                    "idempotency_key": f"{wf_id}/{run_id}",
                    "started_at": created,
                }
            )
            batch["approval"].append(
                {
                    **approval_proto,
                    "id": approval_id,
                    "workflow_id": wf_id,
                    "step_run_id": run_id,
                    "created_at": created,
                    "updated_at": created,
                    "expires_at": (now + timedelta(hours=1 + index % 72)) if index % 3 else None,
                }
            )
            batch["assignee"].append({"approval_id": approval_id, "principal": INBOX_USER})
            batch["outbox"].append(
                {
                    "id": str(uuid.uuid4()),
                    "approval_id": approval_id,
                    "workflow_id": wf_id,
                    "kind": "approval.requested",
                    "channel": "email",
                    "recipient": INBOX_USER,
                    "status": "sent",
                    "attempts": 1,
                    "next_attempt_at": created,
                    "sent_at": created,
                    "payload": {"title": approval_proto["title"], "level": 0},
                    "external_ref": {},
                    "created_at": created,
                    "updated_at": created,
                }
            )
        else:
            status = OTHER_STATUSES[index % len(OTHER_STATUSES)]
            wf.update(
                status=status,
                current_step_run_id=None,
                runnable_at=None if status != "running" else now + timedelta(days=365),
                finished_at=created if status in ("completed", "failed", "cancelled") else None,
            )
        batch["wf"].append(wf)
        if len(batch["wf"]) >= CHUNK:
            flush()
    flush()
    if db.is_postgres:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            # Explicit ids bypassed the sequence; move it past them.
            conn.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('step_runs', 'id'), (SELECT max(id) FROM step_runs))"
            )
            # Autovacuum's steady state: statistics and the visibility map (index-only scans).
            conn.exec_driver_sql("VACUUM ANALYZE")
    else:
        with db.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
    return time.perf_counter() - started


@contextlib.contextmanager
def fresh_database(pg: bool, tag: str, workdir: Path) -> Iterator[Database]:
    if not pg:
        db = Database(f"sqlite:///{workdir / f'{tag}.db'}")
        db.upgrade()
        try:
            yield db
        finally:
            db.dispose()
        return
    import psycopg

    name = f"cs_bench_{tag}_{uuid.uuid4().hex[:8]}"
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db = Database(f"{base}/{name}")
    try:
        db.upgrade()
        yield db
    finally:
        db.dispose()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- rendering ----------------------------------------------------------------------------


def page_renderer(page: str, db_url: str) -> Callable[[], None]:
    """A function rendering ``pages/<page>.py`` through app.py, signed in as the inbox
    user; each call is one full script run, as a browser refresh would cause."""
    import streamlit.logger
    from streamlit.testing.v1 import AppTest

    from bench._page_times import signed_token
    from components.auth import SESSION_EMAIL

    streamlit.logger.set_log_level("error")  # AppTest's bare-mode warnings

    os.environ["DATABASE_URL"] = db_url
    app = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=120)
    app.session_state[SESSION_EMAIL] = signed_token(db_url, INBOX_USER)
    app.run()  # the landing page (st.navigation is known only after a first run)
    app.switch_page(f"pages/{page}.py")

    def render() -> None:
        os.environ["DATABASE_URL"] = db_url  # services are looked up by URL on every run
        app.run()
        if app.exception:
            raise RuntimeError(f"pages/{page}.py failed: {app.exception[0].message}")
        titles = [e.value for e in app.title]
        if page.title() not in titles:
            raise RuntimeError(f"pages/{page}.py did not draw its title; drew {titles}")

    return render


def seconds(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def side_by_side(calls: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Median seconds of each call, alternating so machine noise hits all alike."""
    for call in calls.values():
        call()  # warm-up: imports, services, caches
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            times[name].append(seconds(call))
    return {name: statistics.median(values) for name, values in times.items()}


def data_calls(db: Database) -> dict[str, Callable[[], Any]]:
    """The queries behind the two pages, to show where a slow render spends its time."""
    from core.approvals import inbox as reports

    return {
        "reports.inbox_summary": lambda: reports.inbox_summary(db, INBOX_USER),
        "reports.inbox": lambda: reports.inbox(db, INBOX_USER, limit=25),
        "workflows.list_workflows": lambda: ops.list_workflows(db, limit=25),
    }


def demo_page_times(repeats: int) -> bool:
    from bench._page_times import measure
    from core.demo.scenarios import load_demo
    from core.runtime import load_tools

    load_tools()  # the demo's flows name the demo tools
    print(f"Every page on the demo (SQLite), median of {repeats} renders, against a bare page")
    with tempfile.TemporaryDirectory(prefix="countersign-pages-") as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'demo.db'}")
        db.upgrade()
        load_demo(db)
        build_runner(db, runner_id="bench-demo").run_until_idle(max_seconds=60)
        try:
            return measure(db.url, repeats)
        finally:
            db.dispose()


def browser_times(rounds: int | None, budget: float) -> bool:
    import subprocess

    from bench._browser_times import run

    load = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    print(f"Every page in Chromium on the demo (SQLite), against a bare page; {os.cpu_count()} cores")
    print(f"  before: {load}")
    with tempfile.TemporaryDirectory(prefix="countersign-browser-") as tmp:
        fine = run(rounds, budget, Path(tmp))
    load = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    print(f"  after: {load}")
    return fine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pg", action="store_true", help="measure on PostgreSQL instead of SQLite")
    parser.add_argument("--workflows", type=int, default=100_000)
    parser.add_argument("--pending", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=100, help="workflows in the small database")
    parser.add_argument("--repeats", type=int, default=7, help="renders per page and size (median)")
    parser.add_argument("--aim", type=float, default=3.0, help="ratio to stay under")
    parser.add_argument("--pages", action="store_true", help="only each page on the demo against a bare page")
    parser.add_argument(
        "--browser", action="store_true", help="only each page in Chromium against a bare page (served)"
    )
    parser.add_argument(
        "--rounds", type=int, help="--browser: rounds of every page (default: up to 5 within --budget)"
    )
    parser.add_argument("--budget", type=float, default=270, help="--browser: seconds for the whole run")
    args = parser.parse_args(argv)
    if args.browser:
        return 0 if browser_times(args.rounds, args.budget) else 1
    # The pages share one process-wide services object per database URL; no
    # runner or demo is wanted in a measurement.
    os.environ["RUNNER"] = "external"
    os.environ["COUNTERSIGN_DEMO"] = "off"
    pages_fine = demo_page_times(args.repeats)
    if args.pages:
        return 0 if pages_fine else 1
    small_pending = max(1, args.small * args.pending // args.workflows)
    backend = "PostgreSQL" if args.pg else "SQLite"
    print(
        f"Dashboard pages on {backend}: {args.small:,} workflows ({small_pending:,} waiting) "
        f"against {args.workflows:,} ({args.pending:,} waiting), median of {args.repeats} renders"
    )
    with (
        tempfile.TemporaryDirectory(prefix="countersign-bench-") as tmp,
        fresh_database(args.pg, "small", Path(tmp)) as small,
        fresh_database(args.pg, "large", Path(tmp)) as large,
    ):
        print(
            f"  loaded small in {populate(small, args.small, small_pending):.1f}s, "
            f"large in {populate(large, args.workflows, args.pending):.1f}s"
        )
        worst = 0.0
        print(f"  {'page (AppTest render)':<26} {'small':>9} {'large':>9} {'ratio':>7}")
        for page in ("inbox", "workflows"):
            got = side_by_side(
                {"small": page_renderer(page, small.url), "large": page_renderer(page, large.url)},
                args.repeats,
            )
            ratio = got["large"] / got["small"]
            worst = max(worst, ratio)
            print(f"  {page:<26} {got['small'] * 1000:>7.0f}ms {got['large'] * 1000:>7.0f}ms {ratio:>6.2f}x")
        print(f"  {'data call':<26} {'small':>9} {'large':>9} {'ratio':>7}")
        small_calls, large_calls = data_calls(small), data_calls(large)
        for name in small_calls:
            got = side_by_side({"small": small_calls[name], "large": large_calls[name]}, args.repeats)
            print(
                f"  {name:<26} {got['small'] * 1000:>7.1f}ms {got['large'] * 1000:>7.1f}ms "
                f"{got['large'] / got['small']:>6.1f}x"
            )
        verdict = "under" if worst < args.aim else "OVER"
        print(f"  worst page ratio {worst:.2f}x: {verdict} the {args.aim:g}x aim")
    return 0 if worst < args.aim else 1


if __name__ == "__main__":
    raise SystemExit(main())
