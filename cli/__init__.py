"""The command line (``python -m core``): typer commands over core, one module per group.

Help and usage errors are printed by click's plain formatter: typer's rich
formatter imports rich and markdown-it, about 0.2 s of CPU before the first
line of ``--help`` on a 2-core machine. ``TYPER_USE_RICH=1`` brings it back.
"""

import os

# Read by typer when it is first imported, so before any cli module imports it.
os.environ.setdefault("TYPER_USE_RICH", "0")

__all__: list[str] = []
