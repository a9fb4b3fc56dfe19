"""Real service processes for tests: `switchboard serve` (or uvicorn directly)
on a free port, waited for until /healthz answers, stopped with SIGTERM."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[3]
#: Start-up includes importing LangGraph and migrating; generous for a busy machine.
START_DEADLINE_S = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_command(port: int) -> list[str]:
    """`switchboard serve` on `port`, as a user runs it."""
    return [
        *(sys.executable, "-c", "from runtime.cli import main; main()"),
        *("serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
    ]


@contextmanager
def service_process(env: dict[str, str], log: Path) -> Iterator[str]:
    """A `switchboard serve` process with `env`, its output in `log`; yields
    its http:// base URL once healthy, and stops it on exit."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            serve_command(port), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + START_DEADLINE_S
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"service exited with {proc.returncode}:\n{log.read_text()}")
                try:
                    if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"service did not start:\n{log.read_text()}")
                time.sleep(0.2)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
