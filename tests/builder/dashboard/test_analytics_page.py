"""The Analytics page (Streamlit AppTest) against a database seeded by real
simulated calls (`runtime.seed`, two graph versions of dental-booking). Every
figure the page shows, and every CSV it offers, is checked against counts
computed here straight from the SQLite file."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import shutil
import sqlite3
import statistics
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1 import app_test as app_test_module

from runtime.db import init_db
from runtime.seed import seed_demo
from tests.builder.dashboard.dashdb import GRAPHS, ROOT, SEED_NOW, sqlite_url

PAGE = str(ROOT / "builder" / "dashboard" / "analytics_page.py")
TIMEOUT = 120  # generous: the machine is shared; AppTest runs are not timed
CHARTS = [
    "Calls by day",
    "Calls by hour of day",
    "Call duration",
    "Outcomes per agent",
    "Intents",
    "Possibly misrouted intents",
    "Where callers leave the flow",
    "Tool calls",
    "Latency percentiles per stage over time",
    "Sentiment per call",
    "Sentiment per agent",
]


@dataclass(frozen=True)
class Seeded:
    url: str
    path: Path
    old_version: str
    new_version: str


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """24 calls on the example graphs, then dental-booking is edited (a new
    content hash) and 16 more calls are recorded."""
    tmp = tmp_path_factory.mktemp("analytics")
    graphs = tmp / "graphs"
    shutil.copytree(GRAPHS, graphs)
    path = tmp / "calls.db"
    url = sqlite_url(path)

    async def both() -> None:
        await seed_demo(url, calls=24, seed=11, graphs_dir=graphs, now=SEED_NOW)
        dental = graphs / "dental-booking.yaml"
        dental.write_text(dental.read_text() + "\n# version 2: same flow, new content hash\n")
        await seed_demo(url, calls=16, seed=12, graphs_dir=graphs, now=SEED_NOW)

    asyncio.run(both())
    # which version came first is by first sighting, as the page orders them
    with sqlite3.connect(path) as db:
        order = [
            h
            for (h,) in db.execute(
                "SELECT content_hash FROM agents WHERE graph_id = 'dental-booking' "
                "ORDER BY first_seen_at"
            )
        ]
    assert len(order) == 2, order
    return Seeded(url, path, order[0], order[1])


def sql(seeded: Seeded, query: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(seeded.path) as db:
        return list(db.execute(query, args))


def one(seeded: Seeded, query: str, *args: Any) -> Any:
    return sql(seeded, query, *args)[0][0]


class CsvDownloads:
    """Keeps the media storage of every AppTest run, to read the CSV files
    the page's download buttons serve."""

    def __init__(self) -> None:
        self.storages: list[MemoryMediaFileStorage] = []

    def read(self, url: str) -> list[dict[str, str]]:
        name = url.rsplit("/", 1)[-1]
        for storage in reversed(self.storages):
            try:
                content = storage.get_file(name).content
            except Exception:
                continue
            return list(csv.DictReader(io.StringIO(content.decode("utf-8"))))
        raise AssertionError(f"no download at {url}")


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> CsvDownloads:
    kept = CsvDownloads()

    class Kept(MemoryMediaFileStorage):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            kept.storages.append(self)

    monkeypatch.setattr(app_test_module, "MemoryMediaFileStorage", Kept)
    return kept


def open_page(monkeypatch: pytest.MonkeyPatch, url: str) -> AppTest:
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", url)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def metrics(at: AppTest) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for m in at.metric:
        out.setdefault(m.label, []).append(m.value)
    return out


def download(at: AppTest, downloads: CsvDownloads, chart: str, side: str = "analytics") -> Any:
    slug = chart.lower().replace(" ", "-")
    buttons = [b for b in at.get("download_button") if b.proto.id.endswith(f"{side}.{slug}.csv")]
    assert len(buttons) == 1, (chart, [b.proto.id for b in at.get("download_button")])
    assert buttons[0].proto.label == "Download CSV"
    return downloads.read(buttons[0].proto.url)


