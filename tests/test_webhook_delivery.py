"""Webhook delivery end to end: outbox events fanned out to the subscriptions that may
receive them, sent signed to a real local HTTP receiver that checks every signature with
`standardwebhooks`, retried with the same webhook-id, never sent twice at once by two
workers, refused for addresses Liaison may not call, disabled when failing, replayed, pruned.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import random
import signal
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import select
from sqlmodel import col

from app.config import Settings
from app.db import create_engine, create_session_factory
from app.main import create_app
from app.models.base import utcnow
from app.models.event import OutboxEvent
from app.models.webhook import WebhookAttempt, WebhookDelivery, WebhookSubscription
from app.services.events import SubjectKind
from app.services.outbound import (
    UnsafeDestination,
    check_destination,
    parse_destination,
    refusal,
)
from app.services.webhook_delivery import next_attempt, retry_ceiling
from app.services.webhook_worker import Worker
from tests.builders.api import expect
from tests.builders.casework import HUB_SCOPES, referral_body
from tests.builders.database import move_back, rows
from tests.builders.deliveries import (
    Answer,
    Receiver,
    allowing_localhost,
    emit,
    message_id,
    read,
    subject_of,
    subscribe,
    worker,
)
from tests.builders.referrals import refer
from tests.builders.schools import make_school
from tests.conftest import TEST_SIGNING_KEY, DatabaseUnderTest, World, settings_for

DECIDED = "referral.decided"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.stop()


@dataclass
class Scene:
    """LA 202's school, a hub that referred a child there, and the hub's referral."""

    app: FastAPI
    hub: str  # the hub's principal subject
    hub_headers: dict[str, str]
    referral_id: str
    school_id: str

    async def decided(self, occurred_at: datetime | None = None, **data: object) -> str:
        return await emit(
            self.app,
            DECIDED,
            kind=SubjectKind.referral,
            subject_id=self.referral_id,
            referrer=self.hub,
            school_id=self.school_id,
            data={"referral_id": self.referral_id, "decision": "accepted", **data},
            occurred_at=occurred_at,
        )


async def hub_client(world: World, la_code: str = "202") -> tuple[str, dict[str, str]]:
    credentials = await world.api_client(HUB_SCOPES, la_code=la_code)
    return await subject_of(world.app, credentials), await world.headers(credentials)


@pytest.fixture
async def scene(world: World, client: httpx.AsyncClient) -> Scene:
    setup = await make_school(world, client, pupils=1)
    hub, headers = await hub_client(world)
    referral = await refer(client, headers, referral_body({"pupil_id": setup.pupil_ids["P0"]}))
    return Scene(world.app, hub, headers, str(referral["id"]), setup.school["id"])


async def delivery_rows(application: FastAPI, subscription_id: str) -> list[tuple[object, ...]]:
    return await read(
        application,
        select(WebhookDelivery.status, WebhookDelivery.attempts).where(
            WebhookDelivery.subscription_id == uuid.UUID(subscription_id)
        ),
    )


async def attempts_of(application: FastAPI, subscription_id: str) -> list[tuple[object, ...]]:
    a = WebhookAttempt
    return await read(
        application,
        select(a.attempt, a.outcome, a.status_code, a.error, a.response_excerpt, a.latency_ms)
        .where(a.subscription_id == uuid.UUID(subscription_id))
        .order_by(a.attempted_at, a.attempt),
    )


async def subscription_state(application: FastAPI, subscription_id: str) -> tuple[Any, ...]:
    s = WebhookSubscription
    [row] = await read(
        application,
        select(s.status, s.failing_since, s.disabled_reason).where(
            s.id == uuid.UUID(subscription_id)
        ),
    )
    return row


# --- delivered, signed, only to those who may read it ---------------------------------------


async def test_a_decided_referral_reaches_its_hub_signed_and_nobody_else(
    scene: Scene, world: World, receiver: Receiver
) -> None:
    app = scene.app
    hub_sub, secret = await subscribe(app, scene.hub, receiver.url("/hub"), [DECIDED])
    receiver.secrets["/hub"] = secret
    other_la_hub, _ = await hub_client(world, la_code="303")
    await subscribe(app, other_la_hub, receiver.url("/other-la"), [DECIDED], la_code="303")
    same_la_hub, _ = await hub_client(world)
    await subscribe(app, same_la_hub, receiver.url("/other-hub"), [DECIDED])
    await subscribe(app, scene.hub, receiver.url("/not-wanted"), ["case.opened"])

    event_id = await scene.decided()
    outcomes = await worker(app).deliver_due()

    assert [o.outcome.value for o in outcomes] == ["delivered"]
    [got] = receiver.received
    assert got.path == "/hub"
    assert got.verified, "standardwebhooks verifies the signature"
    assert got.webhook_id == message_id(event_id)
    assert got.event_type == DECIDED
    assert got.data == {"referral_id": scene.referral_id, "decision": "accepted"}
    assert datetime.fromisoformat(got.timestamp.replace("Z", "+00:00")) <= utcnow()
    [(attempt, outcome, status, error, excerpt, latency)] = await attempts_of(app, hub_sub)
    assert (attempt, outcome, status, error, excerpt) == (1, "delivered", 200, None, "ok")
    assert isinstance(latency, int) and latency >= 0
    assert await delivery_rows(app, hub_sub) == [("delivered", 1)]
    [(published,)] = await read(
        app, select(OutboxEvent.published_at).where(OutboxEvent.id == uuid.UUID(event_id))
    )
    assert published is not None
    # Nothing more to send.
    assert await worker(app).deliver_due() == []


async def test_a_rolled_back_change_sends_nothing(scene: Scene, receiver: Receiver) -> None:
    from app.services.events import record_event

    await subscribe(scene.app, scene.hub, receiver.url("/hub"), [DECIDED])
    async with scene.app.state.session_factory() as session:
        record_event(
            session,
            DECIDED,
            subject_kind=SubjectKind.referral,
            subject_id=uuid.UUID(scene.referral_id),
            la_code="202",
            data={},
        )
        await session.flush()
        await session.rollback()
    assert await worker(scene.app).deliver_due() == []
    assert receiver.received == []


async def test_a_receiver_down_for_a_while_gets_every_event_with_the_same_ids(
    scene: Scene, receiver: Receiver
) -> None:
    app = scene.app
    subscription, secret = await subscribe(app, scene.hub, receiver.url("/hub"), [DECIDED])
    receiver.secrets["/hub"] = secret
    events = [await scene.decided(n=n) for n in range(3)]
    deliverer = worker(app)

    receiver.stop()
    down = await deliverer.deliver_due()
    assert Counter(o.outcome.value for o in down) == {"connection_error": 3}
    assert sorted(await delivery_rows(app, subscription)) == [("pending", 1)] * 3
    # Not due again until its backoff has passed.
    assert await deliverer.deliver_due() == []

    receiver.start()
    receiver.answer = lambda path: Answer(status=503, body=b"maintenance")
    later = utcnow() + timedelta(hours=1)
    unavailable = await deliverer.deliver_due(now=later)
    assert Counter(o.outcome.value for o in unavailable) == {"http_error": 3}
    assert {o.excerpt for o in unavailable} == {"maintenance"}

    receiver.answer = lambda path: Answer()
    back = await deliverer.deliver_due(now=later + timedelta(hours=1))
    assert Counter(o.outcome.value for o in back) == {"delivered": 3}
    ids = [r.webhook_id for r in receiver.received]
    # Each event came twice (the 503 and the success), with its own id both times.
    assert Counter(ids) == {message_id(e): 2 for e in events}
    assert all(r.verified for r in receiver.received)
    assert sorted(await delivery_rows(app, subscription)) == [("delivered", 3)] * 3
    outcomes = [row[:3] for row in await attempts_of(app, subscription)]
    assert sorted(outcomes, key=str) == sorted(
        [(1, "connection_error", None)] * 3
        + [(2, "http_error", 503)] * 3
        + [(3, "delivered", 200)] * 3,
        key=str,
    )
    [(_, failing_since, _)] = [await subscription_state(app, subscription)]
    assert failing_since is None, "a success ends the failing streak"


# --- two workers ------------------------------------------------------------------------------


async def test_two_workers_deliver_every_event_once_and_never_one_concurrently(
    scene: Scene, receiver: Receiver, database: DatabaseUnderTest
) -> None:
    app = scene.app
    paths = ["/a", "/b", "/c"]
    for path in paths:
        _, receiver.secrets[path] = await subscribe(app, scene.hub, receiver.url(path), [DECIDED])
    receiver.answer = lambda path: Answer(delay=0.01)
    events = [await scene.decided(n=n) for n in range(60)]

    settings = allowing_localhost(app.state.settings, webhook_poll_seconds=0.05)
    # Each worker on an engine of its own, as two processes would be.
    engines = [create_engine(settings) for _ in range(2)]
    workers = [
        Worker(create_session_factory(engine), settings, max_in_flight=8, name=f"w{n}")
        for n, engine in enumerate(engines)
    ]
    stop = asyncio.Event()
    running = [asyncio.create_task(w.run(stop)) for w in workers]
    try:
        async with asyncio.timeout(60):
            while len(receiver.received) < len(events) * len(paths):
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)  # anything sent twice would arrive now
    finally:
        stop.set()
        await asyncio.gather(*running)
        for engine in engines:
            await engine.dispose()

    got = Counter((r.path, r.webhook_id) for r in receiver.received)
    assert got == {(p, message_id(e)): 1 for p in paths for e in events}
    assert receiver.overlaps == 0
    assert all(r.verified for r in receiver.received)
    by_worker = await rows(
        app,
        "SELECT count(*) FROM webhook_delivery WHERE status = 'delivered' AND attempts = 1",
    )
    assert by_worker == [(len(events) * len(paths),)]


async def test_a_slow_receiver_does_not_hold_up_the_others(
    scene: Scene, receiver: Receiver
) -> None:
    app = scene.app
    for path in ("/slow", "/fast"):
        _, receiver.secrets[path] = await subscribe(app, scene.hub, receiver.url(path), [DECIDED])
    receiver.answer = lambda path: Answer(delay=2.0 if path == "/slow" else 0)
    for n in range(6):
        await scene.decided(n=n)
    settings = allowing_localhost(
        app.state.settings, webhook_poll_seconds=0.05, webhook_concurrency_per_subscription=1
    )
    stop = asyncio.Event()
    running = asyncio.create_task(worker(app, settings).run(stop))
    try:
        async with asyncio.timeout(1.8):
            while len(receiver.at("/fast")) < 6:
                await asyncio.sleep(0.02)
        # One at a time to the slow one: its first is still being answered.
        assert len(receiver.at("/slow")) == 1
        assert max(receiver.in_flight.values(), default=0) <= 1
    finally:
        stop.set()
        await running


async def test_a_receiver_that_does_not_answer_in_time_is_a_timeout(
    scene: Scene, receiver: Receiver
) -> None:
    subscription, _ = await subscribe(scene.app, scene.hub, receiver.url("/hub"), [DECIDED])
    receiver.answer = lambda path: Answer(delay=1.0)
    await scene.decided()
    settings = allowing_localhost(scene.app.state.settings, webhook_timeout_seconds=0.3)
    [outcome] = await worker(scene.app, settings).deliver_due()
    assert outcome.outcome.value == "timeout"
    assert outcome.latency_ms < 900
    assert await delivery_rows(scene.app, subscription) == [("pending", 1)]


# --- safe outbound calls ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("169.254.10.10", "link-local"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "CGNAT"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),  # noqa: S104
        ("240.0.0.1", "reserved"),
        ("::ffff:10.0.0.1", "IPv4-mapped"),
        ("::ffff:127.0.0.1", "IPv4-mapped"),
        ("64:ff9b::7f00:1", "NAT64"),  # 127.0.0.1 through a NAT64 gateway
        ("64:ff9b::a9fe:a9fe", "NAT64"),  # 169.254.169.254
        ("64:ff9b:1::a00:1", "NAT64"),  # the operator's own NAT64 prefix
        ("2002:a00:1::1", "6to4"),  # 10.0.0.1
        ("64:ff9b::5db8:d822", None),  # 93.184.216.34, a public address
        ("fc00::1", "private"),
        ("93.184.216.34", None),
        ("2606:4700::1111", None),
        ("::ffff:93.184.216.34", None),
    ],
)
def test_which_addresses_are_refused(address: str, refused: str | None) -> None:
    why = refusal(ipaddress.ip_address(address))
    if refused is None:
        assert why is None
    else:
        assert why is not None and refused in why


def test_the_allow_list_lets_an_operator_name_an_address() -> None:
    allowed = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128")]
    assert refusal(ipaddress.ip_address("10.9.9.9"), allowed) is None
    assert refusal(ipaddress.ip_address("::1"), allowed) is None
    assert refusal(ipaddress.ip_address("::ffff:10.0.0.1"), allowed) is None
    assert refusal(ipaddress.ip_address("127.0.0.1"), allowed) is not None


async def test_destinations_are_checked_by_form_and_by_address() -> None:
    development = settings_for("sqlite+aiosqlite:///unused.db")
    production = settings_for(
        "sqlite+aiosqlite:///unused.db",
        environment="production",
        signing_key="a-production-signing-key-0123456789-abcdef",
    )
    for url in ("ftp://example.org/", "https:///nohost", "https://user:pw@example.org/"):
        with pytest.raises(UnsafeDestination):
            parse_destination(development, url)
    assert parse_destination(development, "http://example.org/x") == ("http", "example.org", 80)
    with pytest.raises(UnsafeDestination, match="HTTPS"):
        parse_destination(production, "http://example.org/")
    assert parse_destination(production, "https://example.org:8443/") == (
        "https",
        "example.org",
        8443,
    )
    for url in ("https://127.0.0.1/", "https://169.254.169.254/latest", "https://10.0.0.7/"):
        with pytest.raises(UnsafeDestination):
            await check_destination(development, url)
    with pytest.raises(UnsafeDestination, match="loopback"):
        await check_destination(development, "https://localhost:8443/")
    await check_destination(allowing_localhost(development), "http://127.0.0.1:9/hook")
    with pytest.raises(ValidationError, match="not an address or network"):
        Settings(_env_file=None, webhook_allowed_networks=["not-a-network"])  # type: ignore[call-arg]


async def test_sends_to_forbidden_addresses_are_refused_attempts(
    scene: Scene, receiver: Receiver
) -> None:
    app = scene.app
    subscriptions = [
        (await subscribe(app, scene.hub, url, [DECIDED]))[0]
        for url in (
            receiver.url("/no-allow-list"),
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.1/hook",
            f"http://[::ffff:127.0.0.1]:{receiver.port}/mapped",
        )
    ]
    await scene.decided()
    # The app's own settings: no allow-list.
    outcomes = await Worker(app.state.session_factory, app.state.settings).deliver_due()
    assert [o.outcome.value for o in outcomes] == ["refused"] * 4
    assert receiver.received == []
    for subscription in subscriptions:
        [(_, outcome, status, error, _, _)] = await attempts_of(app, subscription)
        assert (outcome, status) == ("refused", None)
        assert "does not call it" in str(error)


async def test_redirects_are_not_followed(scene: Scene, receiver: Receiver) -> None:
    subscription, _ = await subscribe(scene.app, scene.hub, receiver.url("/hub"), [DECIDED])
    receiver.answer = lambda path: Answer(
        status=307, headers={"location": receiver.url("/elsewhere")}, body=b""
    )
    await scene.decided()
    [outcome] = await worker(scene.app).deliver_due()
    assert (outcome.outcome.value, outcome.status_code) == ("http_error", 307)
    assert "redirects are not followed" in str(outcome.error)
    assert [r.path for r in receiver.received] == ["/hub"]
    assert await delivery_rows(scene.app, subscription) == [("pending", 1)]


async def test_only_a_short_excerpt_of_an_answer_is_read(scene: Scene, receiver: Receiver) -> None:
    subscription, _ = await subscribe(scene.app, scene.hub, receiver.url("/hub"), [DECIDED])
    receiver.answer = lambda path: Answer(status=500, body=b"x" * (64 * 1024 * 1024))
    await scene.decided()
    [outcome] = await worker(scene.app).deliver_due()
    assert outcome.outcome.value == "http_error"
    assert outcome.excerpt == "x" * 200
    [(_, _, status, _, excerpt, _)] = await attempts_of(scene.app, subscription)
    assert (status, excerpt) == (500, "x" * 200)
    for _ in range(50):
        if receiver.unfinished_writes:
            break
        await asyncio.sleep(0.05)
    assert receiver.unfinished_writes == 1, "the rest of the answer was never downloaded"


# --- failing, disabled, replayed, pruned ------------------------------------------------------


async def test_a_subscription_failing_for_three_days_is_disabled(
    scene: Scene, receiver: Receiver, client: httpx.AsyncClient
) -> None:
    app = scene.app
    subscription, _ = await subscribe(app, scene.hub, receiver.url("/hub"), [DECIDED])
    receiver.answer = lambda path: Answer(status=500, body=b"down")
    await scene.decided(n=1)
    deliverer = worker(app)
    [first] = await deliverer.deliver_due()
    assert first.outcome.value == "http_error"
    status, failing_since, reason = await subscription_state(app, subscription)
    assert (status, reason) == ("active", None) and failing_since is not None

    await move_back(app, "webhook_subscription", "failing_since", subscription, timedelta(hours=73))
    await scene.decided(n=2)
    await deliverer.deliver_due(now=utcnow() + timedelta(hours=1))
    status, _, reason = await subscription_state(app, subscription)
    assert status == "disabled"
    assert "72 hours" in reason and "http_error" in reason
    # Its pending deliveries fail with it (the owner replays them once it is fixed).
    assert [status for status, _ in await delivery_rows(app, subscription)] == ["failed"] * 2

    # Nothing more is fanned out or sent to it, and it cannot be replayed while disabled.
    await scene.decided(n=3)
    assert await deliverer.deliver_due(now=utcnow() + timedelta(hours=2)) == []
    assert len(await delivery_rows(app, subscription)) == 2
    response = await client.post(
        f"/v1/webhooks/{subscription}/replay",
        json={"since": "2020-01-01T00:00:00Z"},
        headers=scene.hub_headers,
    )
    assert response.status_code == 409, response.text


async def test_replay_sends_an_event_or_a_range_again_with_the_same_id(
    scene: Scene, receiver: Receiver, client: httpx.AsyncClient, world: World
) -> None:
    app = scene.app
    first = await scene.decided(n=1)
    # Fanned out before the subscription existed: nobody got it.
    await worker(app).deliver_due()
    subscription, secret = await subscribe(app, scene.hub, receiver.url("/hub"), [DECIDED])
    receiver.secrets["/hub"] = secret
    second = await scene.decided(n=2)
    await worker(app).deliver_due()
    assert [r.webhook_id for r in receiver.received] == [message_id(second)]

    replayed = await client.post(
        f"/v1/webhooks/{subscription}/replay", json={"event_id": second}, headers=scene.hub_headers
    )
    assert expect(replayed, 202) == {"queued": 1}
    await worker(app).deliver_due()
    assert [r.webhook_id for r in receiver.received] == [message_id(second)] * 2

    since = (utcnow() - timedelta(hours=1)).isoformat()
    ranged = await client.post(
        f"/v1/webhooks/{subscription}/replay", json={"since": since}, headers=scene.hub_headers
    )
    assert expect(ranged, 202) == {"queued": 2}
    await worker(app).deliver_due()
    assert Counter(r.webhook_id for r in receiver.received) == {
        message_id(second): 3,
        message_id(first): 1,
    }
    assert all(r.verified for r in receiver.received)

    # Someone else's subscription does not exist for them; bad bodies are 422s.
    _, stranger = await hub_client(world)
    other = await client.post(
        f"/v1/webhooks/{subscription}/replay", json={"event_id": second}, headers=stranger
    )
    assert other.status_code == 404
    for body in ({}, {"event_id": second, "since": since}, {"since": since, "until": since}):
        bad = await client.post(
            f"/v1/webhooks/{subscription}/replay", json=body, headers=scene.hub_headers
        )
        assert bad.status_code == 422, body
    unknown = await client.post(
        f"/v1/webhooks/{subscription}/replay",
        json={"event_id": str(uuid.uuid4())},
        headers=scene.hub_headers,
    )
    assert unknown.status_code == 404


async def test_old_delivered_events_are_pruned(scene: Scene, receiver: Receiver) -> None:
    app = scene.app
    await subscribe(app, scene.hub, receiver.url("/hub"), [DECIDED])
    done = await scene.decided(n=1)
    owed = await scene.decided(n=2)
    recent = await scene.decided(n=3)
    receiver.answer = lambda path: Answer()
    deliverer = worker(app)
    await deliverer.deliver_due()
    # `owed` is still owed (as if its receiver were down), the other two delivered.
    async with app.state.session_factory() as session:
        from sqlalchemy import update

        from app.models.webhook import WebhookDelivery

        await session.exec(
            update(WebhookDelivery)
            .where(WebhookDelivery.event_id == uuid.UUID(owed))  # type: ignore[arg-type]
            .values(status="pending", next_attempt_at=utcnow() + timedelta(days=1))
        )
        await session.commit()
    for event in (done, owed):
        await move_back(app, "outbox_event", "published_at", event, timedelta(days=31))
    unpublished = await emit(
        app, "case.opened", kind=SubjectKind.case, subject_id=str(uuid.uuid4())
    )
    await deliverer.sweep(utcnow())
    left = {str(event_id) for (event_id,) in await read(app, select(OutboxEvent.id))}
    # (The sweep may also have recorded events of its own, such as overdue reviews.)
    assert left & {done, owed, recent, unpublished} == {owed, recent, unpublished}
    assert (
        await read(app, select(WebhookAttempt.id).where(WebhookAttempt.event_id == uuid.UUID(done)))
        == []
    )


# --- the retry schedule --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(1, 5), (2, 10), (3, 20), (4, 40), (10, 2560), (13, 20480), (14, 21600), (40, 21600)],
)
def test_each_retry_may_wait_twice_as_long_up_to_six_hours(attempt: int, ceiling: float) -> None:
    assert retry_ceiling(attempt, settings_for("sqlite+aiosqlite:///unused.db")) == ceiling


def test_the_schedule_spans_the_retry_period_and_ends_at_its_deadline() -> None:
    settings = settings_for("sqlite+aiosqlite:///unused.db")
    queued = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    deadline = queued + timedelta(hours=72)
    for seed in range(5):
        rng = random.Random(seed)
        at, tries = queued, 1
        while (following := next_attempt(queued, at, tries, settings, rng)) is not None:
            assert at < following <= deadline
            at, tries = following, tries + 1
        assert at == deadline, "the last try is at the deadline"
        assert 20 <= tries <= 80
    assert next_attempt(queued, deadline, 30, settings) is None
    short = settings_for("sqlite+aiosqlite:///unused.db", webhook_retry_hours=1)
    assert retry_ceiling(20, short) == 450


# --- the worker in `liaison serve`, and the metrics ----------------------------------------------


async def test_serve_runs_a_worker_that_stops_with_it(
    scene: Scene, receiver: Receiver, database: DatabaseUnderTest
) -> None:
    _, receiver.secrets["/hub"] = await subscribe(
        scene.app, scene.hub, receiver.url("/hub"), [DECIDED]
    )
    event = await scene.decided()
    settings = settings_for(
        database.url,
        webhook_worker_in_serve=True,
        webhook_allowed_networks=["127.0.0.1/32"],
        webhook_poll_seconds=0.05,
    )
    served = create_app(settings)
    async with LifespanManager(served):
        async with asyncio.timeout(10):
            while (
                await read(
                    served, select(WebhookDelivery.id).where(WebhookDelivery.status != "delivered")
                )
                or not receiver.received
            ):
                await asyncio.sleep(0.05)
        transport = httpx.ASGITransport(app=served)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            metrics = (await http.get("/metrics")).text
    assert [r.webhook_id for r in receiver.received] == [message_id(event)]
    assert receiver.received[0].verified
    assert 'liaison_webhook_attempts_total{outcome="delivered"} 1.0' in metrics
    assert "liaison_webhook_pending_deliveries 0.0" in metrics
    assert "liaison_webhook_unpublished_events 0.0" in metrics
    assert "liaison_webhook_delivery_latency_seconds_count 1.0" in metrics


async def test_metrics_show_the_queue(scene: Scene, client: httpx.AsyncClient) -> None:
    await subscribe(scene.app, scene.hub, "http://10.0.0.1/", [DECIDED])
    await scene.decided(occurred_at=utcnow() - timedelta(minutes=10))
    await scene.decided()
    # Those two, and the `referral.received` the scene's referral wrote when it was posted.
    unpublished = await read(
        scene.app, select(OutboxEvent.type).where(col(OutboxEvent.published_at).is_(None))
    )
    assert sorted(t for (t,) in unpublished) == [DECIDED, DECIDED, "referral.received"]
    text = (await client.get("/metrics")).text
    assert "liaison_webhook_unpublished_events 3.0" in text
    age = next(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("liaison_webhook_oldest_undelivered_event_age_seconds ")
    )
    assert 590 < age < 900


# --- the worker keeps going; `liaison deliver` ---------------------------------------------------


async def test_a_worker_waits_out_a_database_outage(scene: Scene, receiver: Receiver) -> None:
    _, receiver.secrets["/hub"] = await subscribe(
        scene.app, scene.hub, receiver.url("/hub"), [DECIDED]
    )
    event = await scene.decided()
    real = scene.app.state.session_factory
    outage = {"refused": 0}

    def during_outage() -> Any:
        if outage["refused"] < 3:
            outage["refused"] += 1
            raise ConnectionRefusedError("the database is restarting")
        return real()

    settings = allowing_localhost(scene.app.state.settings, webhook_poll_seconds=0.05)
    stop = asyncio.Event()
    running = asyncio.create_task(Worker(during_outage, settings).run(stop))  # type: ignore[arg-type]
    try:
        async with asyncio.timeout(15):
            while not receiver.received:
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await running
    assert outage["refused"] == 3
    assert [r.webhook_id for r in receiver.received] == [message_id(event)]


async def test_liaison_deliver_delivers_until_sigterm(
    scene: Scene, receiver: Receiver, database: DatabaseUnderTest
) -> None:
    _, receiver.secrets["/hub"] = await subscribe(
        scene.app, scene.hub, receiver.url("/hub"), [DECIDED]
    )
    event = await scene.decided()
    env = {
        **os.environ,
        "LIAISON_DATABASE_URL": database.url,
        "LIAISON_SIGNING_KEY": TEST_SIGNING_KEY,
        "LIAISON_ENVIRONMENT": "test",
        "LIAISON_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.1/32"]',
        "LIAISON_WEBHOOK_POLL_SECONDS": "0.1",
    }
    command = [str(Path(sys.executable).parent / "liaison"), "deliver"]
    process = await asyncio.create_subprocess_exec(
        *command,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(30):
            while not receiver.received:
                await asyncio.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            _, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert [r.webhook_id for r in receiver.received] == [message_id(event)]
    assert receiver.received[0].verified
