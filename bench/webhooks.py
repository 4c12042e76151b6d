"""Webhook delivery: two `liaison deliver` workers beside a bare httpx loop, in the same run.

A receiver (uvicorn, a process of its own) checks every message's signature with
`standardwebhooks` and notes when each `webhook-id` arrived. On a fresh PostgreSQL database
(`liaison_bench_webhooks`): a school, a hub and the hub's referral (through the API), and
`--subscriptions` subscriptions of the hub to `referral.decided` at the receiver.

1. Bare loop: the messages the workers will send (same bodies, signed the same way) POSTed
   by one httpx client with as many in flight as the two workers may have at most (2 x the
   per-subscription limit x subscriptions): the ceiling for this receiver on this machine.
2. Throughput: two `liaison deliver` processes started and left to settle, then `--events`
   outbox events committed (batches of 1,000); deliveries/s from the first commit until the
   receiver has every one (fan-out, claims, signing, sending, recording all included), and
   the ratio to the bare loop.
3. Latency: `--trickle` events committed one at a time at `--rate` per second while the
   workers run; commit to receipt, p50/p95 (the workers poll every
   LIAISON_WEBHOOK_POLL_SECONDS when idle: 1 s unless set).

Every message must arrive verified, once per subscription (a repeat is reported).
Absolute figures drift on shared machines; the ratio is the result.

    .venv/bin/python bench/webhooks.py [--events 10000] [--subscriptions 1] [--trickle 500]
        [--rate 50] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ROOT,
    SERVER,
    client_headers,
    drop_databases,
    free_port,
    host_speed,
    liaison,
    percentile,
    recreate_database,
    serve,
)

NAME = "liaison_bench_webhooks"
EVENT = "referral.decided"


# --- the receiver (its own process) -----------------------------------------------------------


def receiver_app(secrets_file: str) -> Any:
    from standardwebhooks import Webhook, WebhookVerificationError
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    secrets: dict[str, str] = json.loads(Path(secrets_file).read_text())
    hooks = {path: Webhook(secret) for path, secret in secrets.items()}
    arrived: dict[str, float] = {}
    counts = {"received": 0, "verified": 0, "repeats": 0}

    async def hook(request: Request) -> Response:
        now = time.time()
        body = await request.body()
        counts["received"] += 1
        path = request.url.path
        try:
            hooks[path].verify(body, dict(request.headers))
        except (KeyError, WebhookVerificationError):
            return Response(status_code=400)
        counts["verified"] += 1
        key = f"{path} {request.headers['webhook-id']}"
        if key in arrived:
            counts["repeats"] += 1
        else:
            arrived[key] = now
        return Response(status_code=204)

    async def stats(request: Request) -> Response:
        if request.method == "DELETE":
            arrived.clear()
            for name in counts:
                counts[name] = 0
            return JSONResponse({})
        return JSONResponse({**counts, "arrived": arrived})

    return Starlette(
        routes=[
            Route("/stats", stats, methods=["GET", "DELETE"]),
            Route("/{path:path}", hook, methods=["POST"]),
        ]
    )


def run_receiver(port: int, secrets_file: str) -> None:
    import uvicorn

    uvicorn.run(
        receiver_app(secrets_file),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
    )


# --- the world --------------------------------------------------------------------------------


async def prepare(env: dict[str, str], subscriptions: int) -> dict[str, Any]:
    """School, hub, the hub's referral (through the API) and its subscriptions."""
    from app.config import Settings
    from app.db import create_engine, create_session_factory
    from app.models.webhook import WebhookSecret, WebhookSubscription
    from app.services.webhook_secrets import new_secret, seal

    liaison("migrate", env=env)
    # The LA's school: the referral's child is named, not on its roll.
    json.loads(
        liaison(
            "create-school", "--code", "100001", "--name", "Bench School", "--la", "202", env=env
        )
    )
    hub = json.loads(
        liaison(
            "create-client",
            "--name",
            "Bench hub",
            "--scope",
            "referrals:read referrals:write",
            "--la",
            "202",
            env=env,
        )
    )
    server, base = serve(env)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            headers = await client_headers(http, hub)
            answer = await http.post(
                "/v1/referrals",
                headers=headers,
                json={
                    "external_reference": "BENCH-1",
                    "children": [
                        {"given_name": "Sam", "family_name": "Bench", "date_of_birth": "2016-04-01"}
                    ],
                    "concerns": ["attendance"],
                    "level_of_need": "targeted_early_help",
                    "consent": {
                        "given": True,
                        "given_by": "Parent",
                        "date": "2025-11-20",
                        "share_with": ["school"],
                    },
                    "urgency": "routine",
                    "summary": "Benchmark referral.",
                },
            )
            if answer.status_code != 201:
                raise SystemExit(f"referral refused: {answer.text}")
            referral = answer.json()
    finally:
        server.terminate()
        server.wait(timeout=10)
    settings = Settings(_env_file=None, database_url=env["LIAISON_DATABASE_URL"])  # type: ignore[call-arg]
    engine = create_engine(settings)
    secrets: dict[str, str] = {}
    async with create_session_factory(engine)() as session:
        for n in range(subscriptions):
            path = f"/hook/{n}"
            secret = new_secret()
            subscription = WebhookSubscription(
                owner=referral["referrer"],
                la_code="202",
                url=env["RECEIVER"] + path,
                event_types=[EVENT],
            )
            session.add(subscription)
            await session.flush()
            session.add(
                WebhookSecret(subscription_id=subscription.id, secret=seal(settings, secret))
            )
            secrets[path] = secret
        await session.commit()
    await engine.dispose()
    return {"referral": referral, "secrets": secrets, "settings": settings}


