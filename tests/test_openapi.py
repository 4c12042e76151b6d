"""The contract: the committed schema is what the app serves, and it tells the truth."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from app.main import create_app, openapi_document
from tests.conftest import settings_for

COMMITTED = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"


def _schema() -> dict:  # type: ignore[type-arg]
    return create_app(settings_for("sqlite+aiosqlite://")).openapi()


def test_committed_schema_matches_the_app() -> None:
    generated = openapi_document(create_app(settings_for("sqlite+aiosqlite://")))
    assert COMMITTED.read_text() == generated, (
        "openapi/openapi.json is stale: run `liaison export-openapi` and commit the result"
    )


def test_operations_have_stable_ids_tags_and_declared_errors() -> None:
    schema = _schema()
    seen: set[str] = set()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert operation["operationId"] not in seen
            seen.add(operation["operationId"])
            assert operation["tags"], (method, path)
            responses = operation["responses"]
            for status in ("500", "503"):
                assert status in responses, (method, path, status)
            if path.startswith("/oruk"):
                # The Open Referral UK directory is public by design: no child data.
                assert operation["security"] == [], (method, path)
                assert "404" in responses or "{id}" not in path, (method, path)
            elif path != "/oauth/token":
                assert {"401", "403", "422"} <= set(responses), (method, path)
                # One or more alternative scope sets, all of our OAuth2 scheme.
                assert operation["security"], (method, path)
                assert all(set(need) == {"OAuth2"} for need in operation["security"])
                problem = responses["401"]["content"]["application/problem+json"]["schema"]
                assert problem == {"$ref": "#/components/schemas/Problem"}
    assert "pupils-push_roster" in seen and "oauth-token" in seen


def test_docs_offer_both_oauth_flows() -> None:
    flows = _schema()["components"]["securitySchemes"]["OAuth2"]["flows"]
    assert flows["clientCredentials"]["tokenUrl"] == "/oauth/token"
    assert flows["password"]["tokenUrl"] == "/oauth/token"
    assert "cases:read" in flows["password"]["scopes"]


async def test_docs_and_schema_are_served(client: httpx.AsyncClient) -> None:
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    served = (await client.get("/openapi.json")).json()
    assert served == json.loads(COMMITTED.read_text())
