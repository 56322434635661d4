"""Runner processes for the throughput benches, from this tree or from another revision.

``runner_processes(url, count, tree)`` starts ``count`` ``Runner``s, each a
``python`` process that imports ``core`` from ``tree`` (default: this
checkout), registers the no-op tool and runs until told to stop. With
``baseline_tree(rev)`` the same measurement runs the code of a git revision
("before") beside this checkout's ("after") on the same database, in the same
run: the Runner API they are started through is the same in both.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# What each runner process runs; ``core`` comes from the tree first on sys.path.
_RUNNER = """
import logging, sys, time
sys.path.insert(0, sys.argv[1])
logging.disable(logging.WARNING)
try:  # the layout with one folder per concern
    from core.base.logging import configure_logging
    from core.engine.executor import rehearsal_task
    from core.engine.tools import ToolRegistry
    from core.runtime import build_runner
    from core.store.db import Database
except ImportError:  # a revision from before it (--baseline)
    from core.db import Database
    from core.executor import rehearsal_task
    from core.logging import configure_logging
    from core.runner import Runner as build_runner
    from core.tools import ToolRegistry
configure_logging(level="WARNING")  # per-step INFO lines would be measured too

registry = ToolRegistry()

@registry.register("noop")
def noop():
    return {}

@registry.register("stamp")
def stamp():
    return {"t": time.time()}  # when a runner reached this step (resume latency)

db = Database(sys.argv[2])
# Notification delivery is another thread's work: the engine is measured alone.
runner = build_runner(db, registry=registry, task_handler=rehearsal_task,
                      dispatch_notifications=False)
runner.start()
print("ready", flush=True)
sys.stdin.readline()
runner.stop()
db.dispose()
"""


@contextlib.contextmanager
def baseline_tree(rev: str) -> Iterator[str]:
    """The files of git revision ``rev`` in a temporary directory (git archive: the
    repository and its worktrees are left as they are)."""
    directory = tempfile.mkdtemp(prefix="cs_bench_baseline_")
    try:
        archive = subprocess.run(
            ["git", "-C", REPO_ROOT, "archive", rev], check=True, capture_output=True, timeout=120
        ).stdout
        subprocess.run(["tar", "-x", "-C", directory], input=archive, check=True, timeout=120)
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def runner_processes(url: str, count: int, tree: str = REPO_ROOT) -> Iterator[None]:
    """``count`` runner processes on ``url``, running ``tree``'s code, until the block ends."""
    env = {**os.environ, "PYTHONPATH": tree}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _RUNNER, tree, url],
            cwd=tree,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"a runner process of {tree} did not start")
        yield
    finally:
        for proc in procs:
            with contextlib.suppress(OSError):
                assert proc.stdin is not None
                proc.stdin.write("\n")
                proc.stdin.flush()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
