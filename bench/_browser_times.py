"""Every dashboard page's time in Chromium, against a bare Streamlit page.

What a person waits for: `streamlit run app.py` over a fresh SQLite demo, and a
bare page (``st.title`` only) served by a second `streamlit run`, both on
loopback; Debian's Chromium under Playwright, signed in as the demo admin. A page
has settled when the app is connected, its script has finished, no skeleton is
left, its ``h1`` is the page's and every shown chart and dataframe is drawn (a
Plotly chart's SVG, a Vega chart's or a dataframe's canvas). Measured per page:

* first: its first visit in a new session on the freshly started server (the
  server imports the page's modules, the browser loads the page's code); the
  Inbox's is a second (signing in showed it);
* cold: a full load in a new browser context (nothing cached), against a cold
  load of the bare page;
* load: a full load (page.goto) in the signed-in tab, and nav: a click on the
  link to it (the sidebar's, or the approval's and its workflow's links), each
  alternated with a full load of the bare page, over several rounds.

Where the time goes (per full load): until the websocket opened (the page's
HTML and Streamlit's JavaScript), from the rerun request to the last message
(the server's script run, streamed), and from the last message to settled
(drawing, lazily loaded element code, Plotly).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
ADMIN = "admin@example.com"
AIM_SECONDS = 1.0
BARE = "import streamlit as st\n\nst.title('Bare page')\n"
BARE_HEADING = "Bare page"
SETTLE_TIMEOUT_MS = 90_000
# Recorded in the page from its first script on: the websocket's opening, the first
# frame sent (the rerun request), the messages received and their bytes.
PROBE_JS = """(() => {
  const rec = window.__csProbe = {t0: 0, open: null, sent: null, last: null, msgs: 0, bytes: 0, long: 0,
    reset() {
      Object.assign(this, {t0: performance.now(), sent: null, last: null, msgs: 0, bytes: 0, long: 0});
    },
    add(entries) { for (const e of entries) if (e.startTime >= this.t0) this.long += e.duration; },
    flush() { if (this.observer) this.add(this.observer.takeRecords()); return this; }};
  try {
    rec.observer = new PerformanceObserver((list) => rec.add(list.getEntries()));
    rec.observer.observe({type: 'longtask'});
  } catch (e) { rec.observer = null; }
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('open', () => { rec.open ??= performance.now(); });
      this.addEventListener('message', (e) => {
        rec.msgs += 1; rec.last = performance.now();
        rec.bytes += e.data.byteLength ?? e.data.size ?? e.data.length ?? 0;
      });
    }
    send(data) { rec.sent ??= performance.now(); return super.send(data); }
  };
})();"""
SETTLED_JS = """(heading) => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-connection-state') !== 'CONNECTED'
      || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  if (document.querySelector('[data-testid="stSkeleton"]')) return false;
  const main = document.querySelector('[data-testid="stMain"]') || document;
  if (![...main.querySelectorAll('h1')].some((h) => h.textContent.trim() === heading)) return false;
  const shown = (s) => [...main.querySelectorAll(s)].filter((e) => e.getClientRects().length);
  if (shown('[data-testid="stPlotlyChart"]').some((c) => !c.querySelector('.main-svg'))) return false;
  if (shown('[data-testid="stDataFrame"]').some((d) => !d.querySelector('canvas'))) return false;
  if (shown('[data-testid="stVegaLiteChart"]').some((c) => !c.querySelector('canvas, svg'))) return false;
  return performance.now();
}"""
# What the page loaded since ``since`` (ms): JavaScript run (decoded bytes, cached or
# not), bytes fetched over the network (zero for a cached file), and the DOM's size.
RESOURCES_JS = """(since) => {
  const got = performance.getEntriesByType('resource').filter((r) => r.startTime >= since);
  const js = got.filter((r) => r.name.split('?')[0].endsWith('.js'));
  return {js: js.reduce((n, r) => n + r.decodedBodySize, 0),
          fetched: got.reduce((n, r) => n + r.transferSize, 0),
          nodes: document.getElementsByTagName('*').length, probe: window.__csProbe.flush()};
}"""


@dataclass(frozen=True)
class Target:
    name: str
    path: str  # the deep link: URL path and query
    heading: str  # the h1 it draws
    link: str  # CSS selector of the link opening it in the app
    via: str | None = None  # the page (path) that link is on; None: the sidebar's, anywhere
    via_heading: str = ""


@dataclass
class Sample:
    seconds: float
    boot_ms: float = 0.0  # until the websocket opened (full loads)
    server_ms: float = 0.0  # the rerun request sent to the last message received
    tail_ms: float = 0.0  # the last message to settled
    ws_kb: float = 0.0
    ws_msgs: int = 0
    js_kb: float = 0.0
    fetched_kb: float = 0.0
    long_ms: float = 0.0  # the main thread's long tasks (50 ms or more: Long Tasks API)
    nodes: int = 0


@dataclass
class Times:
    load: list[Sample] = field(default_factory=list)
    nav: list[Sample] = field(default_factory=list)
    bare: list[Sample] = field(default_factory=list)
    first: Sample | None = None
    first_how: str = "nav"
    cold: Sample | None = None
    cold_bare: Sample | None = None


def targets(db_url: str) -> list[Target]:
    """The admin's pages, in the order measured; the approval is a waiting request
    (its deep link), the workflow that request's (a timeline)."""
    from core.approvals import inbox_views
    from core.engine import workflows as ops
    from core.store.db import Database

    db = Database(db_url)
    try:
        [approval, *_] = inbox_views.inbox_page(db, ADMIN, inbox_views.InboxQuery(view="all")).rows
        assert approval.workflow_id, approval
        workflow = ops.get_workflow(db, approval.workflow_id)
    finally:
        db.dispose()
    sidebar = [
        ("inbox", "Inbox"),
        ("workflows", "Workflows"),
        ("monitor", "Monitor"),
        ("logs", "Execution logs"),
        ("agents", "Agents"),
        ("sessions", "Sessions"),
        ("policies", "Policies"),
        ("settings", "Settings"),
        ("tenants", "Tenants"),
    ]
    main = '[data-testid="stMain"]'
    return [
        *(Target(n, f"/{n}", h, f'[data-testid="stSidebarNav"] a[href$="/{n}"]') for n, h in sidebar),
        Target(
            "approval",
            f"/approval?approval={approval.id}",
            approval.title,
            f'{main} a[href*="approval={approval.id}"]',
            via=f"/workflow?workflow={workflow.id}",  # its "Open the request"
            via_heading=workflow.name,
        ),
        Target(
            "workflow",
            f"/workflow?workflow={workflow.id}",
            workflow.name,
            f'{main} a[href*="workflow={workflow.id}"]',
            via=f"/approval?approval={approval.id}",  # its "Workflow: <name>"
            via_heading=approval.title,
        ),
    ]


