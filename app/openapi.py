"""Corrections to the OpenAPI document FastAPI generates, so that it tells the truth."""

from __future__ import annotations

import json
from typing import Any

from app.errors import problem_responses
from app.security import CLIENT_SCHEME, STAFF_SCHEME

# A route that admits any one of several scope sets checks them itself and says so with this
# key in its `openapi_extra`; the generated `security` (any token) is replaced by the sets.
SCOPES_ANY_OF = "x-liaison-scopes-any-of"


def declare_scope_alternatives(schema: dict[str, Any]) -> None:
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            alternatives = operation.pop(SCOPES_ANY_OF, None)
            if alternatives is not None:
                operation["security"] = [
                    {scheme: list(scopes)}
                    for scopes in alternatives
                    for scheme in (CLIENT_SCHEME, STAFF_SCHEME)
                ]


IDENTITY_PROVIDER_SCHEME = "LAIdentityProvider"


def declare_identity_provider(schema: dict[str, Any], issuer: str) -> None:
    """With the LA's identity provider configured, staff may also bring its tokens: a third
    scheme (a bearer token the docs are given by hand, so no request leaves for the
    provider), offered wherever the staff scheme is, with the same scopes."""
    schemes = schema["components"]["securitySchemes"]
    schemes[IDENTITY_PROVIDER_SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": (
            f"Staff: an access token issued by the LA's identity provider ({issuer}), "
            "mapped onto a staff account."
        ),
    }
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            security = operation.get("security")
            if security:
                operation["security"] = [
                    alternative
                    for need in security
                    for alternative in (
                        [need, {IDENTITY_PROVIDER_SCHEME: need[STAFF_SCHEME]}]
                        if STAFF_SCHEME in need
                        else [need]
                    )
                ]


_FRAMEWORK_422 = "#/components/schemas/HTTPValidationError"


def declare_problems(schema: dict[str, Any]) -> None:
    """Every operation declares the problems any request can meet, on top of those its route
    declares: 422 (a parameter, the text check of `storable_parameters`), 500 and 503; with a
    body, 400 (not JSON), 413 (too large) and 415 (not JSON's media type); with a token, 401
    and 403; with an id in its path, 404. FastAPI's own `HTTPValidationError` 422, which the
    handlers never send, is replaced by the problem document they do send."""
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            statuses = {422, 500, 503}
            if "requestBody" in operation:
                statuses |= {400, 413, 415}
            if operation.get("security"):
                statuses |= {401, 403}
            if "{" in path:
                statuses.add(404)
            responses = operation["responses"]
            for status, declared in problem_responses(*sorted(statuses)).items():
                current = responses.get(str(status))
                if current is None or _FRAMEWORK_422 in json.dumps(current):
                    responses[str(status)] = declared
    schemas = schema["components"]["schemas"]
    for framework_only in ("HTTPValidationError", "ValidationError"):
        schemas.pop(framework_only, None)
