"""End to end in a real browser: `switchboard builder` served on a free port,
driven by Playwright with Debian's Chromium. Skipped (with the reason) when
Chromium or Playwright is missing, unless CI=true."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.builder.browser import CHROMIUM, CHROMIUM_ARGS, UI_WAIT_MS, serve_builder


@pytest.fixture
def builder_url(dental_file: Path, tmp_path: Path) -> Iterator[str]:
    with serve_builder(dental_file.parent, tmp_path) as url:
        yield url


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