class Tab:
    """One browser page, timing loads and clicks until settled."""

    def __init__(self, context: Any, base_url: str) -> None:
        self.page = context.new_page()
        self.base_url = base_url
        self.at: str | None = None

    def _timed(self, act: Callable[[], None], heading: str, full: bool) -> Sample:
        since = (
            0.0 if full else float(self.page.evaluate("() => { __csProbe.reset(); return __csProbe.t0; }"))
        )
        started = time.perf_counter()
        act()
        settled = self.page.wait_for_function(SETTLED_JS, arg=heading, timeout=SETTLE_TIMEOUT_MS).json_value()
        seconds = time.perf_counter() - started
        got = self.page.evaluate(RESOURCES_JS, since)
        probe = got["probe"]
        request = probe["sent"] if probe["sent"] is not None else since
        last = probe["last"] if probe["last"] is not None else settled
        return Sample(
            seconds,
            boot_ms=(probe["open"] or 0.0) if full else 0.0,
            server_ms=max(0.0, last - request),
            tail_ms=max(0.0, settled - last),
            ws_kb=probe["bytes"] / 1024,
            js_kb=got["js"] / 1024,
            fetched_kb=got["fetched"] / 1024,
            ws_msgs=int(probe["msgs"]),
            long_ms=probe["long"],
            nodes=int(got["nodes"]),
        )

    def load(self, path: str, heading: str) -> Sample:
        sample = self._timed(lambda: self.page.goto(self.base_url + path, wait_until="commit"), heading, True)
        self.at = path
        return sample

    def click(self, target: Target) -> Sample:
        if target.via is not None and self.at != target.via:
            self.load(target.via, target.via_heading)  # not timed: be on the page holding the link
        link = self.page.locator(target.link).first
        sample = self._timed(link.click, target.heading, False)
        self.at = target.path
        return sample


