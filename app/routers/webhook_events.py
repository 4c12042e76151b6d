"""The webhook event catalogue: what a subscription can ask for, and what each message holds."""

from __future__ import annotations

from fastapi import APIRouter

from app.deps import AnyPrincipal
from app.errors import problem_responses
from app.models.webhook_events import EventTypeList
from app.services import webhook_events

router = APIRouter(tags=["webhooks"], responses=problem_responses(401, 403, 500, 503))


@router.get("/v1/webhooks/event-types", response_model=EventTypeList)
async def list_webhook_event_types(_principal: AnyPrincipal) -> EventTypeList:
    """Every event type a subscription may name: when it is sent, what it is about, the
    scope its owner needs to receive it, and the JSON Schema of the message (`type`,
    `timestamp`, `data`). Payloads carry ids, codes and statuses only; fetch the details
    with your own token."""
    return EventTypeList(items=list(webhook_events.catalogue()))
