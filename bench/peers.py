"""Countersign against DBOS Transact and LangGraph on the same PostgreSQL, in one run.

    python bench/peers.py                 # chains of 10, 100 and 1,000 no-op steps
    python bench/peers.py --quick         # fewer rounds and steps per measurement
    python bench/peers.py --lengths 10,100 --rounds 5

Each engine runs chains of no-op steps, one chain after another, durably:

* **Countersign**: a workflow of N ``tool`` steps (a registered no-op tool),
  created through ``core.engine.workflows.create_workflow`` and run to its end by an
  in-process ``Runner`` (``run_until_idle``); every step's outcome is
  committed before the next step starts.
* **DBOS Transact** (``dbos``): a ``@DBOS.workflow`` calling a no-op
  ``@DBOS.step`` N times; DBOS records each step's output in its system
  database before the next.
* **LangGraph** with ``langgraph-checkpoint-postgres``: a graph whose one
  node adds 1 to a counter and loops until N, compiled with ``PostgresSaver``
  and invoked with ``durability="sync"`` (each step's checkpoint is written
  before the next step runs, as the other two do).

Each engine runs in its own long-lived worker process on its own scratch
database (``cs_peers_<engine>_<pid>``, created and dropped on the server of
``COUNTERSIGN_TEST_PG``); the peers run in a separate virtualenv that has
them (``bench/requirements-peers.txt``; default ``.venv-peers/bin/python``
at the top of the checkout, or ``--peers-python``), so the product never
depends on them. Measurements interleave: every round runs each engine once
per length, in a rotating order, and the median of the rounds is printed with
Countersign's ratio to each peer (goal: >= 1.0). The machine may be shared
and noisy: read the ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import IO, Any, TypedDict

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENGINES = ("countersign", "dbos", "langgraph")
LENGTHS = (10, 100, 1000)
REQUESTER = "bench@example.com"


# -- workers: one process per engine, reading "LENGTH COUNT" lines ------------------------


def countersign_worker(url: str) -> Callable[[int, int], None]:
    sys.path.insert(0, REPO_ROOT)
    import logging

    logging.disable(logging.WARNING)
    from core.base.logging import configure_logging
    from core.definitions.workflow import parse_definition
    from core.engine import workflows as ops
    from core.engine.executor import rehearsal_task
    from core.engine.tools import ToolRegistry
    from core.runtime import build_runner
    from core.store.db import Database

    configure_logging(level="WARNING")  # per-step INFO lines would be measured too
    registry = ToolRegistry()

    @registry.register("noop")
    def noop() -> dict[str, Any]:
        return {}

    db = Database(url)
    runner = build_runner(db, registry=registry, task_handler=rehearsal_task, dispatch_notifications=False)
    definitions: dict[int, Any] = {}

    def run(length: int, count: int) -> None:
        definition = definitions.get(length) or definitions.setdefault(
            length,
            parse_definition(
                {
                    "name": f"chain {length}",
                    "steps": [{"name": f"s{i}", "type": "tool", "tool": "noop"} for i in range(length)],
                }
            ),
        )
        for _ in range(count):
            workflow_id = ops.create_workflow(db, definition, created_by=REQUESTER).id
            runner.run_until_idle(max_seconds=1800)
            status = ops.get_workflow(db, workflow_id).status
            if status != "completed":
                raise RuntimeError(f"countersign: workflow {workflow_id} is {status}")

    return run


def dbos_worker(url: str) -> Callable[[int, int], None]:
    import logging

    from dbos import DBOS

    DBOS(
        config={
            "name": "cs-peers-bench",
            "system_database_url": url,
            "log_level": "WARNING",
            "console_log_level": "WARNING",
        }
    )
    logging.getLogger("dbos").setLevel(logging.WARNING)

    @DBOS.step()
    def noop_step() -> dict[str, Any]:
        return {}

    @DBOS.workflow()
    def chain(length: int) -> int:
        for _ in range(length):
            noop_step()
        return length

    DBOS.launch()

    def run(length: int, count: int) -> None:
        for _ in range(count):
            if chain(length) != length:
                raise RuntimeError("dbos: the chain did not run to its end")

    return run


class ChainState(TypedDict):
    """LangGraph's state (at module level: it reads the node's type hints)."""

    i: int
    n: int


def chain_step(state: ChainState) -> dict[str, int]:
    return {"i": state["i"] + 1}


def langgraph_worker(url: str) -> Callable[[int, int], None]:
    import uuid

    from langgraph.checkpoint.postgres import PostgresSaver
    from langgraph.graph import END, StateGraph

    def route(state: ChainState) -> str:
        return "step" if state["i"] < state["n"] else END

    graph = StateGraph(ChainState)
    graph.add_node("step", chain_step)
    graph.set_entry_point("step")
    graph.add_conditional_edges("step", route)
    # Kept open for the worker's life (the stack is held by ``run`` below).
    stack = contextlib.ExitStack()
    saver = stack.enter_context(PostgresSaver.from_conn_string(url))
    saver.setup()
    app = graph.compile(checkpointer=saver)

    def run(length: int, count: int, _open: contextlib.ExitStack = stack) -> None:
        for _ in range(count):
            config: Any = {"configurable": {"thread_id": str(uuid.uuid4())}, "recursion_limit": length + 10}
            out = app.invoke({"i": 0, "n": length}, config, durability="sync")
            if out["i"] != length:
                raise RuntimeError("langgraph: the chain did not run to its end")

    return run


WORKERS = {"countersign": countersign_worker, "dbos": dbos_worker, "langgraph": langgraph_worker}


def serve(engine: str, url: str) -> int:
    """The worker loop: "LENGTH COUNT" in, {"seconds": ...} out, until "quit"."""
    run = WORKERS[engine](url)
    print(json.dumps({"ready": engine}), flush=True)
    for line in sys.stdin:
        if line.strip() == "quit":
            break
        length, count = (int(part) for part in line.split())
        started = time.perf_counter()
        run(length, count)
        print(json.dumps({"seconds": time.perf_counter() - started}), flush=True)
    return 0


# -- the orchestrator ----------------------------------------------------------------------


class Worker:
    def __init__(self, engine: str, python: str, url: str) -> None:
        self.engine = engine
        env = {**os.environ, "PYTHONPATH": REPO_ROOT}
        self.proc = subprocess.Popen(
            [python, os.path.abspath(__file__), "--worker", engine, "--url", url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO_ROOT,
        )
        self._read()  # ready

    def _read(self) -> dict[str, Any]:
        out: IO[str] | None = self.proc.stdout
        assert out is not None
        while True:
            line = out.readline()
            if not line:
                raise RuntimeError(f"the {self.engine} worker stopped (exit {self.proc.poll()})")
            if line.startswith("{"):
                answer: dict[str, Any] = json.loads(line)
                return answer

    def steps_per_second(self, length: int, count: int) -> float:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{length} {count}\n")
        self.proc.stdin.flush()
        return length * count / float(self._read()["seconds"])

    def close(self) -> None:
        with contextlib.suppress(OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@contextlib.contextmanager
def scratch_databases(engines: tuple[str, ...]) -> Iterator[dict[str, str]]:
    sys.path.insert(0, REPO_ROOT)
    from bench.engine import _pg_admin, _pg_url, _requester_account
    from core.store.db import Database

    names = {e: f"cs_peers_{e}_{os.getpid()}" for e in engines}
    for name in names.values():
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        urls = {e: _pg_url(name) for e, name in names.items()}
        if "countersign" in urls:
            db = Database(urls["countersign"])
            db.upgrade()
            _requester_account(db)
            db.dispose()
        # The peers take a plain libpq URL.
        yield {
            e: url if e == "countersign" else url.replace("postgresql+psycopg://", "postgresql://")
            for e, url in urls.items()
        }
    finally:
        for name in names.values():
            _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def render(
    rates: dict[tuple[str, int], list[float]], lengths: tuple[int, ...], engines: tuple[str, ...]
) -> str:
    peers = [e for e in engines if e != "countersign"]
    header = f"{'steps':>5} " + " ".join(f"{e + ' steps/s':>22}" for e in engines)
    header += "".join(f" {'CS / ' + p:>16}" for p in peers) + "  goal (>= 1.0)"
    lines = [header]
    for length in lengths:
        medians = {e: statistics.median(rates[(e, length)]) for e in engines}
        row = f"{length:>5} " + " ".join(
            f"{medians[e]:>9.0f} ({min(rates[(e, length)]):>4.0f}-{max(rates[(e, length)]):<4.0f})"
            for e in engines
        )
        ratios = {p: medians["countersign"] / medians[p] for p in peers if medians[p]}
        row += "".join(f" {ratios.get(p, 0.0):>16.2f}" for p in peers)
        low = [p for p, r in ratios.items() if r < 1.0]
        row += "  " + ("ok" if not low else "LOW vs " + ", ".join(low))
        lines.append(row)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="2 rounds, fewer steps each")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 5; quick 2)")
    parser.add_argument("--lengths", default=",".join(map(str, LENGTHS)))
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument(
        "--peers-python",
        default=os.environ.get("PEERS_PYTHON", os.path.join(REPO_ROOT, ".venv-peers", "bin", "python")),
        help="a python with bench/requirements-peers.txt installed",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.worker:
        return serve(args.worker, args.url)
    lengths = tuple(int(n) for n in args.lengths.split(",") if n.strip())
    engines = tuple(e.strip() for e in args.engines.split(",") if e.strip())
    rounds = args.rounds or (2 if args.quick else 5)
    # Steps per measurement: at least this many, whole chains.
    steps_each = 200 if args.quick else 500
    if any(e != "countersign" for e in engines) and not os.path.exists(args.peers_python):
        parser.error(f"no python with the peers at {args.peers_python}: see bench/requirements-peers.txt")
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    rates: dict[tuple[str, int], list[float]] = {(e, n): [] for e in engines for n in lengths}
    with scratch_databases(engines) as urls:
        workers: dict[str, Worker] = {}
        try:
            for engine in engines:
                log(f"starting the {engine} worker...")
                python = sys.executable if engine == "countersign" else args.peers_python
                workers[engine] = Worker(engine, python, urls[engine])
                workers[engine].steps_per_second(10, 3)  # warm up: connections, caches
            for round_ in range(rounds):
                for length in lengths:
                    count = max(1, -(-steps_each // length))
                    order = engines[round_ % len(engines) :] + engines[: round_ % len(engines)]
                    for engine in order:
                        rate = workers[engine].steps_per_second(length, count)
                        rates[(engine, length)].append(rate)
                        log(
                            f"round {round_ + 1}/{rounds}: {engine}, {count} x {length} "
                            f"steps: {rate:.0f} steps/s"
                        )
        finally:
            for worker in workers.values():
                worker.close()
    print(render(rates, lengths, engines))
    print(
        f"\n(total {time.perf_counter() - started:.0f}s; median of {rounds} interleaved "
        f"rounds, min-max in brackets; each measurement >= {steps_each} steps as whole "
        "chains run one after another; same PostgreSQL server, one database per engine)"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({f"{e}/{n}": v for (e, n), v in rates.items()}, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
