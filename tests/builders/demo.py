"""A live Liaison server with the demo data, started the way `scripts/demo` starts one:
`liaison migrate`, `liaison seed-demo` and `liaison serve` in development, on the default
SQLite database (`./liaison.db`), here in a folder of its own and on a free port instead of
`PORT`. The browser test, the README's commands and the example clients all talk to it over
real HTTP, so a test session starts one and shares it (the `demo` fixture).

Imports only the app, so `tests.conftest` can import it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

# The host and port the README's commands are written for (`scripts/demo` without PORT).
README_ORIGIN = "127.0.0.1:8000"


@dataclass(frozen=True)
class DemoServer:
    url: str
    port: int
    folder: Path
    log: Path
    seeded: dict[str, Any]  # what `liaison seed-demo` printed

    def client_secret(self, client_id: str) -> str:
        secret: str = next(
            c["client_secret"] for c in self.seeded["clients"] if c["client_id"] == client_id
        )
        return secret

    def password(self, username: str) -> str:
        password: str = next(
            s["password"] for s in self.seeded["staff"] if s["username"] == username
        )
        return password

    def school_id(self, code: str) -> str:
        school_id: str = next(s["id"] for s in self.seeded["schools"] if s["code"] == code)
        return school_id

    def token(self, username: str, scope: str | None = None) -> str:
        """A staff member's token by the password grant, as a person signs in."""
        form = {"grant_type": "password", "username": username, "password": self.password(username)}
        if scope:
            form["scope"] = scope
        answer = self.call("POST", "/oauth/token", data=form)
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["access_token"]
        return token

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request, sent again while the server answers 503: on SQLite, a transaction that
        reads and then writes (an audit event) while another client writes is refused as
        busy, and a client is told to retry after Retry-After seconds."""
        for _ in range(10):
            answer = httpx.request(method, f"{self.url}{path}", timeout=60, **kwargs)
            if answer.status_code != 503:
                return answer
            time.sleep(float(answer.headers.get("Retry-After", "1")))
        return answer

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def liaison_command() -> str:
    """The `liaison` script installed beside the Python running the tests."""
    beside = Path(sys.executable).with_name("liaison")
    found = str(beside) if beside.exists() else shutil.which("liaison")
    assert found, "the liaison command is not installed (scripts/test installs it)"
    return found


def demo_environment() -> dict[str, str]:
    """The environment `scripts/demo` runs with; no LIAISON_ setting leaks in from the tests."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith("LIAISON_")}
    return {**keep, "LIAISON_ENVIRONMENT": "development", "LIAISON_LOG_FORMAT": "json"}


@contextmanager
def demo_server(folder: Path, startup_seconds: float = 60) -> Iterator[DemoServer]:
    """Migrate, seed and serve in `folder`; stop the server on leaving."""
    env = demo_environment()
    command = liaison_command()

    def step(*args: str) -> str:
        done = subprocess.run(  # noqa: S603
            [command, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"liaison {' '.join(args)}: {done.stderr}"
        return done.stdout

    step("migrate")
    seeded = json.loads(step("seed-demo"))
    port = free_port()
    log = folder / "server.log"
    with log.open("wb") as output:
        server = subprocess.Popen(  # noqa: S603
            [command, "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=folder,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    demo = DemoServer(f"http://127.0.0.1:{port}", port, folder, log, seeded)
    try:
        _wait_until_ready(server, demo, startup_seconds)
        yield demo
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=15)


def _wait_until_ready(server: subprocess.Popen[bytes], demo: DemoServer, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            status = server.returncode
            raise AssertionError(f"the demo server exited ({status}):\n{demo.log_tail()}")
        try:
            if httpx.get(f"{demo.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the demo server was not ready in {seconds} s:\n{demo.log_tail()}")
