"""The example clients in examples/ run against a live demo server as a developer runs them:
the MIS integration pushes its register export and prints the flags raised, and the hub
posts a referral that a practitioner decides while it waits."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.builders.demo import DemoServer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EXPORT = EXAMPLES / "register_export.csv"
PRACTITIONER = "practitioner@demo.liaison"


def example(name: str, *args: str, demo: DemoServer) -> subprocess.Popen[str]:
    """The example in its own process, configured as its docstring says."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIAISON_")}
    return subprocess.Popen(  # noqa: S603
        [sys.executable, "-W", "error", str(EXAMPLES / name), *args],
        env={**env, "LIAISON_URL": demo.url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(process: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def test_examples_are_short_enough_to_copy() -> None:
    for script in EXAMPLES.glob("*.py"):
        assert len(script.read_text().splitlines()) < 150, script.name


def test_the_mis_integration_pushes_its_export_once_and_prints_the_flags(
    demo: DemoServer,
) -> None:
    status, out, err = finished(example("mis_integration.py", str(EXPORT), demo=demo))
    assert status == 0, err
    assert out.splitlines() == [
        "roster: 4 received, 4 created, 0 updated, 0 unchanged",
        "marks: 40 received, 40 created, 0 updated, 0 unchanged",
        'flag raised: 2001-0104 unexplained_absence {"consecutive_unexplained_sessions": 3}',
    ]
    # Run again, it sends the same marks under the same Idempotency-Key: answered as before.
    status, again, err = finished(example("mis_integration.py", str(EXPORT), demo=demo))
    assert status == 0, err
    assert again.splitlines() == [
        "roster: 4 received, 0 created, 0 updated, 4 unchanged",
        "marks: 40 received, 40 created, 0 updated, 0 unchanged (already pushed: the first answer)",
        'flag raised: 2001-0104 unexplained_absence {"consecutive_unexplained_sessions": 3}',
    ]
    # What it pushed is what Liaison holds: a week of ten sessions, three of them N.
    headers = {"Authorization": f"Bearer {demo.token(PRACTITIONER)}"}
    school = demo.school_id("990001")
    [pupil] = demo.call(
        "GET",
        "/v1/pupils",
        params={"school_id": school, "upn": "A999200125104"},
        headers=headers,
    ).json()["items"]
    assert (pupil["mis_id"], pupil["given_name"], pupil["date_of_birth"]) == (
        "2001-0104", "Noah", "2018-06-07",
    )  # fmt: skip
    week = demo.call(
        "GET",
        f"/v1/pupils/{pupil['id']}/attendance",
        params={"from": "2026-11-23", "to": "2026-11-27"},
        headers=headers,
    ).json()
    assert (week["possible_sessions"], week["unauthorised_absence_sessions"]) == (10, 3)


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), EXAMPLES / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_mis_integration_waits_as_retry_after_says_and_resends_the_same_push(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mis = load("mis_integration.py")
    waits: list[float] = []
    monkeypatch.setattr(mis.time, "sleep", waits.append)
    answers = [
        httpx.Response(503, headers={"Retry-After": "7"}),
        httpx.Response(503, headers={"Retry-After": "1"}),
        httpx.Response(200, json={"received": 1}),
    ]
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.pop(0)

    with httpx.Client(transport=httpx.MockTransport(answer), base_url="http://liaison") as http:
        headers = {"Idempotency-Key": "register-1", "Content-Type": "application/x-ndjson"}
        pushed = mis.send(http, "POST", "/v1/attendance/marks", content=b"{}\n", headers=headers)
    assert pushed.json() == {"received": 1}
    assert waits == [7.0, 1.0]
    assert {(r.headers["Idempotency-Key"], r.content) for r in seen} == {("register-1", b"{}\n")}
    assert len(seen) == 3

    # A service that stays down: it gives up after its attempts, with the 503.
    def down(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": "2"})

    waits.clear()
    with (
        httpx.Client(transport=httpx.MockTransport(down), base_url="http://liaison") as http,
        pytest.raises(httpx.HTTPStatusError, match="503"),
    ):
        mis.send(http, "GET", "/v1/schools")
    assert waits == [2.0] * (mis.ATTEMPTS - 1)


def _received(
    demo: DemoServer, headers: dict[str, str], reference: str, hub: subprocess.Popen[str]
) -> dict[str, Any]:
    """The referral the hub sent, once it has arrived."""
    for _ in range(300):
        if hub.poll() is not None:
            raise AssertionError(f"the hub stopped ({hub.returncode}): {hub.communicate()}")
        listed = demo.call("GET", "/v1/referrals", params={"status": "received"}, headers=headers)
        assert listed.status_code == 200, listed.text
        mine = [r for r in listed.json()["items"] if r["external_reference"] == reference]
        if mine:
            return mine[0]
        time.sleep(0.2)
    raise AssertionError(f"the hub's referral {reference} never arrived")


def _a_pupil_upn(demo: DemoServer, headers: dict[str, str]) -> str:
    school = demo.school_id("990003")
    pupils = demo.call(
        "GET", "/v1/pupils", params={"school_id": school, "limit": 2}, headers=headers
    ).json()["items"]
    upn: str = pupils[1]["upn"]
    return upn


def test_the_hub_waits_for_the_decision_and_prints_it(demo: DemoServer) -> None:
    headers = {"Authorization": f"Bearer {demo.token(PRACTITIONER)}"}
    upn = _a_pupil_upn(demo, headers)
    reference = f"HUB-TEST-{uuid.uuid4().hex[:6]}"
    args = ["--upn", upn, "--school-code", "990003", "--reference", reference]
    hub = example("hub.py", *args, "--interval", "0.2", "--timeout", "120", demo=demo)
    try:
        referral = _received(demo, headers, reference, hub)
        # The practitioner takes it into review, then declines it, signposting a service.
        reviewed = demo.call(
            "POST",
            f"/v1/referrals/{referral['id']}/review",
            headers={**headers, "If-Match": f'"{referral["version"]}"'},
        )
        assert reviewed.status_code == 200, reviewed.text
        service = demo.call("GET", "/oruk/services").json()["contents"][0]
        decided = demo.call(
            "POST",
            f"/v1/referrals/{referral['id']}/decision",
            headers={**headers, "If-Match": reviewed.headers["ETag"]},
            json={
                "decision": "decline",
                "reason": "Needs are being met by the school's pastoral team.",
                "reason_category": "needs_met_elsewhere",
                "signposted_service_ids": [service["id"]],
            },
        )
        assert decided.status_code == 200, decided.text
        status, out, err = finished(hub)
    finally:
        hub.kill()
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0] == f"referral {referral['id']} ({reference}): received"
    assert "status: declined" in lines
    assert lines[lines.index("status: declined") + 1 :] == [
        "decision: decline",
        "reason: Needs are being met by the school's pastoral team.",
        "reason category: needs_met_elsewhere",
        f"signposted to: {service['name']}",
    ]


def test_the_hub_gives_up_when_no_decision_comes_in_time(demo: DemoServer) -> None:
    headers = {"Authorization": f"Bearer {demo.token(PRACTITIONER)}"}
    args = ["--upn", _a_pupil_upn(demo, headers), "--school-code", "990003"]
    status, out, err = finished(example("hub.py", *args, "--interval", "0.2", "--timeout",
                                        "1", demo=demo))  # fmt: skip
    assert status == 2, err
    assert out.startswith("referral ") and out.rstrip().endswith(": received")
    assert err == "no decision after 1 s: still received\n"
