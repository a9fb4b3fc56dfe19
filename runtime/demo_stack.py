"""The processes of `switchboard demo`: the call service (uvicorn) and the
builder/dashboard (Streamlit), started together on one data directory and
stopped together.

`DemoStack.start()` refuses ports already taken (`PortTaken`), starts both
children in sessions of their own (so a Ctrl-C reaches the demo, which stops
them in order), logs their output to files in the data directory and waits
until both answer their health checks (`DemoFailed` with the log's tail when
one exits or does not answer in time). `stop()` sends SIGTERM to each, waits,
and kills what is still running; it is safe to call more than once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

#: Start-up imports LangGraph and the speech models' runtimes: generous.
START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 20.0
LOG_TAIL_LINES = 30
#: Variables that would point the demo away from its embedded defaults.
NOT_INHERITED = (
    "DATABASE_URL",
    "SWITCHBOARD_DATABASE_SCHEMA",
    "SWITCHBOARD_REDIS_URL",
    "SWITCHBOARD_RATE_LIMIT_URL",
    "SWITCHBOARD_USERS_FILE",
    "SWITCHBOARD_PUBLIC_URL",
)


class PortTaken(OSError):
    """A port the demo needs is in use."""


class DemoFailed(RuntimeError):
    """A demo process exited or did not become healthy."""


class DemoCancelled(RuntimeError):
    """Asked to stop before the demo was up."""


def check_port_free(host: str, port: int, what: str) -> None:
    """Raise `PortTaken` unless `host:port` can be bound now."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        # As servers do: a port whose old connections linger (TIME_WAIT) is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise PortTaken(
                f"port {port} on {host} ({what}) is not free: {exc.strerror or exc}"
            ) from None


@dataclass(frozen=True)
class DemoPaths:
    """Where the demo keeps its data."""

    data_dir: Path

    @property
    def database(self) -> Path:
        return self.data_dir / "switchboard.db"

    @property
    def checkpoints(self) -> Path:
        return self.data_dir / "checkpoints.db"

    @property
    def recordings(self) -> Path:
        return self.data_dir / "recordings"

    @property
    def logs(self) -> Path:
        return self.data_dir / "logs"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.database}"


def demo_environment(
    paths: DemoPaths,
    *,
    graphs_dir: Path,
    user: str,
    password: str,
    jwt_secret: str,
    base: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment of both demo processes: the embedded defaults (SQLite
    database and checkpoints in the data directory, in-process live feed,
    recordings on) and the demo operator."""
    env = dict(os.environ if base is None else base)
    for name in NOT_INHERITED:
        env.pop(name, None)
    env.update(
        {
            "SWITCHBOARD_DATABASE_URL": paths.database_url,
            "SWITCHBOARD_CHECKPOINT_URL": f"sqlite:///{paths.checkpoints}",
            "SWITCHBOARD_RECORD_CALLS": "true",
            "SWITCHBOARD_RECORDINGS_DIR": str(paths.recordings),
            "SWITCHBOARD_GRAPHS_DIR": str(graphs_dir),
            "SWITCHBOARD_ADMIN_USER": user,
            "SWITCHBOARD_ADMIN_PASSWORD": password,
            "SWITCHBOARD_JWT_SECRET": jwt_secret,
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def service_command(host: str, port: int) -> list[str]:
    """What `switchboard serve` runs: uvicorn on the service app factory."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "runtime.service.app:create_app",
        "--factory",
        *("--host", host, "--port", str(port)),
        *("--log-level", "warning"),
        *("--ws-per-message-deflate", "false"),
    ]


@dataclass
class _Child:
    name: str
    health_url: str
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None

    def tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-LOG_TAIL_LINES:])


@dataclass
class DemoStack:
    """The service on `api_port` and the builder on `builder_port`."""

    host: str
    api_port: int
    builder_port: int
    graphs_dir: Path
    paths: DemoPaths
    env: dict[str, str]
    children: list[_Child] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        return f"http://{_url_host(self.host)}:{self.api_port}"

    @property
    def builder_url(self) -> str:
        return f"http://{_url_host(self.host)}:{self.builder_port}"

    def start(
        self, timeout_s: float = START_TIMEOUT_S, *, cancel: threading.Event | None = None
    ) -> None:
        """Start both processes and wait until both are healthy (or `cancel`
        is set: `DemoCancelled`). On any failure both are stopped."""
        from builder.launch import builder_command

        check_port_free(self.host, self.api_port, "the API")
        check_port_free(self.host, self.builder_port, "the builder")
        self.paths.logs.mkdir(parents=True, exist_ok=True)
        builder = builder_command(self.graphs_dir, self.builder_port, headless=True)
        builder[builder.index("--server.port") : builder.index("--server.port")] = [
            "--server.address",
            self.host,
        ]
        plan = [
            ("api", service_command(self.host, self.api_port), f"{self.api_url}/healthz"),
            ("builder", builder, f"{self.builder_url}/_stcore/health"),
        ]
        try:
            for name, command, health in plan:
                child = _Child(name, health, self.paths.logs / f"{name}.log")
                child.log = child.log_path.open("ab")
                child.process = subprocess.Popen(
                    command,
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stdout=child.log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                self.children.append(child)
            self._wait_healthy(timeout_s, cancel or threading.Event())
        except BaseException:
            self.stop()
            raise

    def _wait_healthy(self, timeout_s: float, cancel: threading.Event) -> None:
        deadline = time.monotonic() + timeout_s
        waiting = list(self.children)
        with httpx.Client(timeout=2.0) as client:
            while waiting:
                if cancel.is_set():
                    raise DemoCancelled("stopped while starting")
                for child in list(waiting):
                    self._check_running(child)
                    try:
                        if client.get(child.health_url).status_code == 200:
                            waiting.remove(child)
                    except httpx.HTTPError:
                        pass
                if waiting and time.monotonic() > deadline:
                    names = ", ".join(c.name for c in waiting)
                    raise DemoFailed(
                        f"{names} did not answer within {timeout_s:g} s; log:\n{waiting[0].tail()}"
                    )
                if waiting:
                    cancel.wait(0.3)

    @staticmethod
    def _check_running(child: _Child) -> None:
        assert child.process is not None
        code = child.process.poll()
        if code is not None:
            raise DemoFailed(f"the {child.name} exited with code {code}; log:\n{child.tail()}")

    def exited(self) -> _Child | None:
        """A child that has exited on its own, if any."""
        for child in self.children:
            if child.process is not None and child.process.poll() is not None:
                return child
        return None

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM every child (and its process group), wait, kill stragglers."""
        for child in self.children:
            if child.process is not None and child.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for child in self.children:
            process = child.process
            if process is None:
                continue
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            if child.log is not None:
                child.log.close()
                child.log = None

    def pids(self) -> list[int]:
        return [c.process.pid for c in self.children if c.process is not None]


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host
