"""Corrections to the OpenAPI document FastAPI generates, so that it tells the truth."""

from __future__ import annotations

from typing import Any

# A route that admits any one of several scope sets checks them itself and says so with this
# key in its `openapi_extra`; the generated `security` (any token) is replaced by the sets.
SCOPES_ANY_OF = "x-liaison-scopes-any-of"


def declare_scope_alternatives(schema: dict[str, Any]) -> None:
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            alternatives = operation.pop(SCOPES_ANY_OF, None)
            if alternatives is not None:
                operation["security"] = [{"OAuth2": list(scopes)} for scopes in alternatives]
