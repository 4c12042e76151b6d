"""Calling the API: an answer of the status a test expects, what a POST made, a read with
its ETag, a list's items (one page or every page), a problem, and an app of its own beside
the session's.

Every check here fails with the answer's body in the message, so a failed build step says
what the API said rather than only which status it gave.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from app.main import create_app
from tests.conftest import settings_for

PROBLEM = "application/problem+json"
PROBLEM_TYPE = "urn:liaison:problem:"


def expect(response: httpx.Response, status: int = 200) -> Any:
    """The JSON of an answer that must have `status`."""
    assert response.status_code == status, response.text
    return response.json()


async def created(
    http: httpx.AsyncClient, path: str, body: Any, headers: dict[str, str]
) -> dict[str, Any]:
    """What a POST that must answer 201 made."""
    made: dict[str, Any] = expect(await http.post(path, json=body, headers=headers), 201)
    return made


async def read_with_etag(
    http: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> tuple[dict[str, Any], str]:
    """A read that must succeed, and its ETag (for `If-Match`)."""
    response = await http.get(path, headers=headers)
    return expect(response), response.headers["ETag"]


async def items(
    http: httpx.AsyncClient, path: str, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    """The `items` of a list read that must succeed."""
    page = expect(await http.get(path, params=params, headers=headers))
    found: list[dict[str, Any]] = page["items"]
    return found


def assert_problem(
    response: httpx.Response, status: int, slug: str | None = None
) -> dict[str, Any]:
    """An RFC 9457 problem of `status` (and of type `slug`, when given); its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status, body
    assert body["type"].startswith(PROBLEM_TYPE), body
    if slug is not None:
        assert body["type"] == PROBLEM_TYPE + slug, body
    return body


@asynccontextmanager
async def standalone(
    url: str,
    *,
    address: str = "127.0.0.1",
    prepare: Callable[[FastAPI], None] | None = None,
    **settings: Any,
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """A second app over `url` with settings of its own (started and stopped here), and a
    client of it calling from `address`. `prepare` changes the app before it starts."""
    application = create_app(settings_for(url, **settings))
    if prepare is not None:
        prepare(application)
    async with LifespanManager(application):
        transport = httpx.ASGITransport(
            app=application, raise_app_exceptions=False, client=(address, 40000)
        )
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield application, http


async def walk(
    http: httpx.AsyncClient,
    path: str,
    headers: dict[str, str],
    limit: int,
    pages: int = 10,
    **params: Any,
) -> list[dict[str, Any]]:
    """Every item of a keyset-paged list, read `limit` at a time by following `next_cursor`
    (no page longer than `limit`, and no more than `pages` pages)."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(pages):
        sent = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        page = expect(await http.get(path, params=sent, headers=headers))
        assert len(page["items"]) <= limit, page
        found += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return found
    raise AssertionError(f"{path}: more than {pages} pages of {limit}")