def expected_numbers(seeded: Seeded, where: str = "1=1", *args: Any) -> dict[str, str]:
    calls = one(seeded, f"SELECT count(*) FROM calls WHERE {where}", *args)
    finished = one(seeded, f"SELECT count(outcome) FROM calls WHERE {where}", *args)
    completed = one(
        seeded, f"SELECT count(*) FROM calls WHERE outcome = 'completed' AND {where}", *args
    )
    mean_s = one(seeded, f"SELECT avg(duration_s) FROM calls WHERE {where}", *args)
    graph_ms = [
        json.loads(lat)["graph_ms"]
        for (lat,) in sql(
            seeded,
            f"SELECT t.latencies FROM turns t JOIN calls ON calls.id = t.call_id "
            f"WHERE t.latencies IS NOT NULL AND {where}",
            *args,
        )
    ]
    intents = sql(
        seeded,
        f"SELECT i.name FROM intents i JOIN calls ON calls.id = i.call_id WHERE {where}",
        *args,
    )
    fallbacks = sum(1 for (name,) in intents if name is None)
    scores = [
        s
        for (s,) in sql(seeded, f"SELECT sentiment_score FROM calls WHERE {where}", *args)
        if s is not None
    ]
    return {
        "Total calls": str(calls),
        "Completion rate": f"{completed / finished:.1%}",
        "Mean duration": f"{mean_s:.1f} s",
        # the median is the 0.5 percentile with linear interpolation
        "p50 latency (graph)": f"{statistics.median(graph_ms):.1f} ms",
        "Intent fallback rate": f"{fallbacks / len(intents):.1%}",
        "Mean sentiment": f"{sum(scores) / len(scores):+.2f}",
    }


def test_an_empty_database_says_how_to_get_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = sqlite_url(tmp_path / "empty.db")

    async def migrate() -> None:
        await (await init_db(url)).dispose()

    asyncio.run(migrate())
    at = open_page(monkeypatch, url)
    assert [i.value for i in at.info] == [
        "No calls yet — run `switchboard seed-demo` to record a few hundred simulated calls, "
        "or make a call from the builder's test panel."
    ]
    assert not at.metric and not at.get("download_button")


