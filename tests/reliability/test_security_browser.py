"""Cross-site requests in a real browser (Chromium, Playwright): a page on another
origin cannot act as the signed-in approver, nor sign them in as someone else.

The gateway is served on one loopback port; the attacker's pages on another
port of the same host (the same *site*: a sibling subdomain behaves alike,
and the approver's ``SameSite=Lax`` cookies go along) and on ``localhost``
(another site). The victim signs in at ``/login`` as any approver would. The
attacker's pages then:

* post a Gradio event to ``/approve`` (fetch with credentials, JSON) and try
  to read the victim's inbox through Gradio's API (CORS);
* auto-submit a form to an email confirmation page, with a link token and
  even a valid CSRF token for it;
* auto-submit the ``/login`` form with the attacker's own credentials (login CSRF);
* sign the victim out: a form posted to ``/logout``, a credentialed fetch and
  an image pointing at it (logout CSRF).

None may record a vote, read the inbox or change who is signed in (the
session stays valid server side). Then the victim approves through the real
``/approve`` page (its script sends the CSRF token) and the vote is recorded,
as the victim, channel ``gradio``; and signs out through the real sign-out
page, which ends the session.

Agent-written Markdown (``[Approve here](https://evil.example/phish)``, an
image) is text in the browser too: on the Gradio page and on the real
dashboard (``streamlit run app.py``), no ``<a>`` or ``<img>`` points at the
attacker's hosts, and nothing was fetched from them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.approvals.engine import ApprovalEngine
from core.approvals.links import make_link_token
from core.identity.browser_sessions import SESSION_COOKIE, read_session_token
from core.identity.users import session_user
from core.store.db import Database
from gateway.browser import link_csrf_token
from tests.e2e.server import (
    UI_TIMEOUT_MS,
    VIEWPORT,
    start_dashboard,
    stop,
    wait_for_app,
)
from tests.e2e.server import sign_in as dashboard_sign_in
from tests.integration.gateway.conftest import BOSS
from tests.reliability.browser_sites import AttackerSite, attacker_site, gateway_site
from tests.reliability.report import AttackTally, record_attacks
from tests.reliability.security_setup import MALLORY, PASSWORD, PHISHING, parked, phishing_scene

ORIGINS = {"same site, another port": "127.0.0.1", "another site (localhost)": "localhost"}


@pytest.fixture(autouse=True)
def link_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNTERSIGN_LINK_SECRETS", "reliability-link-secret-0123456789")


@pytest.fixture
def sites(sqlite_db: Database) -> Iterator[tuple[str, AttackerSite]]:
    with gateway_site(sqlite_db) as gateway, attacker_site() as attacker:
        yield gateway, attacker


@pytest.fixture
def victim(chromium: Any, sites: tuple[str, AttackerSite]) -> Iterator[Any]:
    """A browser context of its own (its own cookies), as the victim."""
    context = chromium.new_context(viewport=VIEWPORT)
    context.set_default_timeout(UI_TIMEOUT_MS)
    try:
        yield context
    finally:
        context.close()


def sign_in(page: Any, gateway: str, email: str) -> None:
    page.goto(f"{gateway}/login?next=/approve/")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/approve/.*"))


def signed_in_as(context: Any) -> str | None:
    cookies = {c["name"]: c["value"] for c in context.cookies() if c["domain"] == "127.0.0.1"}
    return read_session_token(cookies.get(SESSION_COOKIE))


def session_alive(context: Any, db: Database) -> bool:
    """The victim's session cookie is still there and still accepted server side."""
    cookies = {c["name"]: c["value"] for c in context.cookies() if c["domain"] == "127.0.0.1"}
    return session_user(db, cookies.get(SESSION_COOKIE)) is not None


