"""Shared helpers of the browser tests: `switchboard builder` served on a free
port (with the environment a test gives it), and Playwright with Debian's
Chromium. `require_browser()` skips (with the reason) when Chromium or
Playwright is missing, unless CI=true, where it fails."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
#: Generous bounds: several test runs share two cores; these only stop a hung run.
SERVER_START_S = 120.0
UI_WAIT_MS = 90_000


def missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is not installed (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright)"
    return None


def require_browser() -> None:
    reason = missing()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but the browser test cannot run: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def artifacts_dir(tmp_path: Path) -> Path:
    """Where screenshots go: $SWITCHBOARD_ARTIFACTS, else the test's tmp dir."""
    artifacts = Path(os.environ.get("SWITCHBOARD_ARTIFACTS", tmp_path))
    artifacts.mkdir(parents=True, exist_ok=True)
    return artifacts


@contextmanager
def serve_builder(
    graphs_dir: Path, log_dir: Path, env: Mapping[str, str] | None = None
) -> Iterator[str]:
    """`switchboard builder --headless` on `graphs_dir` at a free port, with
    `env` added to the environment; yields its base URL and stops it after.
    The server's output goes to `log_dir/builder.log`."""
    require_browser()
    port = free_port()
    log_path = log_dir / "builder.log"
    log = log_path.open("wb")
    script = Path(sys.executable).with_name("switchboard")
    if not script.exists():
        pytest.fail(f"the switchboard command is not installed beside {sys.executable}")
    cmd = [str(script), "builder", "--port", str(port), "--headless"]
    proc = subprocess.Popen(
        [*cmd, "--graphs-dir", str(graphs_dir)],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail("builder did not start: " + log_path.read_text()[-2000:])
            time.sleep(0.2)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        log.close()
