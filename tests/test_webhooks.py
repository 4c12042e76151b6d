"""`/v1/webhooks`: a client subscribes for itself and sees its signing secret once; it
changes (with If-Match), disables, re-enables and deletes its subscription; rotation keeps
the old secret signing through the grace period; bad URLs and event types are refused with
422; nobody learns of another's subscription (404), except an LA admin of its own LA's; the
attempts and deliveries are listed for the owner to see why."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import select

from app.models.audit import AuditEvent
from app.models.base import utcnow
from app.models.webhook import AttemptOutcome, DeliveryStatus, WebhookSecret, WebhookSubscription
from app.services import webhook_secrets, webhooks
from tests.builders.api import assert_problem, expect, items, read_with_etag, walk
from tests.builders.casework import HUB_SCOPES
from tests.builders.webhooks import RECEIVER, WEBHOOKS, sent, subscribe
from tests.conftest import World, settings_for

LA, OTHER_LA = "886", "887"


@pytest.fixture
async def hub(world: World) -> dict[str, str]:
    return await world.client_headers(HUB_SCOPES, la_code=LA)


@pytest.fixture
async def other_hub(world: World) -> dict[str, str]:
    return await world.client_headers(HUB_SCOPES, la_code=LA)


async def _signing(application: FastAPI, subscription_id: str, hours: float = 0) -> list[str]:
    """The secrets that sign the subscription's messages `hours` from now."""
    when = utcnow() + timedelta(hours=hours)
    key = uuid.UUID(subscription_id)
    async with application.state.session_factory() as session:
        found = await webhook_secrets.signing_secrets(
            session, application.state.settings, [key], when
        )
    return found[key]


def _unsecret(made: dict[str, Any]) -> dict[str, Any]:
    """A subscription as read back: as made, less the secret."""
    return {k: v for k, v in made.items() if k != "secret"}


# --- create, read, list --------------------------------------------------------------------


async def test_create_shows_the_secret_once_and_stores_it_sealed(
    client: httpx.AsyncClient, fresh_app: FastAPI, hub: dict[str, str]
) -> None:
    response = await client.post(
        WEBHOOKS,
        json={
            "url": RECEIVER,
            "event_types": ["referral.decided", "referral.withdrawn"],
            "description": "Front door decisions",
        },
        headers=hub,
    )
    made = expect(response, 201)
    assert response.headers["Location"] == f"{WEBHOOKS}/{made['id']}"
    assert response.headers["ETag"] == '"1"'
    assert made["secret"].startswith("whsec_")
    assert made["status"] == "active"
    assert made["la_code"] == LA
    assert made["owner"].startswith("client:")
    assert made["event_types"] == ["referral.decided", "referral.withdrawn"]

    read, etag = await read_with_etag(client, f"{WEBHOOKS}/{made['id']}", hub)
    assert "secret" not in read and etag == '"1"'
    assert read == _unsecret(made)
    listed = await items(client, WEBHOOKS, hub)
    assert [w["id"] for w in listed] == [made["id"]]
    assert made["secret"] not in str(listed)

    assert await _signing(fresh_app, made["id"]) == [made["secret"]]
    async with fresh_app.state.session_factory() as session:
        [stored] = (await session.exec(select(WebhookSecret))).all()
        events = (
            await session.exec(select(AuditEvent).where(AuditEvent.action == "webhook.create"))
        ).all()
    assert made["secret"] not in stored.secret and stored.expires_at is None
    [event] = events
    assert event.resource_id == made["id"] and event.la_code == LA
    assert made["secret"] not in str(event.details)
    assert event.details["host"] == "receiver.example.org"


async def test_subscriptions_are_listed_a_page_at_a_time(
    client: httpx.AsyncClient, hub: dict[str, str]
) -> None:
    made = [(await subscribe(client, hub))["id"] for _ in range(3)]
    assert [w["id"] for w in await walk(client, WEBHOOKS, hub, limit=2)] == made
    assert_problem(await client.get(WEBHOOKS, params={"cursor": "nonsense"}, headers=hub), 400)


# --- change, disable, delete ---------------------------------------------------------------


