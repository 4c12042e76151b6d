"""Replaying a subscription's events (`POST /v1/webhooks/{id}/replay`)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from app.deps import AnyPrincipal, SessionDep
from app.errors import problem_responses
from app.models.base import utcnow
from app.models.webhook_replay import ReplayRequest, ReplayResult
from app.services import webhook_replay, webhooks

router = APIRouter(tags=["webhooks"], responses=problem_responses(401, 403, 500, 503))


@router.post(
    "/v1/webhooks/{webhook_id}/replay",
    status_code=202,
    response_model=ReplayResult,
    responses=problem_responses(404, 409, 422),
)
async def replay_events(
    webhook_id: uuid.UUID,
    body: ReplayRequest,
    session: SessionDep,
    principal: AnyPrincipal,
) -> ReplayResult:
    """Send one event, or every event of a time range, to the subscription again, with the
    same `webhook-id`s: those it wants and its owner may read now. Queued at once; sent by
    the delivery workers."""
    subscription = await webhooks.get(session, principal, webhook_id)
    queued = await webhook_replay.replay(
        session,
        subscription,
        now=utcnow(),
        event_id=body.event_id,
        since=body.since,
        until=body.until,
    )
    return ReplayResult(queued=queued)
