"""The contract: the committed schema is what the app serves, and it tells the truth."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
                # One or more alternative scope sets, each offered to a system (Client) and
                # to staff (Staff) alike.
                security = operation["security"]
                assert security, (method, path)
                assert all(set(need) in ({"Client"}, {"Staff"}) for need in security)
                clients = [need["Client"] for need in security if "Client" in need]
                staff = [need["Staff"] for need in security if "Staff" in need]
                assert clients and clients == staff, (method, path)
                problem = responses["401"]["content"]["application/problem+json"]["schema"]
                assert problem == {"$ref": "#/components/schemas/Problem"}
    assert "pupils-push_roster" in seen and "oauth-token" in seen


def test_docs_offer_both_oauth_flows() -> None:
    schemes = _schema()["components"]["securitySchemes"]
    assert set(schemes) == {"Client", "Staff"}
    client, staff = schemes["Client"]["flows"], schemes["Staff"]["flows"]
    assert set(client) == {"clientCredentials"} and set(staff) == {"password"}
    assert client["clientCredentials"]["tokenUrl"] == "/oauth/token"
    assert staff["password"]["tokenUrl"] == "/oauth/token"
    assert "cases:read" in staff["password"]["scopes"]
    assert client["clientCredentials"]["scopes"] == staff["password"]["scopes"]


async def test_docs_and_schema_are_served(client: httpx.AsyncClient) -> None:
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    served = (await client.get("/openapi.json")).json()
    assert served == json.loads(COMMITTED.read_text())


# --- bounds: every number and every text a client sends has a limit ----------------------

# String formats whose values have a bounded length.
_BOUNDED_FORMATS = frozenset({"uuid", "date", "date-time", "time"})
_UNBOUNDED_QUANTIFIER = re.compile(r"[*+]|\{\d+,\}")
# Escapes and character classes, whose `*` and `+` are characters, not quantifiers.
_LITERALS = re.compile(r"\\.|\[(?:\\.|[^\]])*\]")


def _nodes(node: Any, components: dict[str, Any], seen: set[str]) -> Iterator[dict[str, Any]]:
    """Every schema reachable from `node`, following `$ref`s once each."""
    if isinstance(node, list):
        for item in node:
            yield from _nodes(item, components, seen)
        return
    if not isinstance(node, dict):
        return
    ref = node.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if name not in seen:
            seen.add(name)
            yield from _nodes(components[name], components, seen)
        return
    yield node
    for key in ("properties", "patternProperties", "$defs"):
        for child in node.get(key, {}).values():
            yield from _nodes(child, components, seen)
    for key in ("items", "additionalProperties", "anyOf", "oneOf", "allOf", "prefixItems"):
        yield from _nodes(node.get(key), components, seen)


def _types(node: dict[str, Any]) -> set[str]:
    kind = node.get("type")
    return {kind} if isinstance(kind, str) else set(kind or ())


def _unbounded(node: dict[str, Any]) -> str | None:
    types = _types(node)
    if "integer" in types:
        if "minimum" not in node and "exclusiveMinimum" not in node:
            return "an integer without a minimum"
        if "maximum" not in node and "exclusiveMaximum" not in node:
            return "an integer without a maximum"
    if "string" in types and "maxLength" not in node:
        if "enum" in node or "const" in node or node.get("format") in _BOUNDED_FORMATS:
            return None
        pattern = node.get("pattern", "")
        anchored = pattern.startswith("^") and pattern.endswith("$")
        if not (anchored and not _UNBOUNDED_QUANTIFIER.search(_LITERALS.sub("", pattern))):
            return "a string without a maxLength"
    return None


def test_every_integer_and_every_body_string_has_bounds() -> None:
    """An integer a client sends fits its column (and SQL's int64 OFFSET); a body string fits
    its column. A new field without bounds fails here, before PostgreSQL refuses it as a 500."""
    schema = _schema()
    components = schema["components"]["schemas"]
    found: list[str] = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                for node in _nodes(parameter["schema"], components, set()):
                    if "integer" in _types(node) and (problem := _unbounded(node)):
                        found.append(f"{method} {path} {parameter['name']}: {problem}")
            body = operation.get("requestBody", {}).get("content", {})
            for media, content in body.items():
                for node in _nodes(content["schema"], components, set()):
                    if problem := _unbounded(node):
                        title = node.get("title", "")
                        found.append(f"{method} {path} {media} {title}: {problem}")
    assert found == []


# --- the errors the contract declares are the errors the app sends -----------------------

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
# Changes that need If-Match, and those that take it only when sent (issue 10, finding 9).
IF_MATCH_REQUIRED = {
    ("post", "/v1/referrals/{referral_id}/review"),
    ("post", "/v1/referrals/{referral_id}/decision"),
    ("post", "/v1/referrals/{referral_id}/approval"),
    ("post", "/v1/referrals/{referral_id}/withdrawal"),
    ("patch", "/v1/cases/{case_id}"),
    ("patch", "/v1/webhooks/{webhook_id}"),
}
IF_MATCH_OPTIONAL = {
    ("post", "/v1/cases/{case_id}/closure"),
    ("post", "/v1/cases/{case_id}/closure/approval"),
    ("post", "/v1/cases/{case_id}/reopen"),
    ("delete", "/v1/webhooks/{webhook_id}"),
}


def _problem(response: dict[str, Any]) -> bool:
    content = response.get("content", {})
    media = content.get("application/problem+json", {})
    # The schema, and an example of this status (tests/test_docs.py checks the examples).
    return set(content) == {"application/problem+json"} and media == {
        "schema": PROBLEM_REF,
        "example": media.get("example"),
    }


def test_every_operation_declares_the_problems_it_can_send() -> None:
    schema = _schema()
    assert "HTTPValidationError" not in json.dumps(schema)
    assert "ValidationError" not in schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            expected = {"422", "500", "503"}
            if "requestBody" in operation:
                expected |= {"400", "413", "415"}
            if operation.get("security"):
                expected |= {"401", "403"}
            if "{" in path:
                expected.add("404")
            assert expected <= set(responses), (method, path, expected - set(responses))
            for status, response in responses.items():
                if status.startswith(("4", "5")) and path != "/oauth/token":
                    assert _problem(response), (method, path, status)
            assert _problem(responses["422"]), (method, path)


def test_if_match_is_required_exactly_where_its_absence_is_428() -> None:
    schema = _schema()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            headers = {
                p["name"]: p["required"]
                for p in operation.get("parameters", [])
                if p["in"] == "header"
            }
            if (method, path) in IF_MATCH_REQUIRED:
                assert headers.get("If-Match") is True, (method, path)
                assert {"412", "428"} <= set(operation["responses"]), (method, path)
            elif (method, path) in IF_MATCH_OPTIONAL:
                assert headers.get("If-Match") is False, (method, path)
                assert "428" not in operation["responses"], (method, path)
            else:
                assert "If-Match" not in headers and "428" not in operation["responses"]