async def test_changes_need_the_current_etag(
    client: httpx.AsyncClient, hub: dict[str, str]
) -> None:
    made = await subscribe(client, hub)
    path = f"{WEBHOOKS}/{made['id']}"
    change = {"url": "https://new.example.org/hook", "event_types": ["referral.received"]}

    assert_problem(await client.patch(path, json=change, headers=hub), 428)
    stale = {**hub, "If-Match": '"7"'}
    assert_problem(await client.patch(path, json=change, headers=stale), 412)
    response = await client.patch(path, json=change, headers={**hub, "If-Match": '"1"'})
    changed = expect(response)
    assert response.headers["ETag"] == '"2"'
    assert changed["url"] == change["url"]
    assert changed["event_types"] == ["referral.received"]
    assert changed["description"] is None
    # The old tag no longer applies.
    assert_problem(
        await client.patch(path, json={"description": "x"}, headers={**hub, "If-Match": '"1"'}),
        412,
    )
    assert_problem(
        await client.patch(path, json={"url": None}, headers={**hub, "If-Match": '"2"'}), 422
    )
    assert_problem(
        await client.patch(path, json={"owner": "client:x"}, headers={**hub, "If-Match": "*"}),
        422,
    )


async def test_disable_and_reenable(
    client: httpx.AsyncClient, fresh_app: FastAPI, hub: dict[str, str]
) -> None:
    made = await subscribe(client, hub)
    path = f"{WEBHOOKS}/{made['id']}"
    disabled = expect(
        await client.patch(path, json={"status": "disabled"}, headers={**hub, "If-Match": '"1"'})
    )
    assert disabled["status"] == "disabled"
    assert disabled["disabled_reason"] and disabled["disabled_at"]

    # As delivery leaves it after days of failures.
    async with fresh_app.state.session_factory() as session:
        row = await session.get(WebhookSubscription, uuid.UUID(made["id"]))
        assert row is not None
        row.failing_since = utcnow() - timedelta(days=3)
        row.disabled_reason = "Every delivery failed for 72 hours."
        session.add(row)
        await session.commit()

    enabled = expect(
        await client.patch(path, json={"status": "active"}, headers={**hub, "If-Match": '"2"'})
    )
    assert enabled["status"] == "active"
    assert enabled["disabled_reason"] is None
    assert enabled["disabled_at"] is None
    assert enabled["failing_since"] is None


async def test_delete_removes_the_subscription_and_its_history(
    client: httpx.AsyncClient, fresh_app: FastAPI, hub: dict[str, str]
) -> None:
    made = await subscribe(client, hub)
    kept = await subscribe(client, hub)
    await sent(fresh_app, made["id"], tries=[(AttemptOutcome.timeout, None)])
    path = f"{WEBHOOKS}/{made['id']}"

    assert_problem(await client.delete(path, headers={**hub, "If-Match": '"5"'}), 412)
    response = await client.delete(path, headers=hub)
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert_problem(await client.get(path, headers=hub), 404)
    assert_problem(await client.delete(path, headers=hub), 404)
    assert [w["id"] for w in await items(client, WEBHOOKS, hub)] == [kept["id"]]
    assert await _signing(fresh_app, made["id"]) == []


# --- secrets -------------------------------------------------------------------------------


async def test_rotation_keeps_the_old_secret_signing_through_the_grace_period(
    client: httpx.AsyncClient, fresh_app: FastAPI, hub: dict[str, str]
) -> None:
    made = await subscribe(client, hub)
    rotate = f"{WEBHOOKS}/{made['id']}/secret/rotate"
    grace = fresh_app.state.settings.webhook_secret_grace_hours

    before = utcnow()
    rotated = expect(await client.post(rotate, headers=hub))
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != made["secret"]
    expires = rotated["previous_expires_at"]
    assert expires is not None
    until = datetime.fromisoformat(expires)
    assert before + timedelta(hours=grace) <= until <= utcnow() + timedelta(hours=grace)

    # Both sign during the grace period, the new one first; then only the new one.
    assert await _signing(fresh_app, made["id"]) == [rotated["secret"], made["secret"]]
    assert await _signing(fresh_app, made["id"], hours=grace + 1) == [rotated["secret"]]
    # Reading the subscription never shows either.
    read = expect(await client.get(f"{WEBHOOKS}/{made['id']}", headers=hub))
    assert rotated["secret"] not in str(read) and made["secret"] not in str(read)

    # With no grace the replaced secret stops at once, and expired ones are cleared away.
    again = expect(await client.post(rotate, json={"grace_hours": 0}, headers=hub))
    assert await _signing(fresh_app, made["id"]) == [again["secret"], made["secret"]]
    third = expect(await client.post(rotate, json={"grace_hours": 2}, headers=hub))
    assert await _signing(fresh_app, made["id"]) == [
        third["secret"],
        again["secret"],
        made["secret"],
    ]
    assert await _signing(fresh_app, made["id"], hours=3) == [third["secret"], made["secret"]]
    async with fresh_app.state.session_factory() as session:
        stored = (await session.exec(select(WebhookSecret))).all()
    # The one retired at once (grace 0) was deleted by the next rotation.
    assert len(stored) == 3

    assert_problem(await client.post(rotate, json={"grace_hours": 24 * 31}, headers=hub), 422)
    assert_problem(await client.post(rotate, json={"grace_hours": -1}, headers=hub), 422)


