"""`switchboard demo`: the service and the builder started together on a fresh
data directory (seeded), reachable with the printed credentials, and both
stopped by SIGTERM; a taken port is a clear error; `--check` is the offline
smoke test."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from queue import Empty, Queue

import httpx
import pytest
from typer.testing import CliRunner

from runtime.cli import app
from runtime.demo_stack import DemoPaths, demo_environment

ROOT = Path(__file__).resolve().parents[2]
#: Hang guards only: seeding, graph checks and two servers' imports on a busy machine.
READY_DEADLINE_S = 300.0
EXIT_DEADLINE_S = 60.0
SEEDED = 6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone in all but name
        return (Path("/proc") / str(pid) / "stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


@dataclass
class Demo:
    proc: subprocess.Popen[str]
    lines: list[str]
    reader: threading.Thread
    queue: Queue[str]

    def rest(self) -> str:
        """What the demo printed after it said it was running, once it has exited."""
        self.reader.join(EXIT_DEADLINE_S)
        more = []
        while not self.queue.empty():
            more.append(self.queue.get())
        return "".join(more)


@pytest.fixture
def demo_process(tmp_path: Path) -> Iterator[Demo]:
    """`switchboard demo` on free ports, read until it says it is running."""
    api, builder = _free_port(), _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    env.pop("DATABASE_URL", None)
    env.pop("SWITCHBOARD_DATABASE_URL", None)
    proc = subprocess.Popen(
        [
            *(sys.executable, "-c", "from runtime.cli import main; main()", "demo"),
            *("--api-port", str(api), "--builder-port", str(builder)),
            *("--data-dir", str(tmp_path / "data"), "--calls", str(SEEDED)),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    queue: Queue[str] = Queue()
    stdout = proc.stdout
    assert stdout is not None

    def read() -> None:
        for line in stdout:
            queue.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + READY_DEADLINE_S
    try:
        while not any("Press Ctrl-C" in line for line in lines):
            if proc.poll() is not None and queue.empty():
                pytest.fail(f"demo exited ({proc.returncode}):\n" + "".join(lines))
            if time.monotonic() > deadline:
                pytest.fail("demo not ready in time:\n" + "".join(lines))
            with contextlib.suppress(Empty):
                lines.append(queue.get(timeout=1.0))
        yield Demo(proc, lines, reader, queue)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_demo_serves_the_api_and_the_dashboard_until_sigterm(
    demo_process: Demo, tmp_path: Path
) -> None:
    demo = demo_process
    proc = demo.proc
    text = "".join(demo.lines)
    docs = re.search(r"API docs:\s+(\S+)", text)
    analytics = re.search(r"Analytics:\s+(\S+)", text)
    creds = re.search(r"user (\S+)\s+password (\S+)", text)
    assert docs and analytics and creds, text
    api = docs.group(1).removesuffix("/docs")
    builder = analytics.group(1).removesuffix("/analytics")
    assert f"{SEEDED} calls" in text

    with httpx.Client(timeout=30) as http:
        assert http.get(f"{api}/docs").status_code == 200
        health = http.get(f"{builder}/_stcore/health")
        assert health.status_code == 200 and health.text == "ok"
        assert http.get(f"{builder}/analytics").status_code == 200
        login = http.post(
            f"{api}/api/auth/login",
            json={"username": creds.group(1), "password": creds.group(2)},
        )
        assert login.status_code == 200, login.text
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
        calls = http.get(f"{api}/api/calls", headers=auth)
        assert calls.status_code == 200
        assert calls.json()["total"] == SEEDED  # the dashboard's database, seeded
        wrong = http.post(
            f"{api}/api/auth/login", json={"username": creds.group(1), "password": "nope"}
        )
        assert wrong.status_code == 401

    children = _children(proc.pid)
    assert len(children) == 2, children  # uvicorn and streamlit
    assert (tmp_path / "data" / "switchboard.db").is_file()

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=EXIT_DEADLINE_S) == 0
    assert not [pid for pid in children if _alive(pid)]
    assert "Stopped." in demo.rest()


def test_a_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            app,
            [
                *("demo", "--api-port", str(port), "--builder-port", str(_free_port())),
                *("--data-dir", str(tmp_path), "--calls", "0"),
            ],
        )
    assert result.exit_code == 2, result.output
    assert f"port {port} on 127.0.0.1 (the API) is not free" in result.output
    assert "--api-port" in result.output
    assert not (tmp_path / "switchboard.db").exists()  # refused before doing anything


def test_same_port_twice_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["demo", "--api-port", "9100", "--builder-port", "9100", "--data-dir", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "must differ" in result.output


def test_check_mode_is_the_offline_smoke_test() -> None:
    result = CliRunner().invoke(app, ["demo", "--check"])
    assert result.exit_code == 0, result.output
    assert "outcome: completed" in result.output
    assert " 0 failed" in result.output


def test_the_demo_servers_get_the_embedded_defaults(tmp_path: Path) -> None:
    paths = DemoPaths(tmp_path)
    env = demo_environment(
        paths,
        graphs_dir=tmp_path / "graphs",
        user="demo",
        password="pw",
        jwt_secret="j" * 48,
        base={
            "PATH": "/bin",
            "DATABASE_URL": "postgresql://elsewhere/db",
            "SWITCHBOARD_REDIS_URL": "redis://elsewhere:6379/0",
            "SWITCHBOARD_DATABASE_SCHEMA": "other",
        },
    )
    assert env["PATH"] == "/bin"
    assert env["SWITCHBOARD_DATABASE_URL"] == f"sqlite:///{tmp_path / 'switchboard.db'}"
    assert env["SWITCHBOARD_CHECKPOINT_URL"] == f"sqlite:///{tmp_path / 'checkpoints.db'}"
    assert env["SWITCHBOARD_RECORDINGS_DIR"] == str(tmp_path / "recordings")
    assert env["SWITCHBOARD_RECORD_CALLS"] == "true"
    assert (env["SWITCHBOARD_ADMIN_USER"], env["SWITCHBOARD_ADMIN_PASSWORD"]) == ("demo", "pw")
    for gone in ("DATABASE_URL", "SWITCHBOARD_REDIS_URL", "SWITCHBOARD_DATABASE_SCHEMA"):
        assert gone not in env
