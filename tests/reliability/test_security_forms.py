"""The gateway's same-origin and CSRF checks, header by header (no browser): every
state-changing request from a browser must come from the gateway's own page.

For ``/login``, an email confirmation page and a Gradio event: a request a
browser would label ``Sec-Fetch-Site: cross-site`` or ``same-site``, one with
another ``Origin`` (or ``null``), one whose ``Referer`` is another origin,
and one without the page's CSRF token (or with another session's, or
forged) are refused and change nothing. Gradio's answers carry no
``Access-Control-Allow-*`` header for another origin, preflights included.
Cookies are ``Secure`` over HTTPS (the request's scheme, or an ``https``
``COUNTERSIGN_GATEWAY_URL``) and never over plain HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from core.approvals.engine import ApprovalEngine
from core.approvals.links import make_link_token
from core.base.config import get_settings
from core.identity.browser_sessions import SESSION_COOKIE, read_session_token
from core.store.db import Database
from gateway.app import create_app
from gateway.browser import CSRF_COOKIE, CSRF_FIELD, CSRF_HEADER, link_csrf_token
from tests.helpers.browser import form_csrf, sign_in
from tests.integration.gateway.conftest import BOSS
from tests.reliability.report import AttackTally, record_attacks
from tests.reliability.security_setup import MALLORY, PASSWORD, parked

GATEWAY = "http://testserver"
FOREIGN = {
    "Sec-Fetch-Site: cross-site": {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
    "Sec-Fetch-Site: same-site": {"Sec-Fetch-Site": "same-site", "Origin": "http://approvals.testserver"},
    "Origin of another port": {"Origin": "http://testserver:8001"},
    "Origin: null (sandboxed frame)": {"Origin": "null"},
    "Referer of another origin": {"Referer": "http://evil.example/page"},
}


@pytest.fixture(autouse=True)
def link_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNTERSIGN_LINK_SECRETS", "reliability-link-secret-0123456789")


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(db)) as test_client:
        yield test_client


def login_form(client: TestClient) -> str:
    return form_csrf(client.get("/login").text)


def finish(request: pytest.FixtureRequest, tally: AttackTally) -> None:
    record_attacks(request, tally)
    assert tally.attempts > 0
    assert tally.refused == tally.attempts, tally.failures


def test_login_csrf_is_refused(request: pytest.FixtureRequest, db: Database, client: TestClient) -> None:
    tally = AttackTally("Login CSRF: /login posted from elsewhere or without its token")
    parked(db)  # the accounts

    def signed_in() -> str | None:
        return read_session_token(client.cookies.get(SESSION_COOKIE))

    for what, headers in FOREIGN.items():
        token = login_form(client)
        response = client.post(
            "/login",
            headers=headers,
            follow_redirects=False,
            data={"email": MALLORY, "password": PASSWORD, CSRF_FIELD: token},
        )
        tally.check(response.status_code == 403 and signed_in() is None, what)
    login_form(client)
    no_token = client.post("/login", data={"email": MALLORY, "password": PASSWORD}, follow_redirects=False)
    tally.check(no_token.status_code == 403 and signed_in() is None, "no CSRF token")
    # The attacker's own form and nonce: their token, made for another browser's nonce.
    with TestClient(client.app) as attacker:
        theirs = login_form(attacker)
    login_form(client)
    foreign = client.post(
        "/login", data={"email": MALLORY, "password": PASSWORD, CSRF_FIELD: theirs}, follow_redirects=False
    )
    tally.check(foreign.status_code == 403 and signed_in() is None, "another browser's token")
    done = sign_in(client, BOSS, PASSWORD, follow_redirects=False)
    assert done.status_code == 303 and signed_in() == BOSS
    finish(request, tally)


def test_email_pages_refuse_other_origins_and_missing_tokens(
    request: pytest.FixtureRequest, db: Database, client: TestClient
) -> None:
    tally = AttackTally("Email confirmation page: other origins, missing or foreign CSRF token")
    _, approval = parked(db)
    token = make_link_token(approval.id, BOSS, "approve")
    good = {"token": token, CSRF_FIELD: link_csrf_token(token)}
    for what, headers in FOREIGN.items():
        response = client.post("/email/confirm", data=good, headers=headers)
        tally.check(
            response.status_code == 403
            and "not recorded" in response.text
            and not ApprovalEngine(db).responses(approval.id),
            what,
        )
    other = make_link_token(approval.id, BOSS, "approve")
    for what, form in {
        "no CSRF token": {"token": token},
        "another link's CSRF token": {"token": token, CSRF_FIELD: link_csrf_token(other)},
        "a forged CSRF token": {"token": token, CSRF_FIELD: "eyJmb28iOjF9.x.y"},
    }.items():
        response = client.post("/email/confirm", data=form)
        tally.check(response.status_code == 403 and not ApprovalEngine(db).responses(approval.id), what)
    page = client.get("/email/confirm", params={"token": token})
    done = client.post(
        "/email/confirm",
        data={"token": token, CSRF_FIELD: form_csrf(page.text)},
        headers={"Origin": GATEWAY, "Sec-Fetch-Site": "same-origin"},
    )
    assert done.status_code == 200 and "You approved" in done.text, done.text
    finish(request, tally)


def test_gradio_refuses_other_origins_tokens_and_cross_origin_reads(
    request: pytest.FixtureRequest, db: Database, client: TestClient
) -> None:
    tally = AttackTally("Gradio /approve: other origins, CSRF token, CORS reads")
    _, approval = parked(db)
    sign_in(client, BOSS, PASSWORD)
    run = "/approve/gradio_api/run"
    event = {"data": [approval.id, "{}", "", "", None]}
    for what, headers in FOREIGN.items():
        response = client.post(f"{run}/approve", json=event, headers=headers)
        tally.check(response.status_code == 403 and not ApprovalEngine(db).responses(approval.id), what)
    own = client.headers.pop(CSRF_HEADER)
    for what, headers in {
        "no CSRF header": {},
        "another session's token": {CSRF_HEADER: own[:-4] + "AAAA"},
    }.items():
        response = client.post(f"{run}/approve", json=event, headers=headers)
        tally.check(response.status_code == 403 and not ApprovalEngine(db).responses(approval.id), what)
    for origin in ("http://127.0.0.1:9999", "http://localhost:3000", "null", "https://evil.example"):
        read = client.get("/approve/config", headers={"Origin": origin})
        preflight = client.options(
            f"{run}/inbox",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        allowed = [
            k for r in (read, preflight) for k in r.headers if k.lower().startswith("access-control-allow")
        ]
        tally.check(not allowed, f"CORS for {origin}")
    fetched = client.post(
        f"{run}/inbox",
        json={"data": []},
        headers={CSRF_HEADER: own, "Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "cors"},
    )
    tally.check(fetched.status_code == 403 and BOSS not in fetched.text, "inbox read, same-site")
    done = client.post(
        f"{run}/approve", json=event, headers={CSRF_HEADER: own, "Sec-Fetch-Site": "same-origin"}
    )
    assert done.status_code == 200 and done.json()["data"][0].startswith("**Recorded."), done.text
    finish(request, tally)


@pytest.mark.parametrize("https", ["request scheme", "COUNTERSIGN_GATEWAY_URL"])
def test_cookies_are_secure_over_https_only(
    db: Database, monkeypatch: pytest.MonkeyPatch, https: str
) -> None:
    parked(db)
    app = create_app(db)
    with TestClient(app) as plain:
        sign_in(plain, BOSS, PASSWORD, follow_redirects=False)
        for cookie in plain.cookies.jar:
            assert not cookie.secure, cookie.name
    if https == "COUNTERSIGN_GATEWAY_URL":
        monkeypatch.setenv("COUNTERSIGN_GATEWAY_URL", "https://approvals.example")
        get_settings.cache_clear()
        base = GATEWAY
    else:
        base = "https://testserver"
    try:
        with TestClient(app, base_url=base) as secure:
            form = secure.get("/login")
            nonce = form.headers["set-cookie"]
            assert "secure" in nonce.lower()
            # Sent by hand: behind a proxy the browser speaks HTTPS even if the app sees HTTP.
            response = secure.post(
                "/login",
                data={"email": BOSS, "password": PASSWORD, CSRF_FIELD: form_csrf(form.text)},
                headers={"Origin": base, "Cookie": nonce.split(";")[0]},
                follow_redirects=False,
            )
            assert response.status_code == 303, response.text
            cookies = response.headers.get_list("set-cookie")
            for name in (SESSION_COOKIE, CSRF_COOKIE):
                [line] = [c for c in cookies if c.startswith(name + "=")]
                assert "secure" in line.lower() and "samesite" in line.lower(), line
    finally:
        get_settings.cache_clear()


def test_logout_is_refused_from_other_sites_and_without_its_token(
    request: pytest.FixtureRequest, db: Database, client: TestClient
) -> None:
    """Signing someone out from another site's page (or with a GET, as an <img> or a
    link preview would) leaves their session as it was."""
    tally = AttackTally("Logout CSRF: /logout from elsewhere, by GET or without its token")
    parked(db)
    sign_in(client, BOSS, PASSWORD)
    cookie = client.cookies.get(SESSION_COOKIE)
    own = client.headers.pop(CSRF_HEADER)
    form_token = form_csrf(client.get("/logout").text)

    def still_signed_in() -> bool:
        client.cookies.set(SESSION_COOKIE, cookie)  # what a refused answer deleted stays
        return client.get("/approve/config").status_code == 200

    fetched = client.get("/logout", follow_redirects=False)
    tally.check(
        fetched.status_code == 200 and "set-cookie" not in fetched.headers and still_signed_in(),
        "GET /logout",
    )
    for what, headers in FOREIGN.items():
        response = client.post(
            "/logout", data={CSRF_FIELD: form_token}, headers=headers, follow_redirects=False
        )
        tally.check(
            response.status_code == 403 and "set-cookie" not in response.headers and still_signed_in(), what
        )
    for what, form in {
        "no CSRF token": {},
        "a forged CSRF token": {CSRF_FIELD: "eyJmb28iOjF9.x.y"},
        "another session's token": {CSRF_FIELD: own[:-4] + "AAAA"},
    }.items():
        response = client.post("/logout", data=form, follow_redirects=False)
        tally.check(response.status_code == 403 and still_signed_in(), what)
    # Without a session cookie (SameSite=Lax keeps it off a cross-site POST) nothing is deleted.
    client.cookies.delete(SESSION_COOKIE)
    bare = client.post("/logout", headers=FOREIGN["Sec-Fetch-Site: cross-site"], follow_redirects=False)
    tally.check(bare.status_code == 403 and "set-cookie" not in bare.headers, "no session cookie")
    client.cookies.set(SESSION_COOKIE, cookie)
    done = client.post(
        "/logout",
        data={CSRF_FIELD: form_token},
        follow_redirects=False,
        headers={"Origin": GATEWAY, "Sec-Fetch-Site": "same-origin"},
    )
    assert done.status_code == 303 and done.headers["location"] == "/login", done.text
    client.headers[CSRF_HEADER] = own
    assert not still_signed_in()  # ended server side: a copy of the cookie is refused too
    finish(request, tally)
