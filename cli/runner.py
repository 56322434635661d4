"""``python -m core runner``, ``demo`` and ``doctor``: running workflows,
loading the demo, checking an installation.

``cli.main`` registers the three as top-level commands. Core is imported
inside each command (fast ``--help``).
"""

from __future__ import annotations

from typing import Annotated

import typer

from cli.support import AsJson, open_database, print_json


def runner_command(
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Return once nothing is runnable.")
    ] = False,
    concurrency: Annotated[int, typer.Option(help="Worker threads.")] = 1,
    metrics_port: Annotated[
        int | None, typer.Option("--metrics-port", help="Serve Prometheus metrics on this port.")
    ] = None,
    metrics_host: Annotated[
        str, typer.Option("--metrics-host", help="Address for --metrics-port.")
    ] = "127.0.0.1",
) -> None:
    """Run workflows (forever, or until nothing is runnable)."""
    from core.engine.runner import wait_for_database
    from core.ops.production import require_production_secrets
    from core.runtime import build_runner

    require_production_secrets("The runner")
    # A long-running runner waits for a database that does not answer yet; a
    # batch run (--until-idle) fails at once instead.
    db = open_database() if until_idle else wait_for_database(open_database)
    worker = build_runner(db, concurrency=concurrency)
    if metrics_port is not None:
        from core.ops.metrics import serve_runner_metrics

        serve_runner_metrics(db, metrics_port, metrics_host)
        typer.echo(f"metrics on http://{metrics_host}:{metrics_port}/metrics", err=True)
    if until_idle:
        steps = worker.run_until_idle()
        typer.echo(f"idle after {steps} steps")
        return
    import signal

    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    typer.echo(f"runner {worker.runner_id} started", err=True)
    try:
        worker.run_forever()
    except KeyboardInterrupt:
        worker.stop()


def demo_command() -> None:
    """Load the four demo scenarios and their users."""
    from core.demo.scenarios import DEMO_PASSWORD, load_demo

    for workflow in load_demo(open_database()):
        typer.echo(f"{workflow.id} {workflow.name}")
    typer.echo(f"demo users' password: {DEMO_PASSWORD}", err=True)


def doctor_command(as_json: AsJson = False) -> None:
    """Check settings, database, migrations, channels, runners; exit 1 on any FAIL."""
    from core.ops.doctor import as_dicts, healthy, run_checks

    checks = run_checks()
    if as_json:
        print_json({"healthy": healthy(checks), "checks": as_dicts(checks)})
    else:
        width = max(len(c.name) for c in checks)
        for c in checks:
            typer.echo(f"{c.status:<4}  {c.name:<{width}}  {c.message}")
    if not healthy(checks):
        raise SystemExit(1)
