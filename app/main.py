"""The application: middleware, error handlers, routers and the lifespan that owns the engine."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import Depends, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from app import __version__
from app.config import Settings, get_settings
from app.db import create_engine, create_session_factory
from app.deps import storable_parameters
from app.errors import Problem, install_exception_handlers
from app.logging import configure_logging
from app.middleware import (
    BodyLimit,
    BodySizeLimitMiddleware,
    HeadMiddleware,
    Metrics,
    RequestContextMiddleware,
)
from app.openapi import declare_identity_provider, declare_problems, declare_scope_alternatives
from app.routers import (
    actions,
    attendance,
    audit_events,
    case_team,
    cases,
    directory,
    docs,
    documents,
    health,
    legal_holds,
    letters,
    meetings,
    oauth,
    oruk,
    plans,
    pupils,
    referrals,
    report_attendance_impact,
    report_caseload,
    report_closures,
    report_referrals,
    reports,
    schools,
    subject_access,
    webhook_events,
    webhook_replay,
    webhooks,
)
from app.security import JwksCache, use_test_hashing
from app.services import retention_schedule
from app.services.document_store import store_for
from app.services.token_attempts import TokenAttempts
from app.services.webhook_metrics import WebhookMetrics
from app.services.webhook_worker import run_worker

log = structlog.get_logger("liaison")

DESCRIPTION = """
Liaison holds the casework around children whose attendance, wellbeing or family
circumstances put their education at risk, and the evidence of what helped.

**Authorize** above with client credentials (systems, scheme `Client`) or a staff
username and password (scheme `Staff`; leave client_id and secret empty).
Every error is `application/problem+json` (RFC 9457).
"""


def _operation_id(route: APIRoute) -> str:
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    engine = create_engine(settings)
    app.state.engine = engine
    app.state.session_factory = create_session_factory(engine)
    app.state.token_attempts = TokenAttempts(engine, settings)
    if settings.external_jwks_url:
        app.state.jwks = JwksCache(settings.external_jwks_url, settings.jwks_cache_seconds)
    if settings.uses_development_key:
        log.warning("development_signing_key", detail="set LIAISON_SIGNING_KEY outside development")
    # Everything built at start-up lives as long as the process: keep it out of the
    # collector's way, so a big push's garbage collections only scan the push itself.
    gc.collect()
    gc.freeze()
    stop = asyncio.Event()
    worker = None
    if settings.webhook_worker_in_serve:
        if settings.is_sqlite:
            log.info("webhook_worker_in_serve", detail="on SQLite, run one process only")
        worker = asyncio.create_task(
            run_worker(
                app.state.session_factory, settings, stop, metrics=app.state.webhook_metrics
            ),
            name="webhook-worker",
        )
    try:
        yield
    finally:
        if worker is not None:
            stop.set()
            try:
                await asyncio.wait_for(worker, timeout=settings.webhook_timeout_seconds + 10)
            except TimeoutError:
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
        await engine.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings)
    use_test_hashing(settings.environment == "test")
    # A retention schedule file that does not validate stops the service at start, with why.
    retention_schedule.load(settings.retention_schedule)
    app = FastAPI(
        title="Liaison",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        separate_input_output_schemas=False,
        swagger_ui_init_oauth={"usePkceWithAuthorizationCodeGrant": False},
        # Served by app/routers/docs.py from local assets, with a Content-Security-Policy.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        dependencies=[Depends(storable_parameters)],
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.webhook_metrics = WebhookMetrics(app.state.metrics.registry)
    app.state.document_store = store_for(settings)
    install_exception_handlers(app)
    for router in (
        oauth.router,
        # Before anything else under /v1/webhooks: `event-types` is not a subscription id.
        webhook_events.router,
        schools.router,
        pupils.router,
        attendance.router,
        referrals.router,
        cases.router,
        plans.router,
        actions.router,
        case_team.router,
        documents.router,
        letters.router,
        meetings.router,
        reports.router,
        report_closures.router,
        report_referrals.router,
        report_caseload.router,
        report_attendance_impact.router,
        directory.router,
        oruk.router,
        audit_events.router,
        subject_access.router,
        legal_holds.router,
        webhooks.router,
        webhook_replay.router,
        health.router,
        docs.router,
    ):
        app.include_router(router)
    app.add_middleware(HeadMiddleware)
    upload = BodyLimit(
        "POST",
        documents.UPLOAD_PATH,
        settings.document_max_bytes + documents.MULTIPART_ALLOWANCE,
        f"A document may be at most {settings.document_max_bytes} bytes.",
    )
    app.add_middleware(
        BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes, narrower=[upload]
    )
    app.add_middleware(RequestContextMiddleware, metrics=app.state.metrics)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                separate_input_output_schemas=False,
            )
            problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            schemas.update(problem.pop("$defs", {}))
            schemas["Problem"] = problem
            declare_scope_alternatives(schema)
            if settings.external_issuer:
                declare_identity_provider(schema, settings.external_issuer)
            declare_problems(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def openapi_document(app: FastAPI) -> str:
    """The schema as committed in `openapi/openapi.json`: sorted, indented, newline-ended."""
    return json.dumps(app.openapi(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
