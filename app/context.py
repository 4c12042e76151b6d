"""Per-request context that code far from the HTTP layer may need (logs, audit, errors)."""

from __future__ import annotations

from contextvars import ContextVar

_request_id: ContextVar[str | None] = ContextVar("liaison_request_id", default=None)
_client_address: ContextVar[str | None] = ContextVar("liaison_client_address", default=None)


def current_request_id() -> str | None:
    return _request_id.get()


def current_client_address() -> str | None:
    return _client_address.get()


def bind_request(request_id: str, client_address: str | None) -> tuple[object, object]:
    return _request_id.set(request_id), _client_address.set(client_address)


def unbind_request(tokens: tuple[object, object]) -> None:
    request_token, address_token = tokens
    _request_id.reset(request_token)  # type: ignore[arg-type]
    _client_address.reset(address_token)  # type: ignore[arg-type]
