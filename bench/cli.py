"""How fast the command line starts: CPU seconds of a whole ``python -m core`` process.

    python bench/cli.py               # 7 runs of each command, about a minute
    python bench/cli.py --runs 15     # more runs, steadier medians
    python bench/cli.py --json out.json
    python bench/cli.py --database postgresql://postgres@127.0.0.1/cs_bench_cli  # an empty one

Each command is run as a fresh interpreter, the way a person or a script runs
it (with its bytecode cached, as an installed package has it), and measured in
CPU time (user + system, from the kernel's accounting of the finished child),
not wall time: on a shared machine wall time mostly
measures the neighbours. The commands take turns (one run of each, then the
next round), and the median of the runs is printed with its ratio to
``python -c pass``, the interpreter's own start-up on this machine.

Commands: ``python -c pass``, ``python -m core --help``,
``python -m core workflow list --help``, and the listings ``approvals list``
(table and ``--json``) and ``workflow list --json`` against an SQLite file in a
temporary directory (or ``--database URL``, e.g. an empty PostgreSQL database)
with the demo loaded and run to its approvals (commands that really open the
database and answer). The aim for every one of them is
under 0.3 s of CPU (issue 15): a listing reads with Core queries, without the
ORM, Alembic or pydantic (tests/acceptance/core/test_cli_startup.py).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
AIM_SECONDS = 0.3

COMMANDS: list[tuple[str, list[str], float | None]] = [
    ("python -c pass", ["-c", "pass"], None),
    ("python -m core --help", ["-m", "core", "--help"], AIM_SECONDS),
    ("python -m core workflow list --help", ["-m", "core", "workflow", "list", "--help"], AIM_SECONDS),
    ("python -m core approvals list", ["-m", "core", "approvals", "list"], AIM_SECONDS),
    ("python -m core approvals list --json", ["-m", "core", "approvals", "list", "--json"], AIM_SECONDS),
    ("python -m core workflow list --json", ["-m", "core", "workflow", "list", "--json"], AIM_SECONDS),
]


def cpu_seconds(args: list[str], env: dict[str, str]) -> float:
    """User + system CPU time of one ``python ARGS`` process, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"python {' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def environment(db_url: str, scratch: str) -> dict[str, str]:
    """The commands' environment: ``db_url``, and bytecode written (under ``scratch``)
    by the untimed first run and read by the timed ones, as an installed Countersign
    has it, even where PYTHONDONTWRITEBYTECODE is set (compiling our modules from
    source on every run would add about 0.04 s to a listing)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("COUNTERSIGN_") and k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
    }
    env.update(
        DATABASE_URL=db_url,
        COUNTERSIGN_LOG_LEVEL="WARNING",
        COLUMNS="100",
        PYTHONPYCACHEPREFIX=f"{scratch}/pycache",
    )
    return env


def load_demo(env: dict[str, str]) -> None:
    for args in (["demo"], ["runner", "--until-idle"]):
        subprocess.run(
            [sys.executable, "-m", "core", *args], cwd=REPO_ROOT, env=env, capture_output=True, check=True
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=7, help="runs of each command (default 7)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument(
        "--database",
        help="an empty database to load the demo into and list, e.g. a PostgreSQL URL "
        "(default: an SQLite file in a temporary directory)",
    )
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="cs_bench_cli_") as scratch:
        env = environment(options.database or f"sqlite:///{scratch}/bench.db", scratch)
        load_demo(env)
        for _, args, _ in COMMANDS:  # once each untimed: .pyc files written, page cache warm
            cpu_seconds(args, env)
        samples: dict[str, list[float]] = {name: [] for name, _, _ in COMMANDS}
        for _ in range(options.runs):
            for name, args, _ in COMMANDS:
                samples[name].append(cpu_seconds(args, env))

    baseline = statistics.median(samples[COMMANDS[0][0]])
    print(
        f"CPU seconds (user+sys) per process, median of {options.runs} runs; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'command':<40} {'median':>7} {'min':>6} {'max':>6} {'x pass':>7}  aim")
    results = []
    for name, _, aim in COMMANDS:
        values = samples[name]
        median = statistics.median(values)
        verdict = "" if aim is None else (f"< {aim} s ok" if median < aim else f"< {aim} s HIGH")
        print(
            f"{name:<40} {median:7.3f} {min(values):6.3f} {max(values):6.3f} "
            f"{median / baseline:7.1f}  {verdict}"
        )
        results.append(
            {
                "command": name,
                "median": median,
                "min": min(values),
                "max": max(values),
                "ratio_to_python": median / baseline,
                "aim": aim,
                "samples": values,
            }
        )
    if options.json:
        options.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