# --- refused input -------------------------------------------------------------------------

BAD_URLS = [
    "ftp://receiver.example.org/hook",
    "/relative/path",
    "receiver.example.org/hook",
    "https://",
    "https://user:password@receiver.example.org/hook",
    "https://token@receiver.example.org/hook",
    "https://receiver.example.org:99999/hook",
    "https://receiver.example.org/a b",
    "https://receiver.example.org/\tx",
    "https://receiver.example.org/" + "a" * 2000,
    "javascript:alert(1)",
    "",
]


async def test_bad_urls_are_refused(client: httpx.AsyncClient, hub: dict[str, str]) -> None:
    made = await subscribe(client, hub)
    for url in BAD_URLS:
        body = {"url": url, "event_types": ["referral.decided"]}
        problem = assert_problem(await client.post(WEBHOOKS, json=body, headers=hub), 422)
        assert problem["errors"][0]["loc"][:2] == ["body", "url"], (url, problem)
        problem = assert_problem(
            await client.patch(
                f"{WEBHOOKS}/{made['id']}", json={"url": url}, headers={**hub, "If-Match": "*"}
            ),
            422,
        )
        assert problem["errors"][0]["loc"][:2] == ["body", "url"], (url, problem)
    assert await items(client, WEBHOOKS, hub) == [_unsecret(made)]


async def test_production_requires_https() -> None:
    settings = settings_for("sqlite+aiosqlite://", environment="test")
    assert await webhooks.check_url(settings, "http://receiver.example.org/") == (
        "http://receiver.example.org/"
    )
    production = settings.model_copy(update={"environment": "production"})
    assert await webhooks.check_url(production, "https://receiver.example.org/")
    with pytest.raises(webhooks.ValidationFailed) as refused:
        await webhooks.check_url(production, "http://receiver.example.org/")
    assert "https" in str(refused.value.detail)


# Addresses inside the service's own network, the host itself or a cloud's metadata service:
# a subscription is a request Liaison makes on the subscriber's behalf, so these are refused
# when it is made (and again at every send) unless the operator's allow-list names them.
SSRF_URLS = [
    "http://127.0.0.1:8080/hook",
    "http://localhost/hook",
    "http://[::1]/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.5/hook",
    "http://192.168.1.1/hook",
    "http://172.16.0.1/hook",
    "http://100.64.0.1/hook",
    "http://0.0.0.0/hook",
    "http://[::ffff:127.0.0.1]/hook",
]


async def test_urls_inside_private_networks_are_refused(
    client: httpx.AsyncClient, hub: dict[str, str]
) -> None:
    made = await subscribe(client, hub)
    for url in SSRF_URLS:
        body = {"url": url, "event_types": ["referral.decided"]}
        response = await client.post(WEBHOOKS, json=body, headers=hub)
        problem = assert_problem(response, 422, "unsafe-destination")
        assert problem["errors"][0]["loc"] == ["body", "url"], (url, problem)
        response = await client.patch(
            f"{WEBHOOKS}/{made['id']}", json={"url": url}, headers={**hub, "If-Match": "*"}
        )
        assert_problem(response, 422, "unsafe-destination")
    assert await items(client, WEBHOOKS, hub) == [_unsecret(made)]


@pytest.mark.parametrize(
    ("event_types", "detail"),
    [
        (["referral.exploded"], "unknown event type"),
        (["referral.decided", "referral.decided"], "named twice"),
        # A hub (referrals scopes only) could never receive a flag's or a case's events.
        (["referral.decided", "attendance.flag.raised"], "attendance:read"),
        (["case.closed"], "cases:read"),
        ([], None),
    ],
)
async def test_event_types_must_be_known_once_and_receivable(
    client: httpx.AsyncClient, hub: dict[str, str], event_types: list[str], detail: str | None
) -> None:
    body = {"url": RECEIVER, "event_types": event_types}
    problem = assert_problem(await client.post(WEBHOOKS, json=body, headers=hub), 422)
    if detail is not None:
        assert detail in str(problem["errors"]), problem
    assert await items(client, WEBHOOKS, hub) == []