async def add_events(settings: Any, referral: dict[str, Any], count: int) -> dict[str, float]:
    """`count` events committed in batches of 1,000; webhook-id -> commit time."""
    from app.db import create_engine, create_session_factory
    from app.models.webhook import message_id
    from app.services.events import SubjectKind, record_event

    engine = create_engine(settings)
    committed: dict[str, float] = {}
    factory = create_session_factory(engine)
    for start in range(0, count, 1000):
        async with factory() as session:
            events = [
                record_event(
                    session,
                    EVENT,
                    subject_kind=SubjectKind.referral,
                    subject_id=uuid.UUID(referral["id"]),
                    la_code="202",
                    referrer=referral["referrer"],
                    data={"referral_id": referral["id"], "decision": "accepted", "n": n},
                )
                for n in range(start, min(count, start + 1000))
            ]
            await session.commit()
        at = time.time()
        committed.update({message_id(e.id): at for e in events})
    await engine.dispose()
    return committed


async def trickle(
    settings: Any, referral: dict[str, Any], count: int, rate: float
) -> dict[str, float]:
    """Events committed one at a time, `rate` a second; webhook-id -> commit time."""
    from app.db import create_engine, create_session_factory
    from app.models.webhook import message_id
    from app.services.events import SubjectKind, record_event

    engine = create_engine(settings)
    factory = create_session_factory(engine)
    committed: dict[str, float] = {}
    started = time.perf_counter()
    for n in range(count):
        async with factory() as session:
            event = record_event(
                session,
                EVENT,
                subject_kind=SubjectKind.referral,
                subject_id=uuid.UUID(referral["id"]),
                la_code="202",
                referrer=referral["referrer"],
                data={"referral_id": referral["id"], "n": n},
            )
            await session.commit()
        committed[message_id(event.id)] = time.time()
        await asyncio.sleep(max(0.0, started + (n + 1) / rate - time.perf_counter()))
    await engine.dispose()
    return committed


async def wait_for(http: httpx.AsyncClient, expected: int, limit: float = 900) -> dict[str, Any]:
    deadline = time.perf_counter() + limit
    while True:
        stats: dict[str, Any] = (await http.get("/stats")).json()
        if len(stats["arrived"]) >= expected or time.perf_counter() > deadline:
            return stats
        await asyncio.sleep(0.05)


async def bare_loop(receiver: str, secrets: dict[str, str], count: int, in_flight: int) -> float:
    """The same messages, signed and POSTed by httpx alone; seconds taken."""
    import orjson
    from standardwebhooks import Webhook

    hooks = {path: Webhook(secret) for path, secret in secrets.items()}
    queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
    paths = list(secrets)
    for n in range(count):
        queue.put_nowait((paths[n % len(paths)], n))

    async def sender(http: httpx.AsyncClient) -> None:
        while not queue.empty():
            path, n = queue.get_nowait()
            msg_id = "msg_" + uuid.uuid4().hex
            at = datetime.now(UTC)
            body = orjson.dumps(
                {"type": EVENT, "timestamp": at.isoformat(), "data": {"n": n}}
            ).decode()
            headers = {
                "content-type": "application/json",
                "webhook-id": msg_id,
                "webhook-timestamp": str(int(at.timestamp())),
                "webhook-signature": hooks[path].sign(msg_id, at, body),
            }
            (await http.post(receiver + path, content=body, headers=headers)).raise_for_status()

    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=30) as http:
        await asyncio.gather(*(sender(http) for _ in range(in_flight)))
    return time.perf_counter() - started


