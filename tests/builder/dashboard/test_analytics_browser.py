"""The Analytics page in Chromium: every chart is drawn by Vega-Lite, the key
figures are on the page, and a chart's "Download CSV" gives the file a user
gets, with the counts plain SQL finds. Skipped (with the reason) without
Chromium/Playwright unless CI=true."""

from __future__ import annotations

import csv
import io
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
from tests.builder.dashboard.test_analytics_page import CHARTS

CALLS = 12
#: Every chart embedded and drawn (Vega renders into a canvas or an SVG).
DRAWN_JS = """([n]) => {
  const embeds = document.querySelectorAll('.vega-embed');
  const drawn = Array.from(embeds).filter((e) => e.querySelector('canvas, svg.marks'));
  return embeds.length >= n && drawn.length >= n;
}"""


def test_charts_figures_and_a_csv_download_in_chromium(tmp_path: Path) -> None:
    require_browser()
    from playwright.sync_api import sync_playwright

    graphs = tmp_path / "graphs"
    shutil.copytree(GRAPHS, graphs, ignore=shutil.ignore_patterns("tests", "__*"))
    db_path = tmp_path / "calls.db"
    assert seed(sqlite_url(db_path), CALLS).unwritten == 0
    with sqlite3.connect(db_path) as conn:
        (total,) = conn.execute("SELECT count(*) FROM calls").fetchone()
        (completed,) = conn.execute(
            "SELECT count(*) FROM calls WHERE outcome = 'completed'"
        ).fetchone()
        (finished,) = conn.execute("SELECT count(outcome) FROM calls").fetchone()
        per_day = conn.execute(
            "SELECT date(started_at), count(*) FROM calls GROUP BY 1 ORDER BY 1"
        ).fetchall()
    artifacts = artifacts_dir(tmp_path)
    env = {"SWITCHBOARD_DATABASE_URL": sqlite_url(db_path)}
    with serve_builder(graphs, tmp_path, env) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 9000}, accept_downloads=True)
            page.goto(f"{url}/analytics", timeout=UI_WAIT_MS)
            page.get_by_role("heading", name=re.compile("Analytics")).first.wait_for(
                timeout=UI_WAIT_MS
            )
            page.wait_for_function(DRAWN_JS, arg=[len(CHARTS)], timeout=UI_WAIT_MS)
            metrics = page.locator('[data-testid="stMetric"]')
            shown = dict(
                zip(
                    metrics.locator('[data-testid="stMetricLabel"]').all_inner_texts(),
                    metrics.locator('[data-testid="stMetricValue"]').all_inner_texts(),
                    strict=True,
                )
            )
            assert shown["Total calls"].strip() == str(total)
            assert shown["Completion rate"].strip() == f"{completed / finished:.1%}"
            for title in CHARTS:
                page.get_by_role("heading", name=title, exact=True).first.wait_for(
                    timeout=UI_WAIT_MS
                )
            page.screenshot(path=str(artifacts / "analytics-charts.png"), full_page=True)

            with page.expect_download(timeout=UI_WAIT_MS) as caught:
                page.get_by_role("button", name="Download CSV").first.click()
            download = caught.value
            assert download.suggested_filename == "calls-by-day.csv"
            rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text())))
        finally:
            browser.close()
    assert [(r["day"], int(r["calls"])) for r in rows] == per_day