@contextmanager
def served(script: Path, port: int, workdir: Path, env: dict[str, str]) -> Iterator[str]:
    """`streamlit run script` on a loopback port (as tests/e2e/server.py starts app.py)."""
    from tests.e2e.server import stop, wait_healthy

    log_path = workdir / f"streamlit-{port}.log"
    command = [sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port)]
    command += ["--server.address", "127.0.0.1", "--server.headless", "true"]
    command += ["--server.fileWatcherType", "none", "--server.runOnSave", "false"]
    command += ["--browser.gatherUsageStats", "false", "--global.developmentMode", "false"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, process, log_path)
        yield url
    finally:
        stop(process)


def measure(
    app_url: str, bare_url: str, pages: list[Target], rounds: int, deadline: float | None, chromium: Any
) -> tuple[dict[str, Times], int]:
    """Each page's samples by name, and the number of rounds run (no round is begun that
    would end after ``deadline``, a time.monotonic(), if given)."""
    from tests.e2e.server import UI_TIMEOUT_MS, VIEWPORT, sign_in, wait_for_app

    def context(**extra: Any) -> Any:
        made = chromium.new_context(viewport=VIEWPORT, **extra)
        made.set_default_timeout(UI_TIMEOUT_MS)
        made.add_init_script(PROBE_JS)
        return made

    times = {target.name: Times() for target in pages}
    by_name = {target.name: target for target in pages}
    signed_in = context()
    app = Tab(signed_in, app_url)
    app.page.goto(app_url + "/inbox")
    wait_for_app(app.page)
    sign_in(app.page, ADMIN)
    app.at = "/inbox"
    # First visits, in the order a person might take; the approval by its deep link
    # (a notification's), its workflow by the link on it, the Inbox last (signing in showed it).
    order = [t.name for t in pages if t.via is None and t.name != "inbox"] + ["approval", "workflow", "inbox"]
    for name in order:
        target = by_name[name]
        if name == "approval":
            times[name].first, times[name].first_how = app.load(target.path, target.heading), "load"
        else:
            times[name].first = app.click(target)
    cookies = signed_in.storage_state()
    for target in pages:  # nothing cached: a new browser context each, signed in by its cookie
        for into, base, path, heading, state in (
            ("cold_bare", bare_url, "/", BARE_HEADING, None),
            ("cold", app_url, target.path, target.heading, cookies),
        ):
            fresh = context(storage_state=state)
            try:
                setattr(times[target.name], into, Tab(fresh, base).load(path, heading))
            finally:
                fresh.close()
    bare_context = context()
    bare = Tab(bare_context, bare_url)
    bare.load("/", BARE_HEADING)
    if app.at == pages[0].path:  # each round's first click comes from the last page, as later ones do
        app.load(pages[-1].path, pages[-1].heading)
    started, ran = time.monotonic(), 0
    while ran < rounds:
        for target in pages:
            got = times[target.name]
            if target.via is not None and app.at != target.via:
                app.load(target.via, target.via_heading)
            got.bare.append(bare.load("/", BARE_HEADING))
            got.nav.append(app.click(target))
            got.bare.append(bare.load("/", BARE_HEADING))
            got.load.append(app.load(target.path, target.heading))
        ran += 1
        per_round = (time.monotonic() - started) / ran
        if deadline is not None and time.monotonic() + per_round > deadline:
            break
    bare_context.close()
    signed_in.close()
    return times, ran


def _median(samples: list[Sample], attr: str = "seconds") -> float:
    return statistics.median(getattr(s, attr) for s in samples)


def _spread(samples: list[Sample]) -> str:
    values = [s.seconds for s in samples]
    return f"{statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f})"