async def test_receivable_types_follow_the_accounts_grant_not_the_token(
    client: httpx.AsyncClient, world: World
) -> None:
    """A token asking for fewer scopes does not narrow what the account may subscribe to:
    delivery judges by the account, as it stands."""
    credentials = await world.api_client(f"{HUB_SCOPES} cases:read", la_code=LA)
    narrow = await world.headers(credentials, scope="referrals:read")
    made = await subscribe(client, narrow, ["case.closed"])
    assert made["event_types"] == ["case.closed"]


# --- who may see what ----------------------------------------------------------------------


async def test_one_client_never_learns_of_anothers_subscription(
    client: httpx.AsyncClient, hub: dict[str, str], other_hub: dict[str, str]
) -> None:
    mine = await subscribe(client, hub)
    path = f"{WEBHOOKS}/{mine['id']}"
    missing = f"{WEBHOOKS}/{uuid.uuid4()}"
    for target in (path, missing):
        assert_problem(await client.get(target, headers=other_hub), 404, "not-found")
        assert_problem(
            await client.patch(
                target, json={"status": "disabled"}, headers={**other_hub, "If-Match": "*"}
            ),
            404,
        )
        assert_problem(await client.delete(target, headers=other_hub), 404)
        assert_problem(await client.post(f"{target}/secret/rotate", headers=other_hub), 404)
        assert_problem(await client.get(f"{target}/attempts", headers=other_hub), 404)
        assert_problem(await client.get(f"{target}/deliveries", headers=other_hub), 404)
    assert await items(client, WEBHOOKS, other_hub) == []
    # Untouched.
    assert expect(await client.get(path, headers=hub))["version"] == 1


async def test_an_la_admin_manages_its_las_subscriptions_and_no_others(
    client: httpx.AsyncClient, world: World, hub: dict[str, str]
) -> None:
    admin = await world.headers(await world.staff("admin", la_code=LA))
    other_admin = await world.headers(await world.staff("admin", la_code=OTHER_LA))
    elsewhere = await world.client_headers(HUB_SCOPES, la_code=OTHER_LA)
    ours = await subscribe(client, hub)
    theirs = await subscribe(client, elsewhere)
    assert ours["la_code"] == LA and theirs["la_code"] == OTHER_LA

    assert [w["id"] for w in await items(client, WEBHOOKS, admin)] == [ours["id"]]
    assert [w["id"] for w in await items(client, WEBHOOKS, other_admin)] == [theirs["id"]]
    path = f"{WEBHOOKS}/{ours['id']}"
    disabled = expect(
        await client.patch(path, json={"status": "disabled"}, headers={**admin, "If-Match": "*"})
    )
    assert disabled["status"] == "disabled"
    assert disabled["disabled_reason"].startswith("Disabled by staff:")
    # The owner sees who disabled it.
    assert expect(await client.get(path, headers=hub))["status"] == "disabled"
    expect(await client.get(f"{path}/attempts", headers=admin))

    # Changing the event types judges them by the owner's grant, not the admin's.
    problem = assert_problem(
        await client.patch(
            path, json={"event_types": ["case.opened"]}, headers={**admin, "If-Match": "*"}
        ),
        422,
    )
    assert "cases:read" in str(problem["errors"])

    for target in (path, f"{path}/attempts", f"{path}/deliveries"):
        assert_problem(await client.get(target, headers=other_admin), 404)
    assert_problem(
        await client.patch(
            path, json={"description": "x"}, headers={**other_admin, "If-Match": "*"}
        ),
        404,
    )
    assert_problem(await client.post(f"{path}/secret/rotate", headers=other_admin), 404)
    assert_problem(await client.delete(path, headers=other_admin), 404)

    response = await client.delete(path, headers=admin)
    assert response.status_code == 204, response.text
    assert await items(client, WEBHOOKS, hub) == []


async def test_staff_who_are_not_admins_cannot_subscribe_and_see_none(
    client: httpx.AsyncClient, world: World, hub: dict[str, str]
) -> None:
    school = await world.school(la_code=LA)
    practitioner = await world.headers(await world.staff("practitioner", schools=[school]))
    manager = await world.headers(await world.staff("manager", la_code=LA))
    mine = await subscribe(client, hub)
    for headers in (practitioner, manager):
        body = {"url": RECEIVER, "event_types": ["referral.decided"]}
        problem = assert_problem(
            await client.post(WEBHOOKS, json=body, headers=headers), 403, "insufficient-scope"
        )
        assert problem["required_scopes"] == ["admin"]
        assert await items(client, WEBHOOKS, headers) == []
        path = f"{WEBHOOKS}/{mine['id']}"
        assert_problem(await client.get(path, headers=headers), 404, "not-found")
        assert_problem(await client.delete(path, headers=headers), 404, "not-found")
    assert_problem(await client.get(WEBHOOKS), 401)


