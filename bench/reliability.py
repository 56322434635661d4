"""A longer fault-injection run than CI's: more workflows, more runner kills.

Runs tests/reliability/test_fault_injection.py (three ``python -m core
runner`` processes SIGKILLed at random and replaced, the SMTP stand-in down
for its first 10 s, the Slack stand-in down from 4 s to 16 s, an approver
answering from the first email or Slack message) with the sizes given here,
and prints the same table: workflows lost, stuck, steps run twice without
their idempotency key, notifications lost, all of which must be 0.

    python bench/reliability.py                       # 500 workflows, 40 kills, PostgreSQL
    python bench/reliability.py --workflows 200 --kills 20 --backend sqlite
    python bench/reliability.py --seed 612239         # replay a run's random choices
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST = "tests/reliability/test_fault_injection.py"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workflows", type=int, default=500)
    parser.add_argument("--kills", type=int, default=40, help="runner SIGKILLs at most")
    parser.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument(
        "--settle", type=float, default=180.0, help="seconds allowed to finish everything after the last kill"
    )
    parser.add_argument("--seed", type=int, default=None, help="the random seed (printed by every run)")
    args = parser.parse_args(argv)
    env = {
        **os.environ,
        "COUNTERSIGN_CHAOS_WORKFLOWS": str(args.workflows),
        "COUNTERSIGN_CHAOS_KILLS": str(args.kills),
        "COUNTERSIGN_CHAOS_SETTLE_SECONDS": str(args.settle),
    }
    if args.seed is not None:
        env["COUNTERSIGN_CHAOS_SEED"] = str(args.seed)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST, "-k", args.backend]
    return subprocess.call(command, cwd=ROOT, env=env)


if __name__ == "__main__":
    raise SystemExit(main())