def logout_page(gateway: str) -> str:
    """Every way another page can reach ``/logout``: an image, a fetch, a posted form."""
    return f"""<!doctype html><title>news</title><img src="{gateway}/logout" alt="">
    <form id="f" method="post" action="{gateway}/logout"></form><pre id="out">running</pre>
    <script>
    fetch("{gateway}/logout", {{method: "POST", credentials: "include", mode: "no-cors"}})
      .catch(() => null)
      .then(() => {{ document.getElementById("out").textContent = "sent";
                     document.getElementById("f").submit(); }});
    </script>"""


def votes(db: Database, approval_id: str) -> int:
    return len(ApprovalEngine(db).responses(approval_id))


def fetch_page(gateway: str, approval_id: str) -> str:
    """Gradio's API as the attacker's script calls it: JSON, with the victim's cookies."""
    event = json.dumps({"data": [approval_id, "{}", "", "", None]})
    return f"""<!doctype html><title>cat pictures</title><pre id="out">running</pre><script>
    async function attempt(path, body) {{
      try {{
        const answer = await fetch("{gateway}" + path, {{method: "POST", credentials: "include",
          headers: {{"Content-Type": "application/json"}}, body: body}});
        return answer.status + " " + (await answer.text());
      }} catch (error) {{ return "blocked: " + error; }}
    }}
    (async () => {{
      const approved = await attempt("/approve/gradio_api/run/approve", {json.dumps(event)});
      const inbox = await attempt("/approve/gradio_api/run/inbox", '{{"data": []}}');
      document.getElementById("out").textContent = JSON.stringify({{approved, inbox}});
    }})();
    </script>"""


def form_page(action: str, fields: dict[str, str]) -> str:
    inputs = "".join(f'<input type="hidden" name="{k}" value="{v}">' for k, v in fields.items())
    return (
        f'<!doctype html><title>win a prize</title><form id="f" method="post" '
        f'action="{action}">{inputs}</form><script>document.getElementById("f").submit()'
        "</script>"
    )


def test_cross_site_requests_from_another_origin_are_refused(
    request: pytest.FixtureRequest, sqlite_db: Database, sites: tuple[str, AttackerSite], victim: Any
) -> None:
    tally = AttackTally("Cross-site: Gradio, email page, login and logout CSRF from another origin")
    gateway, attacker = sites
    _, approval = parked(sqlite_db, {"title": PHISHING})
    _, mailed = parked(sqlite_db)
    page = victim.new_page()
    sign_in(page, gateway, BOSS)
    assert signed_in_as(victim) == BOSS

    link = make_link_token(mailed.id, BOSS, "approve")
    attacker.pages["/gradio"] = fetch_page(gateway, approval.id)
    attacker.pages["/email"] = form_page(
        f"{gateway}/email/confirm", {"token": link, "csrf_token": link_csrf_token(link)}
    )
    attacker.pages["/login"] = form_page(
        f"{gateway}/login", {"email": MALLORY, "password": PASSWORD, "next": "/approve/"}
    )
    attacker.pages["/logout"] = logout_page(gateway)

    for label, host in ORIGINS.items():
        attack = victim.new_page()
        attack.goto(attacker.url("/gradio", host))
        attack.wait_for_function("document.getElementById('out').textContent !== 'running'")
        outcome = json.loads(attack.text_content("#out") or "{}")
        tally.check(
            votes(sqlite_db, approval.id) == 0 and "Recorded" not in outcome["approved"],
            f"Gradio approve via fetch, {label}",
        )
        tally.check(
            BOSS not in outcome["inbox"] and approval.id not in outcome["inbox"],
            f"Gradio inbox read via CORS, {label}",
        )
        attack.close()

        attack = victim.new_page()
        attack.goto(attacker.url("/email", host))
        attack.wait_for_url(lambda url: url.startswith(gateway))  # the form went to the gateway
        tally.check(
            votes(sqlite_db, mailed.id) == 0 and "not recorded" in attack.content(),
            f"email confirmation form post, {label}",
        )
        attack.close()

        attack = victim.new_page()
        attack.goto(attacker.url("/login", host))
        attack.wait_for_url(lambda url: url.startswith(gateway))
        tally.check(signed_in_as(victim) == BOSS, f"login CSRF as the attacker, {label}")
        attack.close()

        attack = victim.new_page()
        attack.goto(attacker.url("/logout", host))
        attack.wait_for_url(lambda url: url.startswith(gateway))  # the form went to the gateway
        tally.check(session_alive(victim, sqlite_db), f"logout CSRF (image, fetch, form), {label}")
        attack.close()

    record_attacks(request, tally)
    assert tally.refused == tally.attempts, tally.failures

    # The approver's own page still works: its script sends the CSRF token.
    shown = AttackTally("Agent Markdown (links, images) in titles: Gradio page in a browser")
    page.goto(f"{gateway}/approve/")
    page.locator("#cs-choice input").click()
    page.get_by_role("option", name=re.compile(approval.id[:8])).click()
    details = page.locator("#cs-details")
    details.get_by_text("Approve here").wait_for()
    # The agent's link and image are text on the page, not elements.
    shown.check(
        details.locator("a").count() == 0
        and details.locator("img").count() == 0
        and "evil.example/phish" in (details.text_content() or ""),
        "phishing title on the /approve page",
    )
    # Once the form is drawn for this request (a click on an earlier drawing is refused as not ready).
    page.locator(f".cs-form-for-{approval.id}").first.wait_for(state="attached")
    page.locator("#cs-approve").click()
    page.locator("#cs-result").get_by_text("Recorded").wait_for()
    [vote] = ApprovalEngine(sqlite_db).responses(approval.id)
    assert (vote.approver, vote.channel) == (BOSS, "gradio")
    record_attacks(request, shown)
    assert shown.refused == shown.attempts, shown.failures
    # Signing out from the gateway's own page ends the session (server side too).
    page.goto(f"{gateway}/logout")
    page.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/login.*"))
    assert not session_alive(victim, sqlite_db)


