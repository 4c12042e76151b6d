"""Refer a child to early help through Liaison, then wait for the decision and print it.

A multi-agency hub (MASH / front door) in miniature. It gets a token with Authlib (client
credentials; Authlib fetches a new one by itself when it expires), posts a referral with
its own reference (sending the same reference again never makes a second referral), polls
the referral until a practitioner decides it, and prints the decision and its reason.

    python examples/hub.py --upn K999200124001 --school-code 990001

Settings come from the environment: LIAISON_URL (default http://127.0.0.1:8000),
LIAISON_CLIENT_ID and LIAISON_CLIENT_SECRET (default: the demo hub client of scripts/demo).
Needs Authlib and requests (pip install authlib requests).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from datetime import date

import requests
from authlib.integrations.requests_client import OAuth2Session

ATTEMPTS = 5
DECIDED = {"accepted", "declined", "stepped_up", "redirected", "withdrawn"}


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upn", required=True, help="the child's Unique Pupil Number")
    parser.add_argument("--school-code", required=True, help="the child's school (URN)")
    parser.add_argument("--reference", default=f"HUB-{uuid.uuid4().hex[:8].upper()}",
                        help="the hub's own reference for the referral")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=3600,
                        help="seconds to wait for a decision (default an hour)")  # fmt: skip
    parser.add_argument("--interval", type=float, default=30, help="seconds between polls")
    parser.add_argument("--url", default=os.environ.get("LIAISON_URL", "http://127.0.0.1:8000"))
    return parser.parse_args()


def send(client: OAuth2Session, method: str, url: str, **kwargs) -> requests.Response:
    """The request, sent again while Liaison answers 503 (busy, or its database is down),
    after the Retry-After it gives. Resending the referral is safe: same reference."""
    for attempt in range(1, ATTEMPTS + 1):
        response = client.request(method, url, **kwargs)
        if response.status_code != 503 or attempt == ATTEMPTS:
            return response
        time.sleep(int(response.headers.get("Retry-After", "5")))
    raise AssertionError("unreachable")


def main() -> int:
    args = arguments()
    api = args.url.rstrip("/")
    client = OAuth2Session(
        client_id=os.environ.get("LIAISON_CLIENT_ID", "demo-hub"),
        client_secret=os.environ.get("LIAISON_CLIENT_SECRET", "demo-hub-secret-for-demo-only"),
        token_endpoint=f"{api}/oauth/token",
        token_endpoint_auth_method="client_secret_basic",
        grant_type="client_credentials",
        default_timeout=30,
    )
    client.fetch_token()

    referral = {
        "external_reference": args.reference,
        "children": [{"upn": args.upn, "school_code": args.school_code}],
        "concerns": ["attendance"],
        "level_of_need": "targeted_early_help",
        "urgency": "routine",
        "consent": {"given": True, "given_by": "Parent", "date": date.today().isoformat()},
        "summary": "Attendance has fallen since half term; the family asked for support.",
    }
    answer = send(client, "POST", f"{api}/v1/referrals", json=referral)
    if answer.status_code not in (200, 201):  # 200: this reference was sent before
        print(f"referral refused ({answer.status_code}): {answer.text}", file=sys.stderr)
        return 1
    referral = answer.json()
    print(f"referral {referral['id']} ({args.reference}): {referral['status']}", flush=True)

    deadline = time.monotonic() + args.timeout
    status = referral["status"]
    while referral["status"] not in DECIDED:
        if time.monotonic() >= deadline:
            print(f"no decision after {args.timeout:g} s: still {status}", file=sys.stderr)
            return 2
        time.sleep(args.interval)
        answer = send(client, "GET", f"{api}/v1/referrals/{referral['id']}")
        answer.raise_for_status()
        referral = answer.json()
        if referral["status"] != status:
            status = referral["status"]
            print(f"status: {status}", flush=True)

    decision = referral["decision"]
    if decision is None:  # withdrawn by the hub itself
        print(f"withdrawn: {referral['withdrawal_reason']}")
        return 0
    print(f"decision: {decision['decision']}")
    print(f"reason: {decision['reason']}")
    if decision["reason_category"]:
        print(f"reason category: {decision['reason_category']}")
    for service_id in decision["signposted_service_ids"]:  # the public directory names them
        service = send(client, "GET", f"{api}/oruk/services/{service_id}")
        service.raise_for_status()
        print(f"signposted to: {service.json()['name']}")
    if decision["redirected_to"]:
        print(f"redirected to: {decision['redirected_to']}")
    if decision["case_id"]:
        print(f"case opened: {decision['case_id']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