async def test_an_la_admin_may_subscribe_only_to_what_it_could_receive(
    client: httpx.AsyncClient, world: World
) -> None:
    """An admin account reads no casework (`admin` grants no read scope), so none of the
    casework event types is receivable by it."""
    admin = await world.headers(await world.staff("admin", la_code=LA))
    body = {"url": RECEIVER, "event_types": ["referral.received"]}
    problem = assert_problem(await client.post(WEBHOOKS, json=body, headers=admin), 422)
    assert "referrals:read" in str(problem["errors"])


# --- what was sent -------------------------------------------------------------------------


async def test_attempts_are_listed_newest_first_and_filtered(
    client: httpx.AsyncClient, fresh_app: FastAPI, hub: dict[str, str]
) -> None:
    made = await subscribe(client, hub)
    first, _, _ = await sent(
        fresh_app,
        made["id"],
        tries=[
            (AttemptOutcome.connection_error, None),
            (AttemptOutcome.http_error, 503),
            (AttemptOutcome.delivered, 200),
        ],
        status=DeliveryStatus.delivered,
    )
    second, _, _ = await sent(
        fresh_app, made["id"], "referral.withdrawn", tries=[(AttemptOutcome.timeout, None)]
    )
    path = f"{WEBHOOKS}/{made['id']}/attempts"

    listed = await walk(client, path, hub, limit=2)
    assert [(a["event_id"], a["attempt"]) for a in listed] == [
        (str(second.id), 1),
        (str(first.id), 3),
        (str(first.id), 2),
        (str(first.id), 1),
    ]
    newest = listed[1]
    assert newest["webhook_id"] == "msg_" + first.id.hex
    assert newest["outcome"] == "delivered" and newest["status_code"] == 200
    assert newest["latency_ms"] == 43 and newest["response_excerpt"] == "ok"
    assert set(newest) == {
        "id", "attempt", "event_id", "webhook_id", "attempted_at", "latency_ms", "outcome",
        "status_code", "error", "response_excerpt",
    }  # fmt: skip

    only_first = await items(client, path, hub, event_id=str(first.id))
    assert [a["attempt"] for a in only_first] == [3, 2, 1]
    errors = await items(client, path, hub, outcome="http_error")
    assert [(a["event_id"], a["status_code"]) for a in errors] == [(str(first.id), 503)]
    assert await items(client, path, hub, event_id=str(uuid.uuid4())) == []
    assert_problem(await client.get(path, params={"outcome": "exploded"}, headers=hub), 422)
    assert_problem(await client.get(path, params={"event_id": "x"}, headers=hub), 422)

    deliveries = f"{WEBHOOKS}/{made['id']}/deliveries"
    owed = await items(client, deliveries, hub)
    assert [(d["event_id"], d["status"], d["attempts"]) for d in owed] == [
        (str(second.id), "pending", 1),
        (str(first.id), "delivered", 3),
    ]
    assert owed[0]["event_type"] == "referral.withdrawn"
    assert owed[0]["next_attempt_at"] is not None and owed[1]["next_attempt_at"] is None
    assert owed[1]["delivered_at"] is not None
    pending = await items(client, deliveries, hub, status="pending")
    assert [d["webhook_id"] for d in pending] == ["msg_" + second.id.hex]
    assert await items(client, deliveries, hub, status="failed") == []


@pytest.mark.parametrize(
    ("event_type", "kind"),
    [
        ("referral.received", "referral"),
        ("referral.decided", "referral"),
        ("referral.withdrawn", "referral"),
        ("case.opened", "case"),
        ("case.closed", "case"),
        ("case.stepped_up", "case"),
        ("case.review_overdue", "case"),
        ("case.action_overdue", "case"),
        ("attendance.flag.raised", "flag"),
        ("attendance.flag.resolved", "flag"),
        ("signpost.status_changed", "signpost"),
    ],
)
def test_each_event_type_is_about_one_kind_of_subject(event_type: str, kind: str) -> None:
    assert event_type in webhooks.EVENT_TYPES
    assert webhooks.subject_kind(event_type) == kind


def test_an_event_type_of_no_known_family_has_no_subject_kind() -> None:
    with pytest.raises(ValueError):
        webhooks.subject_kind("school.renamed")