ATTACKER_ELEMENTS = ", ".join(
    f'a[href*="{host}"], img[src*="{host}"], [srcset*="{host}"]'
    for host in ("evil.example", "attacker.example")
)


def test_agent_markdown_is_text_in_the_dashboard_in_a_browser(
    request: pytest.FixtureRequest,
    sqlite_url: str,
    tmp_path: Path,
    victim: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tally = AttackTally("Agent Markdown (links, images) in every field: dashboard in a browser")
    for name in ("COUNTERSIGN_MODEL_PROVIDER", "COUNTERSIGN_MODEL_ID"):
        monkeypatch.delenv(name, raising=False)
    db = Database(sqlite_url)
    approval, workflow_id, chat_id = phishing_scene(db)
    db.dispose()
    app = start_dashboard(sqlite_url, tmp_path, extra_env={"COUNTERSIGN_DEMO": "off", "RUNNER": "external"})
    fetched: list[str] = []
    victim.on(
        "request",
        lambda r: fetched.append(r.url) if "evil.example" in r.url or "attacker.example" in r.url else None,
    )
    try:
        page = victim.new_page()
        page.goto(f"{app.url}/inbox")
        wait_for_app(page)
        dashboard_sign_in(page, BOSS, PASSWORD)
        for what, path in (
            ("inbox", "/inbox"),
            ("approval page", f"/approval?approval={approval.id}"),
            ("workflow page", f"/workflow?workflow={workflow_id}"),
            ("sessions page", f"/sessions?session={chat_id}"),
        ):
            page.goto(f"{app.url}{path}")
            wait_for_app(page)
            page.get_by_text("Approve here").filter(visible=True).first.wait_for()
            found = page.locator(ATTACKER_ELEMENTS).count()
            tally.check(found == 0 and not fetched, f"{what}: {found} elements, fetched {fetched}")
    finally:
        stop(app.process)
    record_attacks(request, tally)
    assert tally.refused == tally.attempts, tally.failures