def test_all_calls_figures_match_the_database(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch, downloads: CsvDownloads
) -> None:
    at = open_page(monkeypatch, seeded.url)
    # text calls record the graph's own time, no end-to-end voice latency
    assert one(seeded, "SELECT count(*) FROM turns WHERE latencies LIKE '%e2e_ms%'") == 0
    shown = {label: values[0] for label, values in metrics(at).items()}
    assert shown == expected_numbers(seeded)
    assert [h.value for h in at.subheader] == CHARTS
    assert len(at.get("download_button")) == len(CHARTS)
    assert len(at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")) == len(CHARTS)
    captions = " ".join(c.value for c in at.caption)
    assert "Sentiment scored by: offline lexicon (VADER)." in captions

    by_day = download(at, downloads, "Calls by day")
    assert [(r["day"], int(r["calls"])) for r in by_day] == [
        (d, n)
        for d, n in sql(
            seeded,
            "SELECT date(started_at), count(*) FROM calls GROUP BY 1 ORDER BY 1",
        )
    ]
    hours = download(at, downloads, "Calls by hour of day")
    by_hour = {int(r["hour"]): int(r["calls"]) for r in hours}
    assert by_hour == {h: 0 for h in range(24)} | {
        int(h): n
        for h, n in sql(seeded, "SELECT strftime('%H', started_at), count(*) FROM calls GROUP BY 1")
    }
    outcomes = download(at, downloads, "Outcomes per agent")
    got = {(r["agent"], r["outcome"]): int(r["calls"]) for r in outcomes if int(r["calls"])}
    # each agent's own part in a call: its ending, else the call's (a front
    # desk that handed a call on counts as handed_off)
    assert got == {
        (a, o): n
        for a, o, n in sql(
            seeded,
            "SELECT p.agent, coalesce(p.outcome, c.outcome), count(*) FROM call_agents p "
            "JOIN calls c ON c.id = p.call_id GROUP BY 1, 2",
        )
        if o is not None
    }
    assert got[("front-desk", "handed_off")] > 0
    tools = download(at, downloads, "Tool calls")
    assert {r["tool"]: (int(r["calls"]), int(r["errors"])) for r in tools} == {
        name: (n, e)
        for name, n, e in sql(
            seeded,
            "SELECT name, count(*), sum(error IS NOT NULL) FROM tool_calls GROUP BY name",
        )
    }
    intents = download(at, downloads, "Intents")
    assert {r["intent"]: int(r["count"]) for r in intents} == {
        (name if name is not None else "(fallback)"): n
        for name, n in sql(seeded, "SELECT name, count(*) FROM intents GROUP BY name")
    }
    funnel = download(at, downloads, "Where callers leave the flow")
    reached = {(r["agent"], r["node"]): int(r["reached"]) for r in funnel}
    assert reached == {
        (a, n): c
        for a, n, c in sql(
            seeded, "SELECT agent, node, count(DISTINCT call_id) FROM node_visits GROUP BY 1, 2"
        )
    }
    # every call left the flow somewhere: the funnel's "ended here" add up to all calls
    assert sum(int(r["ended_here"]) for r in funnel) == one(
        seeded, "SELECT count(DISTINCT call_id) FROM node_visits"
    )
    per_call = download(at, downloads, "Sentiment per call")
    assert {r["call"]: (float(r["score"]), r["label"], r["scored_by"]) for r in per_call} == {
        c: (s, lab, "offline lexicon (VADER)")
        for c, s, lab, m in sql(
            seeded,
            "SELECT id, sentiment_score, sentiment_label, sentiment_method FROM calls",
        )
        if m == "lexicon:vader"
    }
    assert len(per_call) == one(seeded, "SELECT count(*) FROM calls")
    latency = download(at, downloads, "Latency percentiles per stage over time")
    day_of = dict(sql(seeded, "SELECT id, date(started_at) FROM calls"))
    per_day: dict[str, list[float]] = {}
    timed = sql(seeded, "SELECT call_id, latencies FROM turns WHERE latencies IS NOT NULL")
    for call_id, lat in timed:
        per_day.setdefault(day_of[call_id], []).append(json.loads(lat)["graph_ms"])
    p50 = {r["day"]: float(r["ms"]) for r in latency if r["percentile"] == "p50"}
    assert p50 == pytest.approx({d: statistics.median(v) for d, v in per_day.items()})


def test_filters_by_agent_version_and_dates(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(monkeypatch, seeded.url)
    at.selectbox(key="analytics.agent").set_value("dental-booking").run()
    assert not at.exception
    shown = {label: values[0] for label, values in metrics(at).items()}
    assert shown == expected_numbers(seeded, "calls.agent = ?", "dental-booking")

    at.selectbox(key="analytics.version").set_value(seeded.new_version).run()
    assert not at.exception
    total = one(seeded, "SELECT count(*) FROM calls WHERE graph_hash = ?", seeded.new_version)
    assert metrics(at)["Total calls"] == [str(total)] and total > 0

    at.selectbox(key="analytics.agent").set_value("(any)").run()
    days = [d for (d,) in sql(seeded, "SELECT DISTINCT date(started_at) FROM calls ORDER BY 1")]
    first, last = date.fromisoformat(days[2]), date.fromisoformat(days[-3])
    at.date_input(key="analytics.dates").set_value((first, last)).run()
    assert not at.exception
    in_range = one(
        seeded,
        "SELECT count(*) FROM calls WHERE date(started_at) BETWEEN ? AND ?",
        first.isoformat(),
        last.isoformat(),
    )
    assert metrics(at)["Total calls"] == [str(in_range)]
    assert 0 < in_range < one(seeded, "SELECT count(*) FROM calls")


def test_two_versions_side_by_side(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(monkeypatch, seeded.url)
    at.toggle(key="analytics.compare").set_value(True).run()
    at.selectbox(key="analytics.compare.agent").set_value("dental-booking").run()
    assert not at.exception, at.exception
    # preselected: the previous version on the left, the newest on the right
    left = at.selectbox(key="analytics.a.dental-booking.version")
    right = at.selectbox(key="analytics.b.dental-booking.version")
    assert (left.value, right.value) == (seeded.old_version, seeded.new_version)
    expected = [
        str(one(seeded, "SELECT count(*) FROM calls WHERE graph_hash = ?", v))
        for v in (seeded.old_version, seeded.new_version)
    ]
    assert metrics(at)["Total calls"] == expected
    old = expected_numbers(seeded, "calls.graph_hash = ?", seeded.old_version)
    new = expected_numbers(seeded, "calls.graph_hash = ?", seeded.new_version)
    assert metrics(at)["Completion rate"] == [old["Completion rate"], new["Completion rate"]]
    assert metrics(at)["Mean duration"] == [old["Mean duration"], new["Mean duration"]]
    assert [h.value for h in at.subheader] == CHARTS * 2
    assert len(at.get("download_button")) == 2 * len(CHARTS)
