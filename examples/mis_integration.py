"""Push a school's register export to Liaison: the roster, then the week's marks.

An MIS integration in miniature. It reads a register export (one row per pupil per
session, as register_export.csv beside this file), upserts the pupils, pushes the marks as
NDJSON with an Idempotency-Key (a retried or repeated push is stored once), tries again when
Liaison answers 503 (after the Retry-After it gives), and prints the absence flags raised.

    python examples/mis_integration.py examples/register_export.csv

Settings come from the environment: LIAISON_URL (default http://127.0.0.1:8000),
LIAISON_CLIENT_ID and LIAISON_CLIENT_SECRET (default: the demo MIS client of scripts/demo).
Needs httpx (pip install httpx).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

ATTEMPTS = 5


def uk_date(text: str) -> str:
    """Exports write dates as 23/11/2026; Liaison takes ISO 8601 (2026-11-23)."""
    return datetime.strptime(text, "%d/%m/%Y").date().isoformat()


def read_export(path: str) -> tuple[str, list[dict], list[dict]]:
    """The school's code, its pupils and their marks, from the export's columns."""
    pupils: dict[str, dict] = {}
    marks = []
    with open(path, newline="", encoding="utf-8-sig") as export:
        for row in csv.DictReader(export):
            pupils[row["Pupil ID"]] = {
                "mis_id": row["Pupil ID"],
                "upn": row["UPN"] or None,
                "given_name": row["Forename"],
                "family_name": row["Surname"],
                "date_of_birth": uk_date(row["DOB"]),
                "year_group": row["Year"],
            }
            marks.append(
                {
                    "school_code": row["URN"],
                    "mis_id": row["Pupil ID"],
                    "date": uk_date(row["Date"]),
                    "session": row["Session"],
                    "code": row["Mark"],
                }
            )
    return marks[0]["school_code"], list(pupils.values()), marks


def retry_after(response: httpx.Response) -> float:
    """Seconds to wait: Retry-After is a number of seconds or an HTTP date."""
    value = response.headers.get("Retry-After", "5")
    if value.isdigit():
        return float(value)
    return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())


def send(http: httpx.Client, method: str, url: str, **kwargs) -> httpx.Response:
    """The request, sent again (unchanged, Idempotency-Key and all) while Liaison answers
    503 or the connection fails; any other error is raised."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            response = http.request(method, url, **kwargs)
            if response.status_code != 503 or attempt == ATTEMPTS:
                return response.raise_for_status()
            wait, why = retry_after(response), "503 Service Unavailable"
        except httpx.TransportError as error:
            if attempt == ATTEMPTS:
                raise
            wait, why = 2.0**attempt, repr(error)
        print(f"{method} {url}: {why}; trying again in {wait:.0f} s", file=sys.stderr)
        time.sleep(wait)


def every(http: httpx.Client, path: str, **params) -> list[dict]:
    """Every item of a paginated list."""
    items, params = [], {**params, "limit": 200}
    while True:
        page = send(http, "GET", path, params=params).json()
        items += page["items"]
        if not page["next_cursor"]:
            return items
        params["cursor"] = page["next_cursor"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", help="the register export (CSV)")
    parser.add_argument("--url", default=os.environ.get("LIAISON_URL", "http://127.0.0.1:8000"))
    args = parser.parse_args()
    client_id = os.environ.get("LIAISON_CLIENT_ID", "demo-mis")
    client_secret = os.environ.get("LIAISON_CLIENT_SECRET", "demo-mis-secret-for-demo-only")
    school_code, pupils, marks = read_export(args.export)

    with httpx.Client(base_url=args.url, timeout=120) as http:
        form = {"grant_type": "client_credentials"}
        token = send(http, "POST", "/oauth/token", data=form, auth=(client_id, client_secret))
        http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        school = next(s for s in every(http, "/v1/schools") if s["code"] == school_code)

        roster = send(
            http,
            "PUT",
            f"/v1/schools/{school['id']}/pupils",
            params={"mode": "partial"},  # "full" would also take pupils missing here off roll
            json={"pupils": pupils},
        ).json()
        print("roster: {received} received, {created} created, {updated} updated, "
              "{unchanged} unchanged".format(**roster))  # fmt: skip
        for rejected in roster["rejected"]:
            print(f"  pupil {pupils[rejected['index']]['mis_id']}: {rejected['reason']}")

        body = "".join(json.dumps(mark) + "\n" for mark in marks).encode()
        # The same marks get the same key: sent twice, they are stored once and answered alike.
        key = f"register-{school_code}-{hashlib.sha256(body).hexdigest()[:32]}"
        headers = {"Content-Type": "application/x-ndjson", "Idempotency-Key": key}
        pushed = send(http, "POST", "/v1/attendance/marks", content=body, headers=headers)
        result = pushed.json()
        replayed = " (already pushed: the first answer)" if pushed.headers.get(
            "Idempotent-Replayed") == "true" else ""  # fmt: skip
        print("marks: {received} received, {created} created, {updated} updated, "
              "{unchanged} unchanged".format(**result) + replayed)  # fmt: skip
        for rejected in result["rejected"]:
            print(f"  mark {rejected['index']} {marks[rejected['index']]}: {rejected['reason']}")

        ours = {p["id"]: p["mis_id"] for p in every(http, "/v1/pupils", school_id=school["id"])}
        pushed_ids = {p["mis_id"] for p in pupils}
        for flag in every(http, "/v1/attendance/flags", school_id=school["id"], status="open"):
            if ours.get(flag["pupil_id"]) in pushed_ids:
                evidence = json.dumps(flag["evidence"])
                print(f"flag raised: {ours[flag['pupil_id']]} {flag['kind']} {evidence}")


if __name__ == "__main__":
    main()
