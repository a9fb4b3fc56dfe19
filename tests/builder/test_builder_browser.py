"""End to end in a real browser: `switchboard builder` served on a free port,
driven by Playwright with Debian's Chromium. Skipped (with the reason) when
Chromium or Playwright is missing, unless CI=true."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

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


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is not installed (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright)"
    return None


def _require_browser() -> None:
    reason = _missing()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but the browser test cannot run: {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def builder_url(dental_file: Path, tmp_path: Path) -> Iterator[str]:
    _require_browser()
    port = _free_port()
    log = (tmp_path / "builder.log").open("wb")
    script = Path(sys.executable).with_name("switchboard")
    if not script.exists():
        pytest.fail(f"the switchboard command is not installed beside {sys.executable}")
    cmd = [str(script), "builder", "--port", str(port), "--headless"]
    proc = subprocess.Popen(
        [*cmd, "--graphs-dir", str(dental_file.parent)],
        cwd=Path(__file__).resolve().parents[2],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
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
                pytest.fail(
                    "builder did not start: " + (tmp_path / "builder.log").read_text()[-2000:]
                )
            time.sleep(0.2)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        log.close()


def test_canvas_shows_the_graph_in_chromium(builder_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    artifacts = Path(os.environ.get("SWITCHBOARD_ARTIFACTS", tmp_path))
    artifacts.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(f"{builder_url}/?graph=dental-booking", timeout=UI_WAIT_MS)
            page.get_by_text("Switchboard builder").first.wait_for(timeout=UI_WAIT_MS)
            canvas = page.frame_locator("iframe[title='streamlit_flow.streamlit_flow']").last
            for node in ("greeting", "route", "ask_day", "escalate"):
                canvas.get_by_text(node, exact=True).first.wait_for(timeout=UI_WAIT_MS)
            # edge labels (intent names) are drawn too
            canvas.get_by_text("cancel", exact=True).first.wait_for(timeout=UI_WAIT_MS)
            page.screenshot(path=str(artifacts / "builder-canvas.png"), full_page=True)
        finally:
            browser.close()
    assert (artifacts / "builder-canvas.png").stat().st_size > 10_000
