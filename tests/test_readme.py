"""Every curl command in the README runs as written against a live demo server.

Each shell block that holds a `curl` runs whole, in bash, as a reader pastes it: only the
host and port change (`127.0.0.1:8000` becomes the demo server's, as `PORT` would make
them). `curl` is made to fail on any answer that is not 2xx (`--fail-with-body`) and the
block runs under `set -euo pipefail`, so a failing command fails the test, even inside
`$(...)`. A command followed by a `# → ...` line must answer what that line says: the same
JSON, or the status it starts with.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.builders.demo import README_ORIGIN, DemoServer

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
SHELL_BLOCK = re.compile(r"^```(?:sh|bash|shell)\n(.*?)^```", re.M | re.S)
INLINE_CURL = re.compile(r"`(curl [^`]+)`")
EXPECTED = "# → "
STEP = "@@step "
STATUS = "@@status "

# curl as the README's reader runs it, but failing on a non-2xx answer, and reporting each
# answer's status on stderr so a `# → 201 ...` line can be checked.
PRELUDE = f"""set -euo pipefail
curl() {{ command curl --fail-with-body --write-out '%{{stderr}}{STATUS}%{{http_code}}\\n' "$@"; }}
"""


@dataclass
class Command:
    text: str
    expected: str | None = None


@dataclass
class Block:
    name: str
    commands: list[Command] = field(default_factory=list)


def _complete(text: str) -> bool:
    """Whether `text` is a whole shell command: no open quote, no trailing backslash."""
    if text.rstrip().endswith("\\"):
        return False
    try:
        shlex.split(text, comments=True)
    except ValueError:
        return False
    return True


def parse(block: str) -> list[Command]:
    commands: list[Command] = []
    pending: list[str] = []
    for line in block.splitlines():
        if not pending:
            if line.startswith(EXPECTED):
                commands[-1].expected = line.removeprefix(EXPECTED).strip()
                continue
            if not line.strip() or line.lstrip().startswith("#"):
                continue
        pending.append(line)
        if _complete("\n".join(pending)):
            commands.append(Command("\n".join(pending)))
            pending = []
    assert not pending, f"an unfinished command in the README: {pending}"
    return commands


def readme_blocks() -> list[Block]:
    blocks = []
    for body in SHELL_BLOCK.findall(README):
        if re.search(r"(^|[\s(|])curl\s", body):
            commands = parse(body)
            blocks.append(Block(commands[0].text.splitlines()[0][:60], commands))
    inline = [Command(match) for match in INLINE_CURL.findall(README)]
    if inline:
        blocks.append(Block("inline curl commands", inline))
    return blocks


BLOCKS = readme_blocks()


def test_the_readme_has_its_calls() -> None:
    """The parser finds the blocks a reader follows: no block silently drops out."""
    commands = "\n".join(c.text for b in BLOCKS for c in b.commands)
    for body in SHELL_BLOCK.findall(README):
        for line in body.splitlines():
            if "curl " in line and not line.lstrip().startswith("#"):
                assert line in commands, line
    assert len(BLOCKS) >= 4, [b.name for b in BLOCKS]
    assert sum(c.expected is not None for b in BLOCKS for c in b.commands) >= 3
    assert any("oruk/services" in c.text for c in BLOCKS[-1].commands)


def run_block(block: Block, demo: DemoServer) -> list[tuple[str, list[int]]]:
    """Run the block's commands in one bash, as pasted; each command's output and the
    status of every answer it got."""
    script = [PRELUDE]
    for number, command in enumerate(block.commands):
        script.append(f"printf '\\n{STEP}{number}\\n'; printf '{STEP}{number}\\n' >&2")
        script.append(command.text.replace(README_ORIGIN, f"127.0.0.1:{demo.port}"))
    done = subprocess.run(  # noqa: S603
        ["bash", "-c", "\n".join(script)],  # noqa: S607
        cwd=demo.folder,
        env={k: v for k, v in os.environ.items() if not k.startswith("LIAISON_")},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, (
        f"a README command failed (exit {done.returncode}):\n{done.stderr[-3000:]}\n"
        f"output:\n{done.stdout[-3000:]}"
    )
    outputs = re.split(rf"\n{STEP}\d+\n", "\n" + done.stdout)[1:]
    statuses = [
        [int(s) for s in re.findall(rf"^{STATUS}(\d+)$", part, re.M)]
        for part in re.split(rf"^{STEP}\d+$", done.stderr, flags=re.M)[1:]
    ]
    assert len(outputs) == len(statuses) == len(block.commands), done.stdout
    return list(zip(outputs, statuses, strict=True))


@pytest.mark.parametrize("block", BLOCKS, ids=[b.name for b in BLOCKS])
def test_readme_commands_run_as_written(block: Block, demo: DemoServer) -> None:
    results = run_block(block, demo)
    for command, (output, statuses) in zip(block.commands, results, strict=True):
        if "curl" in command.text:
            assert statuses, f"no answer to: {command.text}"
        assert all(200 <= s < 300 for s in statuses), (command.text, statuses, output)
        if command.expected is None:
            continue
        if command.expected.startswith(("{", "[")):
            assert json.loads(output) == json.loads(command.expected), (command.text, output)
        else:
            status = re.match(r"\d{3}\b", command.expected)
            assert status, f"'# → {command.expected}' says neither JSON nor a status"
            assert statuses[-1] == int(status.group()), (command.text, statuses)
