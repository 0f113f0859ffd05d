"""Schemathesis against a real `timeline serve` on a fresh database of each backend, from the
server's own /openapi.json: every operation, positive and negative cases (the examples,
coverage and fuzzing phases), with an admin token. Each response must have a documented status
and content type and match its schema, and none may be a server error.

Schemathesis runs as its command line does (`st run`), in a process of its own: its pytest
integration (`schemathesis.pytest.from_fixture`) does not run on pytest 9.2, whose nodes have no
`_nodeid` any more (and so no warning of its can meet pytest's `filterwarnings = error`). The run
is bounded: a fixed number of cases per operation and deterministic generation, so it asks the
same questions every time (about 4,700 per backend, in about a minute). A failure prints, for
each operation, what was wrong and a curl command that reproduces it; the server's log is kept
in the test's temporary directory."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.api import ADMIN
from tests.databases import Database

TIMELINE = [sys.executable, "-m", "timeline.cli"]
SCHEMATHESIS = [sys.executable, "-m", "schemathesis.cli"]
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)
# Cases per operation in the fuzzing phase; the examples and coverage phases add their own
# (for each constraint of each parameter, values inside it and just outside).
MAX_EXAMPLES = 25
CONFIG = f"""
color = false
request-timeout = 20
hooks = "hooks.py"
# A server round trip per case is slow by Hypothesis's standards, on purpose.
suppress-health-check = ["too_slow"]

[generation]
mode = "all"
max-examples = {MAX_EXAMPLES}
deterministic = true
# No example database: a run is the same every time and leaves no files behind.
database = "none"

[phases.stateful]
enabled = false

# A live stream never ends: its first events, or a second of it, is what a case reads.
[[operations]]
include-path = "/v1/stream"
request-timeout = 1
max-stream-events = 3
generation.max-examples = 8
"""
# A webhook the fuzzer creates is delivered to: never to a host it made up, always to a closed
# port of this machine (the discard port). The URL keeps its form, valid or not.
HOOKS = r"""
import re

import schemathesis

AUTHORITY = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*")


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.method == "POST" and case.path == "/v1/webhooks" and isinstance(case.body, dict):
        url = case.body.get("url")
        if isinstance(url, str):
            case.body["url"] = AUTHORITY.sub(r"\g<1>127.0.0.1:9", url)
"""


@dataclass
class Server:
    url: str = ""
    output: list[str] = field(default_factory=list)
    code: int | None = None

    def errors(self) -> list[str]:
        """What it logged at level error or above, or with a traceback."""
        return [
            line
            for line in self.output
            if "Traceback" in line or re.search(r'"level":"(error|critical)"', line)
        ]


@contextmanager
def serve(database: Database) -> Iterator[Server]:
    """`timeline serve` on the database (seeded), with the admin token, until the block ends;
    then its exit code and what it printed are in the Server."""
    process = subprocess.Popen(
        [*TIMELINE, "serve", "--db", database.url, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # A stream the fuzzer has stopped reading is found closed at the next ping: soon.
        env={**os.environ, "TIMELINE_BOOTSTRAP_TOKEN": ADMIN, "TIMELINE_FEED_PING_SECONDS": "1"},
    )
    stdout = process.stdout
    assert stdout is not None
    server = Server()
    drain = threading.Thread(target=lambda: server.output.extend(stdout), daemon=True)
    try:
        for line in stdout:
            server.output.append(line)
            if found := re.search(r"serving (http://127\.0\.0\.1:\d+/)", line):
                server.url = found.group(1)
                break
        else:
            raise AssertionError("the server exited before it was ready: " + "".join(server.output))
        # Keep reading what it prints, so that the pipe never fills and blocks it.
        drain.start()
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            server.code = process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
        finally:
            if drain.is_alive():
                drain.join(5)
            stdout.close()


@pytest.mark.timeout(300)
def test_every_operation_keeps_to_its_description(database: Database, tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    (tmp_path / "hooks.py").write_text(HOOKS)
    with serve(database) as server:
        done = subprocess.run(
            [
                *SCHEMATHESIS,
                "--config-file",
                str(config),
                "run",
                server.url + "openapi.json",
                "--header",
                f"Authorization: Bearer {ADMIN}",
                "--checks",
                CHECKS,
                "--phases",
                "examples,coverage,fuzzing",
                "--workers",
                "1",
            ],
            capture_output=True,
            text=True,
            timeout=240,
            cwd=tmp_path,
            check=False,
        )
    report = done.stdout + done.stderr
    print(report)  # shown by pytest -rP, and with any failure
    # What the server logged, every request included, is kept beside it for a post-mortem.
    (tmp_path / "server.log").write_text("".join(server.output))
    assert done.returncode == 0, f"{report}\nthe server's log: {tmp_path / 'server.log'}"
    # Every operation was tested.
    assert (found := re.search(r"Selected: (\d+)/(\d+)\s+Tested: (\d+)", report)), report
    assert found.group(1) == found.group(2) == found.group(3), report
    # And the server took it all without an error of its own, and stopped cleanly.
    assert server.errors() == []
    assert server.code == 0, "".join(server.output[-50:])