def workers(env: dict[str, str], count: int = 2) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen(
            [str(ROOT / ".venv/bin/liaison"), "deliver"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=60)


async def main(arguments: argparse.Namespace) -> None:
    await recreate_database(NAME)
    port = free_port()
    receiver = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "LIAISON_DATABASE_URL": f"{SERVER.replace('postgresql://', 'postgresql+asyncpg://')}/{NAME}",
        "LIAISON_ENVIRONMENT": "development",
        "LIAISON_LOG_LEVEL": "WARNING",
        "LIAISON_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.1/32"]',
        "LIAISON_WEBHOOK_WORKER_IN_SERVE": "false",
        "RECEIVER": receiver,
    }
    print(f"{host_speed()}; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    world = await prepare(env, arguments.subscriptions)
    secrets_file = Path(tempfile.mkdtemp()) / "secrets.json"
    secrets_file.write_text(json.dumps(world["secrets"]))
    server = subprocess.Popen(
        [sys.executable, __file__, "receiver", "--port", str(port), "--secrets", str(secrets_file)],
        env=env,
    )
    from app.config import Settings

    per_subscription = Settings(_env_file=None).webhook_concurrency_per_subscription  # type: ignore[call-arg]
    in_flight = 2 * per_subscription * arguments.subscriptions
    total = arguments.events * arguments.subscriptions  # one message per delivery
    running: list[subprocess.Popen[bytes]] = []
    try:
        async with httpx.AsyncClient(base_url=receiver, timeout=30) as http:
            for _ in range(100):
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/stats")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            bare = await bare_loop(receiver, world["secrets"], total, in_flight)
            bare_stats = await wait_for(http, total)
            await http.delete("/stats")
            print(
                f"bare httpx loop: {total} signed POSTs, {in_flight} in flight: {bare:.2f} s, "
                f"{total / bare:.0f}/s (verified {bare_stats['verified']})"
            )

            running = workers(env)
            await asyncio.sleep(5)  # both up, idle, polling
            expected = arguments.events * arguments.subscriptions
            started = time.perf_counter()
            await add_events(world["settings"], world["referral"], arguments.events)
            cpu_before = sum(cpu_seconds(p.pid) for p in running)
            stats = await wait_for(http, expected)
            elapsed = time.perf_counter() - started
            cpu = sum(cpu_seconds(p.pid) for p in running) - cpu_before
            rate = expected / elapsed
            print(
                f"two `liaison deliver` workers: {expected} deliveries "
                f"({arguments.events} events x {arguments.subscriptions} subscriptions) in "
                f"{elapsed:.2f} s, {rate:.0f}/s; verified {stats['verified']}, "
                f"repeats {stats['repeats']}, arrived {len(stats['arrived'])}; workers' CPU "
                f"{cpu:.1f} s ({cpu / expected * 1000:.2f} ms a delivery)"
            )
            bare_rate = total / bare
            print(f"ratio: workers / bare loop = {rate / bare_rate:.2f}x of the bare loop")

            await http.delete("/stats")
            committed = await trickle(
                world["settings"], world["referral"], arguments.trickle, arguments.rate
            )
            stats = await wait_for(http, arguments.trickle * arguments.subscriptions)
            latencies = [
                at - committed[key.split(" ", 1)[1]]
                for key, at in stats["arrived"].items()
                if key.split(" ", 1)[1] in committed
            ]
            print(
                f"commit -> receipt ({arguments.trickle} events at {arguments.rate:g}/s, workers "
                f"idle-polling every {os.environ.get('LIAISON_WEBHOOK_POLL_SECONDS', '1')} s): "
                f"p50 {percentile(latencies, 0.5) * 1000:.0f} ms, "
                f"p95 {percentile(latencies, 0.95) * 1000:.0f} ms, "
                f"max {max(latencies) * 1000:.0f} ms; verified {stats['verified']}, "
                f"repeats {stats['repeats']}"
            )
    finally:
        stop(running)
        server.terminate()
        server.wait(timeout=10)
        secrets_file.unlink(missing_ok=True)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", nargs="?", default="bench", choices=["bench", "receiver"])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--subscriptions", type=int, default=1)
    parser.add_argument("--trickle", type=int, default=500)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--keep", action="store_true", help="Keep the database.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--secrets", default="")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse()
    if arguments.mode == "receiver":
        run_receiver(arguments.port, arguments.secrets)
        sys.exit(0)
    try:
        asyncio.run(main(arguments))
    finally:
        if not arguments.keep:
            asyncio.run(drop_databases(NAME))
