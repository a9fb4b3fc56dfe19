"""The dashboard end to end in Chromium: `switchboard builder` on a temporary
SQLite database seeded with real simulated calls; the Analytics page shows the
number of calls (counted here with plain SQL) and a call's detail page shows
its transcript. Skipped (with the reason) without Chromium/Playwright unless
CI=true. Screenshots are saved beside the test's tmp files (artifacts)."""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path

from tests.builder.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    UI_WAIT_MS,
    artifacts_dir,
    require_browser,
    serve_builder,
)
from tests.builder.dashboard.dashdb import GRAPHS, seed, sqlite_url

CALLS = 8

#: The total as a figure: an st.metric whose label mentions calls ("Total calls").
TOTAL_JS = """([total]) => Array.from(document.querySelectorAll('[data-testid="stMetric"]'))
  .some((m) => {
    const text = (id) => (m.querySelector(`[data-testid="${id}"]`) || {}).innerText || "";
    return /calls/i.test(text("stMetricLabel")) && text("stMetricValue").trim() === total;
  })"""
#: The app has finished running the page (no "Running..." status, no skeletons).
IDLE_JS = """() => !document.querySelector('[data-testid="stStatusWidget"]')
  && !document.querySelector('[data-testid="stSkeleton"]')"""


def test_analytics_and_a_call_in_chromium(tmp_path: Path) -> None:
    require_browser()
    from playwright.sync_api import sync_playwright

    graphs = tmp_path / "graphs"
    shutil.copytree(GRAPHS, graphs, ignore=shutil.ignore_patterns("tests", "__*"))
    db_path = tmp_path / "calls.db"
    summary = seed(sqlite_url(db_path), CALLS)
    assert summary.unwritten == 0
    with sqlite3.connect(db_path) as conn:
        (total,) = conn.execute("SELECT count(*) FROM calls").fetchone()
        call_id, said = conn.execute(
            "SELECT c.id, t.text FROM calls c JOIN turns t ON t.call_id = c.id "
            "WHERE t.role = 'caller' AND length(t.text) > 12 ORDER BY c.started_at DESC LIMIT 1"
        ).fetchone()
    assert total == CALLS
    artifacts = artifacts_dir(tmp_path)
    env = {"SWITCHBOARD_DATABASE_URL": sqlite_url(db_path)}
    with serve_builder(graphs, tmp_path, env) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1200})
            page.goto(f"{url}/analytics", timeout=UI_WAIT_MS)
            page.get_by_role("heading", name=re.compile("Analytics")).first.wait_for(
                timeout=UI_WAIT_MS
            )
            page.wait_for_function(TOTAL_JS, arg=[str(total)], timeout=UI_WAIT_MS)
            page.wait_for_function(IDLE_JS, timeout=UI_WAIT_MS)
            page.screenshot(path=str(artifacts / "dashboard-analytics.png"), full_page=True)

            page.set_viewport_size({"width": 1600, "height": 3600})  # the whole call
            page.goto(f"{url}/calls?call={call_id}", timeout=UI_WAIT_MS)
            page.get_by_text(f"Call {call_id}").first.wait_for(timeout=UI_WAIT_MS)
            page.get_by_text(said).first.wait_for(timeout=UI_WAIT_MS)
            page.wait_for_function(IDLE_JS, timeout=UI_WAIT_MS)
            page.screenshot(path=str(artifacts / "dashboard-call.png"), full_page=True)
        finally:
            browser.close()
    for name in ("dashboard-analytics.png", "dashboard-call.png"):
        assert (artifacts / name).stat().st_size > 10_000
