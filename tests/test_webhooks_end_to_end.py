"""Webhooks end to end, through the API alone: a hub subscribes (its secret shown once),
posts a referral, a practitioner decides it, a delivery worker sends the event to a real
local HTTP receiver, and the receiver verifies the signature with `standardwebhooks` and the
secret the hub was given. Another LA's hub, subscribed to the same type, receives nothing;
a later rotation signs with both secrets while the old one is in its grace period."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from tests.builders.api import created, expect, read_with_etag
from tests.builders.casework import casework, hub, referral_body
from tests.builders.deliveries import Receiver, allowing_localhost, worker
from tests.builders.referrals import decision
from tests.builders.schools import roll_row
from tests.builders.webhooks import WEBHOOKS
from tests.conftest import World

DECIDED = "referral.decided"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.stop()


@pytest.fixture
def local_receivers_allowed(fresh_app: FastAPI) -> Iterator[None]:
    """The operator's allow-list names the loopback receiver (the tests' only host)."""
    original = fresh_app.state.settings
    fresh_app.state.settings = allowing_localhost(original)
    yield
    fresh_app.state.settings = original


@pytest.mark.usefixtures("local_receivers_allowed")
async def test_a_hub_learns_of_its_decision_signed_and_another_la_learns_nothing(
    client: httpx.AsyncClient, world: World, receiver: Receiver
) -> None:
    work = await casework(world, client)
    hub_headers = await hub(world)
    other_la_hub = await world.client_headers("referrals:read referrals:write", la_code="303")

    mine = await created(
        client, WEBHOOKS, {"url": receiver.url("/hub"), "event_types": [DECIDED]}, hub_headers
    )
    assert mine["secret"].startswith("whsec_")
    receiver.secrets["/hub"] = mine["secret"]
    theirs = await created(
        client,
        WEBHOOKS,
        {"url": receiver.url("/other-la"), "event_types": [DECIDED]},
        other_la_hub,
    )
    receiver.secrets["/other-la"] = theirs["secret"]

    sent = await created(
        client,
        "/v1/referrals",
        referral_body({"upn": roll_row(0)["upn"], "school_code": work.school["code"]}),
        hub_headers,
    )
    _, etag = await read_with_etag(client, f"/v1/referrals/{sent['id']}", work.headers)
    expect(
        await client.post(
            f"/v1/referrals/{sent['id']}/decision",
            json=decision("decline", "threshold_not_met"),
            headers={**work.headers, "If-Match": etag},
        )
    )

    outcomes = await worker(world.app).deliver_due()
    assert [o.outcome.value for o in outcomes] == ["delivered"]
    [got] = receiver.received
    assert got.path == "/hub"
    assert got.verified, "standardwebhooks verifies it with the secret the hub was given"
    assert got.event_type == DECIDED
    assert got.data["referral_id"] == sent["id"]
    assert (got.data["decision"], got.data["reason_category"]) == (
        "decline",
        "threshold_not_met",
    )
    # The attempt is on record for the hub to read.
    attempts = expect(await client.get(f"{WEBHOOKS}/{mine['id']}/attempts", headers=hub_headers))
    [attempt] = attempts["items"]
    assert (attempt["outcome"], attempt["status_code"]) == ("delivered", 200)
    assert attempt["webhook_id"] == got.webhook_id
    # The other LA's hub may not even see that the hub's subscription exists.
    hidden = await client.get(f"{WEBHOOKS}/{mine['id']}/attempts", headers=other_la_hub)
    assert hidden.status_code == 404

    # Replayed on request: the same message id, verified again.
    replayed = await client.post(
        f"{WEBHOOKS}/{mine['id']}/replay",
        json={"event_id": attempt["event_id"]},
        headers=hub_headers,
    )
    assert replayed.status_code == 202, replayed.text
    await worker(world.app).deliver_due()
    assert [r.webhook_id for r in receiver.received] == [got.webhook_id, got.webhook_id]
    assert all(r.verified for r in receiver.received)
