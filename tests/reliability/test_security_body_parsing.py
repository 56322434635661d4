"""Bodies the gateway cannot take are refused naming the reason, over real HTTP.

The gateway is served by uvicorn on a loopback port and sent real chunked
requests (no Content-Length, so the size is only known as the bytes arrive):

* a body over ``COUNTERSIGN_MAX_BODY`` is refused with 413 ``BodyTooLarge``
  naming the limit whatever its Content-Type (``text/plain``, a URL-encoded or
  a multipart form, as for JSON), never FastAPI's bare "There was an error
  parsing the body";
* a body declared JSON that is not UTF-8 (Latin-1, stray bytes, an encoded
  lone surrogate) is refused with 400 ``BodyNotUtf8`` saying so, where FastAPI
  answered the same bare 400; JSON in UTF-8 still loads.

After each attempt the gateway still answers, and nothing was created.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from core.engine import workflows as ops
from core.store.db import Database
from gateway.hardening import MAX_BODY_ENV
from tests.integration.gateway.conftest import token_for
from tests.reliability.browser_sites import gateway_site
from tests.reliability.security_setup import STARTER

LIMIT = 4096
GENERIC = "There was an error parsing the body"


@pytest.fixture
def served(sqlite_db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[httpx.Client, Database]]:
    """The gateway on a loopback port, COUNTERSIGN_MAX_BODY at LIMIT; a client holding
    an admin's token."""
    monkeypatch.setenv(MAX_BODY_ENV, str(LIMIT))
    auth = token_for(sqlite_db, STARTER, role="admin")
    with gateway_site(sqlite_db) as url, httpx.Client(base_url=url, headers=auth, timeout=30) as client:
        yield client, sqlite_db


def chunked(first: bytes, filler: bytes, last: bytes = b"") -> Iterator[bytes]:
    """A body sent in chunks, without a Content-Length, four times the limit."""
    yield first
    for _ in range(4):
        yield filler * (LIMIT // len(filler))
    yield last


BOUNDARY = "cs-boundary"


def oversized(content_type: str) -> Iterator[bytes]:
    if content_type.startswith("multipart/"):
        return chunked(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="definition"\r\n\r\n'.encode(),
            b"x",
            f"\r\n--{BOUNDARY}--\r\n".encode(),
        )
    if content_type == "application/x-www-form-urlencoded":
        return chunked(b"definition=", b"x")
    return chunked(b"", b"x")


def still_answering(client: httpx.Client, db: Database) -> None:
    assert client.get("/api/workflows").status_code == 200
    assert ops.list_workflows(db).total == 0


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        f"multipart/form-data; boundary={BOUNDARY}",
        "application/json",  # the case that already named the limit
    ],
    ids=["text", "urlencoded", "multipart", "json"],
)
def test_a_chunked_body_over_the_limit_is_413_naming_it_whatever_its_type(
    served: tuple[httpx.Client, Database], content_type: str
) -> None:
    client, db = served
    body = oversized(content_type) if content_type != "application/json" else chunked(b'{"x": "', b"x", b'"}')
    response = client.post("/api/workflows", content=body, headers={"Content-Type": content_type})
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert response.status_code == 413, response.text
    refusal = response.json()
    assert refusal["error"] == "BodyTooLarge"
    assert str(LIMIT) in refusal["message"] and MAX_BODY_ENV in refusal["message"]
    assert GENERIC not in response.text
    still_answering(client, db)


@pytest.mark.parametrize(
    "body",
    [
        b'{"definition": {"name": "caf\xe9", "steps": []}}',  # Latin-1, not UTF-8
        b'{"definition": {"name": "\xff\xfe", "steps": []}}',
        b'{"definition": {"name": "\xed\xa0\x80", "steps": []}}',  # a lone surrogate
    ],
    ids=["latin-1", "bad-bytes", "surrogate"],
)
@pytest.mark.parametrize("content_type", ["application/json", "application/merge-patch+json"])
def test_json_that_is_not_utf8_is_refused_saying_so(
    served: tuple[httpx.Client, Database], body: bytes, content_type: str
) -> None:
    client, db = served
    response = client.post("/api/workflows", content=body, headers={"Content-Type": content_type})
    assert 400 <= response.status_code < 500, response.text
    assert "not valid UTF-8" in response.json()["message"], response.text
    assert GENERIC not in response.text
    still_answering(client, db)


def test_json_in_utf8_still_loads(served: tuple[httpx.Client, Database]) -> None:
    client, db = served
    definition = {"name": "café ☕", "steps": [{"name": "a", "type": "checkpoint"}]}
    response = client.post(
        "/api/workflows",
        content=json.dumps({"definition": definition}, ensure_ascii=False).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text
    [workflow] = ops.list_workflows(db).rows
    assert workflow.name == "café ☕"
