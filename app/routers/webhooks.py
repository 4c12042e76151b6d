"""`/v1/webhooks`: subscriptions to Liaison's events, their signing secrets, and what was sent.

A client manages its own subscriptions; an LA admin its own and its LA's. Anything else is
not found. Who may manage what is decided in `app/services/webhooks.py`.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app.deps import (
    AnyPrincipal,
    AuditorDep,
    ExpectedVersion,
    OptionalExpectedVersion,
    PageDep,
    SessionDep,
    SettingsDep,
)
from app.errors import problem_responses
from app.etags import etag
from app.models.webhook import (
    AttemptOutcome,
    AttemptPage,
    DeliveryPage,
    DeliveryStatus,
    RotatedSecret,
    SecretRotation,
    WebhookCreate,
    WebhookCreated,
    WebhookPage,
    WebhookRead,
    WebhookUpdate,
)
from app.services import webhooks

router = APIRouter(
    prefix="/v1/webhooks",
    tags=["webhooks"],
    responses=problem_responses(401, 403, 500, 503),
)

_CHANGE_RESPONSES = problem_responses(404, 412, 413, 415, 422, 428)


@router.post(
    "",
    response_model=WebhookCreated,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(413, 415, 422),
)
async def create_webhook(
    new: WebhookCreate,
    response: Response,
    settings: SettingsDep,
    _principal: AnyPrincipal,
    auditor: AuditorDep,
) -> WebhookCreated:
    """Subscribe a URL to event types. The answer carries the signing secret (`whsec_…`),
    shown this once. The subscription receives only events about what this account may
    read (its scopes and reach, as they stand when each event is sent); a type it could
    never receive is refused. Staff need `admin`."""
    created = await webhooks.create(auditor, settings, new)
    response.headers["ETag"] = etag(created.version)
    response.headers["Location"] = f"/v1/webhooks/{created.id}"
    return created


@router.get("", response_model=WebhookPage, responses=problem_responses(400, 422))
async def list_webhooks(session: SessionDep, principal: AnyPrincipal, page: PageDep) -> WebhookPage:
    """The subscriptions you manage, oldest first: your own, and an LA admin its LA's."""
    items, next_cursor = await webhooks.get_all(session, principal, page)
    return WebhookPage(items=items, next_cursor=next_cursor)


@router.get("/{webhook_id}", response_model=WebhookRead, responses=problem_responses(404, 422))
async def read_webhook(
    webhook_id: uuid.UUID, response: Response, session: SessionDep, principal: AnyPrincipal
) -> WebhookRead:
    """A subscription, without its secret (shown only when made or rotated)."""
    subscription = await webhooks.get(session, principal, webhook_id)
    response.headers["ETag"] = etag(subscription.version)
    return webhooks.present(subscription)


@router.patch("/{webhook_id}", response_model=WebhookRead, responses=_CHANGE_RESPONSES)
async def update_webhook(
    webhook_id: uuid.UUID,
    change: WebhookUpdate,
    response: Response,
    settings: SettingsDep,
    _principal: AnyPrincipal,
    auditor: AuditorDep,
    expected: ExpectedVersion,
) -> WebhookRead:
    """Change the URL, event types or description, or disable (`status: disabled`) or
    re-enable (`status: active`) the subscription. Needs `If-Match`."""
    subscription = await webhooks.update(auditor, settings, webhook_id, expected, change)
    response.headers["ETag"] = etag(subscription.version)
    return webhooks.present(subscription)


@router.delete(
    "/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(404, 412, 422),
)
async def delete_webhook(
    webhook_id: uuid.UUID,
    _principal: AnyPrincipal,
    auditor: AuditorDep,
    expected: OptionalExpectedVersion,
) -> Response:
    """Delete the subscription, its secrets and its delivery history. `If-Match` optional."""
    await webhooks.remove(auditor, webhook_id, expected)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{webhook_id}/secret/rotate",
    response_model=RotatedSecret,
    responses=problem_responses(404, 412, 413, 415, 422),
)
async def rotate_webhook_secret(
    webhook_id: uuid.UUID,
    settings: SettingsDep,
    _principal: AnyPrincipal,
    auditor: AuditorDep,
    rotation: SecretRotation | None = None,
) -> RotatedSecret:
    """A new signing secret, shown this once. The one it replaces keeps signing beside it
    (two `v1,` signatures per message) until `previous_expires_at`."""
    grace_hours = rotation.grace_hours if rotation is not None else None
    return await webhooks.rotate_secret(auditor, settings, webhook_id, grace_hours)


@router.get(
    "/{webhook_id}/attempts",
    response_model=AttemptPage,
    responses=problem_responses(400, 404, 422),
)
async def list_webhook_attempts(
    webhook_id: uuid.UUID,
    session: SessionDep,
    principal: AnyPrincipal,
    page: PageDep,
    event_id: Annotated[uuid.UUID | None, Query(description="Only this event's tries.")] = None,
    outcome: AttemptOutcome | None = None,
) -> AttemptPage:
    """Every try at sending to this subscription, newest first: when, how long, what came
    back (the status and a short excerpt, never more of the body)."""
    items, next_cursor = await webhooks.attempts(
        session, principal, webhook_id, page, event_id=event_id, outcome=outcome
    )
    return AttemptPage(items=items, next_cursor=next_cursor)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=DeliveryPage,
    responses=problem_responses(400, 404, 422),
)
async def list_webhook_deliveries(
    webhook_id: uuid.UUID,
    session: SessionDep,
    principal: AnyPrincipal,
    page: PageDep,
    status: DeliveryStatus | None = None,
) -> DeliveryPage:
    """The events owed to this subscription, newest first: pending (with the next try's
    time), delivered, or failed, and how many tries each took."""
    items, next_cursor = await webhooks.deliveries(
        session, principal, webhook_id, page, status=status
    )
    return DeliveryPage(items=items, next_cursor=next_cursor)
