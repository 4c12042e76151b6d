"""Webhook subscriptions: made, read, changed and deleted by their owners, and by the admin of
the owner's LA; signing secrets made and rotated; the attempts and deliveries an owner reads to
see why its receiver gets what it gets.

Who may manage a subscription is decided once, here (`_may_subscribe`, `_visible`): a client
its own; an LA admin (staff with `admin`, bound to an LA) its own and every one of its LA;
other staff may not subscribe (403) and so manage none. A subscription the caller may not
manage is not found (404), so nobody learns that another's exists. What a subscription
receives is a separate question, judged at delivery by `app/services/webhook_audience.py`
from its owner's scopes and reach.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, delete, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import Auditor
from app.config import Settings
from app.errors import InsufficientScope, NotFound, ProblemItem, ValidationFailed
from app.etags import Expected, claim_version
from app.models.base import shown_as, utcnow
from app.models.event import OutboxEvent
from app.models.webhook import (
    AttemptOutcome,
    AttemptRead,
    DeliveryRead,
    DeliveryStatus,
    RotatedSecret,
    SubscriptionStatus,
    WebhookAttempt,
    WebhookCreate,
    WebhookCreated,
    WebhookDelivery,
    WebhookRead,
    WebhookSecret,
    WebhookSubscription,
    WebhookUpdate,
    message_id,
)
from app.models.webhook_events import EventType
from app.pagination import Page, keyset
from app.security import Principal, Scope
from app.services import outbound, principals, webhook_secrets
from app.services.events import SubjectKind
from app.services.webhook_audience import READ_SCOPE
from app.services.webhook_events import CATALOGUE

# Every event type a subscription may name: the catalogue's.
EVENT_TYPES: tuple[str, ...] = tuple(event_type.value for event_type in CATALOGUE)

URL_MAX_LENGTH = 2000
_NOT_FOUND = "No such webhook subscription."


def subject_kind(event_type: str) -> SubjectKind:
    """The kind of subject an event type is about."""
    return CATALOGUE[EventType(event_type)].subject_kind


# --- access --------------------------------------------------------------------------------


def _is_la_admin(principal: Principal) -> bool:
    return (
        principal.kind == "staff"
        and principal.has(Scope.admin)
        and principal.reach.la_code is not None
    )


def _may_subscribe(principal: Principal) -> None:
    """Any client may subscribe for itself with any token; staff need `admin`. (Other staff
    own no subscription, so they find none: an empty list, 404 for any id.)"""
    if principal.kind == "staff" and not principal.has(Scope.admin):
        raise InsufficientScope([Scope.admin])


def _visible(principal: Principal) -> ColumnElement[bool]:
    """The subscriptions the principal manages: its own, and an LA admin its LA's."""
    own = col(WebhookSubscription.owner) == principal.subject
    if _is_la_admin(principal):
        return or_(own, col(WebhookSubscription.la_code) == principal.reach.la_code)
    return own


async def get(
    session: AsyncSession, principal: Principal, subscription_id: uuid.UUID
) -> WebhookSubscription:
    """A subscription the principal manages; 404 for any other, real or not."""
    query = select(WebhookSubscription).where(
        WebhookSubscription.id == subscription_id, _visible(principal)
    )
    subscription = (await session.exec(query)).first()
    if subscription is None:
        raise NotFound(_NOT_FOUND)
    return subscription


# --- checks on what is asked for ------------------------------------------------------------


def _refused(field: str, detail: str, *where: str | int) -> ValidationFailed:
    return ValidationFailed(
        detail, errors=[ProblemItem(loc=["body", field, *where], detail=detail)]
    )


