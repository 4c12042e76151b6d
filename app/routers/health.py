"""Liveness, readiness and metrics: deliberately public, and kept out of the API schema."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.db import ping
from app.errors import ServiceUnavailable, render
from app.models.base import utcnow

router = APIRouter(include_in_schema=False)


@router.get("/livez")
async def livez() -> dict[str, str]:
    """The process is up. Never touches the database, so an outage restarts nothing."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    """Ready to serve: the database answers. 503 with Retry-After when it does not."""
    if await ping(request.app.state.engine):
        return JSONResponse({"status": "ok", "database": "ok"})
    return render(ServiceUnavailable("The database is not answering."), instance="/readyz")


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus metrics; the webhook queue's gauges are read from the database now (left
    as they were when it does not answer within a second)."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(1.0), request.app.state.session_factory() as session:
            await request.app.state.webhook_metrics.refresh(session, utcnow())
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