def report(times: dict[str, Times]) -> bool:
    """Print the tables; True if every page's median load and navigation are under the aim."""
    fine = True
    aim = f"aim < {AIM_SECONDS:g} s"
    print(f"  {'page':<10} {'how':<5} {'median (min-max)':>22} {'bare':>8} {'ratio':>7}  {aim}")
    for name, got in times.items():
        bare = _median(got.bare)
        for how, samples in (("load", got.load), ("nav", got.nav)):
            took = _median(samples)
            fine = fine and took < AIM_SECONDS
            verdict = "ok" if took < AIM_SECONDS else "SLOW"
            label = name if how == "load" else ""
            ratio = f"{took / bare:.1f}x"
            print(f"  {label:<10} {how:<5} {_spread(samples):>22} {bare:>6.2f} s {ratio:>7}  {verdict}")
    print("\n  First visits: 'first' in a new session on the fresh server (nav, or load: the deep")
    print("  link); 'cold' a full load in a new browser context (empty cache) against the bare page's.")
    print(f"  {'page':<10} {'first':>12} {'cold':>8} {'cold bare':>10} {'ratio':>7}")
    for name, got in times.items():
        assert got.first is not None and got.cold is not None and got.cold_bare is not None
        first = f"{got.first.seconds:.2f} s {got.first_how}"
        cold, cold_bare = got.cold.seconds, got.cold_bare.seconds
        print(f"  {name:<10} {first:>12} {cold:>6.2f} s {cold_bare:>8.2f} s {cold / cold_bare:>6.1f}x")
    print("\n  Where the time goes (medians; first, cold: one each), in ms but for sizes: boot until")
    print("  the websocket opened; server from the rerun request to the last message; tail from it")
    print("  to settled; long: the main thread's long tasks (>= 50 ms) in all; JS KB run (decoded),")
    print("  fetched over the network (not from the cache)")
    fields = (
        "boot_ms",
        "server_ms",
        "tail_ms",
        "long_ms",
        "ws_kb",
        "ws_msgs",
        "js_kb",
        "fetched_kb",
        "nodes",
    )
    head = ("boot", "server", "tail", "long", "ws KB", "msgs", "JS KB", "fetch KB", "nodes")
    print(f"  {'page':<15}" + "".join(f"{h:>9}" for h in head))
    rows: list[tuple[str, list[Sample]]] = [("bare page", [s for t in times.values() for s in t.bare])]
    for name, got in times.items():
        rows += [(name, got.load), ("  nav", got.nav)]
        rows += [(f"  first {got.first_how}", [got.first] if got.first else [])]
        rows += [("  cold", [got.cold] if got.cold else [])]
    for label, samples in rows:
        cells = [f"{_median(samples, f):.0f}" for f in fields]
        if label.endswith("nav"):
            cells[0] = "-"  # the page was not loaded
        print(f"  {label:<15}" + "".join(f"{c:>9}" for c in cells))
    return fine


def run(rounds: int | None, budget_s: float, workdir: Path) -> bool:
    """Start both servers over a fresh demo, measure and print; True if every page is under
    the aim. Without ``rounds``, up to 5 rounds while the whole run stays within ``budget_s``."""
    import os

    from playwright.sync_api import sync_playwright

    from core.base.logging import configure_logging
    from core.runtime import load_tools
    from core.store.db import Database
    from tests.e2e.server import free_port, launch_chromium, prepare_demo

    started = time.monotonic()
    configure_logging(level="WARNING")  # not the demo's steps, one line each
    load_tools()  # the demo's flows name the demo tools
    db_url = f"sqlite:///{workdir / 'demo.db'}"
    db = Database(db_url)
    db.upgrade()
    db.dispose()
    prepare_demo(db_url)
    pages = targets(db_url)
    (workdir / "bare.py").write_text(BARE)
    # The dashboard as `streamlit run app.py` starts it: its own background runner.
    env = {k: v for k, v in os.environ.items() if k != "RUNNER"}
    env.update(DATABASE_URL=db_url, PYTHONUNBUFFERED="1")
    with ExitStack() as stack:
        app_url = stack.enter_context(served(REPO_ROOT / "app.py", free_port(), workdir, env))
        bare_url = stack.enter_context(served(workdir / "bare.py", free_port(), workdir, env))
        playwright = stack.enter_context(sync_playwright())
        chromium = launch_chromium(playwright)
        stack.callback(chromium.close)
        deadline = None if rounds is not None else started + budget_s
        times, ran = measure(app_url, bare_url, pages, rounds or 5, deadline, chromium)
    print(f"  {ran} rounds, {time.monotonic() - started:.0f} s in all; median (min-max) of {ran} each")
    return report(times)