async def check_url(settings: Settings, url: str) -> str:
    """The receiver's URL, if Liaison may call it; 422 naming the fault otherwise.

    Absolute http(s) with a host and no credentials, https in production, and a host that
    resolves only to addresses Liaison may reach (`outbound.check_destination`: no loopback,
    private, link-local or metadata address unless the operator's allow-list names it).
    Checked again at every send, since what a name resolves to can change."""
    if len(url) > URL_MAX_LENGTH:
        raise _refused("url", f"The URL is longer than {URL_MAX_LENGTH} characters.")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise _refused("url", "The URL may not contain spaces or control characters.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a malformed port raises here
    except ValueError:
        raise _refused("url", "The URL is not a valid URL.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise _refused("url", "The URL must be absolute, http:// or https://, with a host.")
    if parts.username is not None or parts.password is not None:
        raise _refused("url", "The URL may not carry a user name or password.")
    if scheme != "https" and settings.environment == "production":
        raise _refused("url", "The URL must be https://.")
    try:
        await outbound.check_destination(settings, url)
    except outbound.UnresolvableDestination:
        # A receiver whose name is not in DNS yet may be set up before it is: accepted, and
        # vetted again at every send, where an unresolvable host is a failed try.
        pass
    except outbound.UnsafeDestination as refused:
        raise outbound.UnsafeDestination(
            refused.detail, errors=[ProblemItem(loc=["body", "url"], detail=refused.detail)]
        ) from None
    return url


def _check_event_types(principal: Principal, event_types: Sequence[str]) -> list[str]:
    """The event types, if each is known, given once, and receivable by the owner."""
    errors: list[ProblemItem] = []
    for n, event_type in enumerate(event_types):
        if event_type not in EVENT_TYPES:
            errors.append(
                ProblemItem(
                    loc=["body", "event_types", n],
                    detail=f"unknown event type; known: {', '.join(EVENT_TYPES)}",
                )
            )
        elif event_type in event_types[:n]:
            errors.append(ProblemItem(loc=["body", "event_types", n], detail="named twice"))
        elif not principal.has(READ_SCOPE[subject_kind(event_type)]):
            scope = READ_SCOPE[subject_kind(event_type)]
            errors.append(
                ProblemItem(
                    loc=["body", "event_types", n],
                    detail=f"this account could never receive it: it lacks the scope {scope}",
                )
            )
    if errors:
        raise ValidationFailed("The event types are not valid for this account.", errors=errors)
    return list(event_types)


async def _owner(session: AsyncSession, subscription: WebhookSubscription) -> Principal:
    """The owner with everything its account is granted (what delivery judges by), not only
    what this request's token carries."""
    owner = await principals.load_subject(session, subscription.owner)
    if owner is None:
        # Only an LA admin can manage another's subscription, and the owner's account was
        # disabled: nothing it names could be received.
        raise ValidationFailed(
            "The subscription's owner account is disabled; it can receive nothing."
        )
    return owner


# --- the subscription ----------------------------------------------------------------------


def present(subscription: WebhookSubscription) -> WebhookRead:
    return shown_as(WebhookRead, subscription)


def _audit_details(subscription: WebhookSubscription, **more: object) -> dict[str, object]:
    """What the audit trail keeps of a change: never the URL's query (it may carry a token)
    nor a secret."""
    parts = urlsplit(subscription.url)
    return {
        "host": parts.hostname,
        "event_types": list(subscription.event_types),
        "status": str(subscription.status),
        **more,
    }


async def create(auditor: Auditor, settings: Settings, new: WebhookCreate) -> WebhookCreated:
    """A subscription owned by the caller, with its first signing secret (shown once)."""
    session, principal = auditor.session, auditor.principal
    _may_subscribe(principal)
    url = await check_url(settings, new.url)
    owner = await principals.load_subject(session, principal.subject) or principal
    event_types = _check_event_types(owner, new.event_types)
    subscription = WebhookSubscription(
        owner=principal.subject,
        la_code=principal.reach.home_la,
        url=url,
        event_types=event_types,
        description=new.description,
    )
    session.add(subscription)
    await session.flush()
    secret = webhook_secrets.new_secret()
    session.add(
        WebhookSecret(
            subscription_id=subscription.id, secret=webhook_secrets.seal(settings, secret)
        )
    )
    await session.flush()
    await auditor.record(
        "webhook.create",
        "webhook_subscription",
        subscription.id,
        details=_audit_details(subscription),
        la_code=subscription.la_code,
    )
    return shown_as(WebhookCreated, subscription, secret=secret)


async def get_all(
    session: AsyncSession, principal: Principal, page: Page
) -> tuple[list[WebhookRead], str | None]:
    query = select(WebhookSubscription).where(_visible(principal))
    items, next_cursor = await keyset(session, query, col(WebhookSubscription.id), page)
    return [present(s) for s in items], next_cursor


async def update(
    auditor: Auditor,
    settings: Settings,
    subscription_id: uuid.UUID,
    expected: Expected,
    change: WebhookUpdate,
) -> WebhookSubscription:
    session = auditor.session
    subscription = await get(session, auditor.principal, subscription_id)
    version = expected.check(subscription.version)
    fields = change.model_fields_set
    if "url" in fields:
        if change.url is None:
            raise _refused("url", "The URL cannot be removed.")
        subscription.url = await check_url(settings, change.url)
    if "event_types" in fields:
        if change.event_types is None:
            raise _refused("event_types", "The event types cannot be removed.")
        owner = await _owner(session, subscription)
        subscription.event_types = _check_event_types(owner, change.event_types)
    if "description" in fields:
        subscription.description = change.description
    if "status" in fields:
        if change.status is None:
            raise _refused("status", "The status is `active` or `disabled`.")
        _set_status(auditor.principal, subscription, change.status)
    await claim_version(session, WebhookSubscription, subscription.id, version)
    subscription.version = version + 1
    subscription.updated_at = utcnow()
    session.add(subscription)
    await session.flush()
    await auditor.record(
        "webhook.update",
        "webhook_subscription",
        subscription.id,
        details=_audit_details(subscription, changed=sorted(fields)),
        la_code=subscription.la_code,
    )
    return subscription


def _set_status(
    principal: Principal, subscription: WebhookSubscription, status: SubscriptionStatus
) -> None:
    if status == subscription.status:
        return
    subscription.status = status
    if status is SubscriptionStatus.active:
        # A fresh start: delivery's failure clock begins again.
        subscription.disabled_reason = None
        subscription.disabled_at = None
        subscription.failing_since = None
    else:
        subscription.disabled_reason = f"Disabled by {principal.subject}."
        subscription.disabled_at = utcnow()


async def remove(auditor: Auditor, subscription_id: uuid.UUID, expected: Expected) -> None:
    """Delete the subscription with its secrets, deliveries and attempts: nothing more is
    sent to it."""
    session = auditor.session
    subscription = await get(session, auditor.principal, subscription_id)
    version = expected.check(subscription.version)
    await claim_version(session, WebhookSubscription, subscription.id, version)
    details = _audit_details(subscription)
    # Its secrets, deliveries and attempts go with it (ON DELETE CASCADE; SQLite enforces
    # foreign keys here, app/db.py).
    await session.exec(
        delete(WebhookSubscription).where(col(WebhookSubscription.id) == subscription.id)
    )
    session.expunge(subscription)
    await auditor.record(
        "webhook.delete",
        "webhook_subscription",
        subscription_id,
        details=details,
        la_code=subscription.la_code,
    )


# --- secrets ---------------------------------------------------------------------------------


async def rotate_secret(
    auditor: Auditor, settings: Settings, subscription_id: uuid.UUID, grace_hours: float | None
) -> RotatedSecret:
    """A new current secret (shown once). The one it replaces keeps signing beside it for
    the grace period, so a receiver can switch over without losing a message; secrets whose
    grace has run out are deleted."""
    session = auditor.session
    subscription = await get(session, auditor.principal, subscription_id)
    # One rotation at a time: a concurrent one finds the version gone (412), rather than two
    # secrets both left current.
    await claim_version(session, WebhookSubscription, subscription.id, subscription.version)
    subscription.version += 1
    now = utcnow()
    hours = settings.webhook_secret_grace_hours if grace_hours is None else grace_hours
    expires_at = now + timedelta(hours=hours)
    await session.exec(
        delete(WebhookSecret).where(
            col(WebhookSecret.subscription_id) == subscription.id,
            col(WebhookSecret.expires_at) <= now,
        )
    )
    current = (
        await session.exec(
            select(WebhookSecret).where(
                WebhookSecret.subscription_id == subscription.id,
                col(WebhookSecret.expires_at).is_(None),
            )
        )
    ).all()
    for old in current:
        old.expires_at = expires_at
        session.add(old)
    secret = webhook_secrets.new_secret()
    session.add(
        WebhookSecret(
            subscription_id=subscription.id,
            secret=webhook_secrets.seal(settings, secret),
            created_at=now,
        )
    )
    subscription.updated_at = now
    session.add(subscription)
    await session.flush()
    await auditor.record(
        "webhook.rotate_secret",
        "webhook_subscription",
        subscription.id,
        details={"grace_hours": hours},
        la_code=subscription.la_code,
    )
    return RotatedSecret(secret=secret, previous_expires_at=expires_at if current else None)


# --- what was sent ---------------------------------------------------------------------------


async def attempts(
    session: AsyncSession,
    principal: Principal,
    subscription_id: uuid.UUID,
    page: Page,
    *,
    event_id: uuid.UUID | None = None,
    outcome: AttemptOutcome | None = None,
) -> tuple[list[AttemptRead], str | None]:
    """The subscription's tries at sending, newest first."""
    subscription = await get(session, principal, subscription_id)
    query = select(WebhookAttempt).where(WebhookAttempt.subscription_id == subscription.id)
    if event_id is not None:
        query = query.where(WebhookAttempt.event_id == event_id)
    if outcome is not None:
        query = query.where(WebhookAttempt.outcome == outcome)
    rows, next_cursor = await keyset(
        session, query, col(WebhookAttempt.id), page, newest_first=True
    )
    return [
        shown_as(AttemptRead, row, webhook_id=message_id(row.event_id)) for row in rows
    ], next_cursor


async def deliveries(
    session: AsyncSession,
    principal: Principal,
    subscription_id: uuid.UUID,
    page: Page,
    *,
    status: DeliveryStatus | None = None,
) -> tuple[list[DeliveryRead], str | None]:
    """The events owed to the subscription, newest first, with where each stands."""
    subscription = await get(session, principal, subscription_id)
    query = select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription.id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    rows, next_cursor = await keyset(
        session, query, col(WebhookDelivery.id), page, newest_first=True
    )
    types: dict[uuid.UUID, str] = {}
    if rows:
        found = await session.exec(
            select(OutboxEvent.id, OutboxEvent.type).where(
                col(OutboxEvent.id).in_([row.event_id for row in rows])
            )
        )
        types = dict(found.all())
    return [
        shown_as(
            DeliveryRead,
            row,
            event_type=types.get(row.event_id),
            webhook_id=message_id(row.event_id),
            next_attempt_at=row.next_attempt_at if row.status == DeliveryStatus.pending else None,
        )
        for row in rows
    ], next_cursor
